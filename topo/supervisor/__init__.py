"""The supervisor side: the one owner of a run's state, on the host where ``topo up`` runs.

Starts the processes (here directly, elsewhere through :mod:`topo.hosts`), hears
their reports, decides readiness, restarts and the stop, and shows what the nodes print.
Children only report; every decision is taken here. May import everything below it
(:mod:`topo.errors`, :mod:`topo.file`, :mod:`topo.plan`, :mod:`topo.process`) and its own
modules. Public names: :class:`topo.supervisor.supervise.Supervisor`,
:class:`topo.supervisor.runstate.Outcome`.

Modules, in the order a run meets them:

- ``prestart``: ``topo up``'s local processes started as soon as the plan exists, before the
  supervisor.
- ``supervise``: The supervisor: the one owner of a run's state.
- ``transitions``: What each report of a node means for the run: the rules of a node's life.
- ``stopping``: Stop bookkeeping: who has been told to stop, who still must be, and the
  escalation.
- ``runstate``: The state a supervisor owns, as plain records, and how it is shown to ``topo
  ps``.
- ``restarts``: Restart policy: whether a node that ended is started again, after how long,
  and when to give up on one that keeps failing. Pure: the supervisor passes in
  the clock.
- ``processes``: How a run's processes are started, signalled and seen to end, here or on
  another host.
- ``remotehosts``: The agents of a run's other hosts as the supervisor side sees them (an
  interface: :mod:`topo.hosts` implements it).
- ``spawn``: Starting and killing the OS processes of a run.
- ``execstarts``: When an exec node's program may start: once every instance it sends to
  is ready.
- ``execspawn``: Starting an exec node's program: its wiring, its environment, the program
  itself (spawned directly, in a process group of its own).
- ``keeper``: What an exec node leaves behind is ended, even when ``topo up`` is
  SIGKILLed: one small process per run holds the programs' groups.
- ``execsignals``: What an exec node's program and topo say to each other while it runs:
  ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``TOPO_GO_FD`` prepared per start, watchdog timers.
- ``execrules``: What a program's sd_notify datagrams, its watchdog and its receivers'
  ``linked`` reports mean for its node (the base class of the supervisor).
- ``notify``: The server side of sd_notify: a socket per program, its sender checked.
- ``notifymsg``: One sd_notify datagram read, or refused whole. Pure.
- ``gosignal``: The go pipe of an exec sender: one byte once every receiver has its
  connection.
- ``goheld``: A go written on the program's host once the program has read what its tcp
  receivers sent it.
- ``rundir``: Where a run keeps its files, how it is named, and cleaning up after dead
  runs.
- ``output``: What the supervisor shows and keeps of the nodes' output: prefixes, colours,
  log files.
- ``pipes``: The read ends of each local process's output pipes, owned by the supervisor.
- ``terminal``: ``topo up``'s stdout, written by a thread of its own so the supervisor never
  waits on it.
- ``watch``: How a started node process is seen to end, and what ends with it.
- ``observing``: ``topo sockets``, and taps asked for, checked and passed on to the
  processes that own the sockets.
- ``editing``: ``topo restart`` (processes restarted on demand, the reply held until
  their nodes are ready again) and the plan's facts for ``topo apply``.
- ``remotetaps``: The supervisor's end of taps and ``topo send`` for nodes on other hosts:
  copies relayed from the agents to their readers, injections passed to the agents.
- ``applying``: ``topo apply`` carried out: the edited file read again and planned, the
  processes it names restarted, stopped or started, the reply held until they are ready.
- ``applyread``: ``topo apply``'s file read, checked and planned by a thread, handed to
  the loop within a deadline.
- ``applypaths``: Where an applied plan's new parts live: ipc files no running socket
  has bound, the import path of the processes started from now on.
- ``relinking``: The links ``topo apply`` makes or drops on running sockets: asked of
  their processes, answered, the process restarted where its node did not take the change.
- ``scaledown``: A scale-down without loss: the workers a running PUSH deals to drain
  before they go (over ipc or tcp, on any host), its socket replaced and bound again, the
  workers kept following in place.
- ``watching``: ``topo up --watch``: each saved version of the file applied, the nodes
  whose code is saved restarted, from a thread that hands its work to the loop.
- ``recordways``: ``topo up --record``'s copies from other hosts: on to the recorder,
  waiting (bounded by the agents' credits) rather than dropped while it is behind.
- ``tapreader``: The reading end of a tap (``topo echo``, ``run.tap()``): bound, asked
  for, renewed, read.
- ``recorder``: ``topo up --record``: the names and the file checked first, the recorder
  process started, watched and ended with the run.
"""
