"""The process side: one node process, from its first instruction to its exit.

What runs inside every process ``topo up`` spawns (or an agent spawns on another
host): its first steps, the nodes' code imported, their sockets built, wired and held at
the gate, the node threads, delivery at a node's return, the reports to the supervisor.
May import: :mod:`topo.errors`, :mod:`topo.file`, :mod:`topo.plan` (in practice only
:mod:`topo.plan.share`: a child imports little) and its own modules; never the supervisor
side. Public names: :class:`topo.process.node.Node` (what a node function receives),
:mod:`topo.process.control` (the messages both sides speak).

Modules, in the order a run meets them:

- ``boot``: What a process is started with: plain data, pickled into the child.
- ``entry``: A node process's entry point, as multiprocessing names it: light to import in
  the parent.
- ``prelude``: A node process's first steps, before it imports zmq and its runtime.
- ``nodecode``: The nodes' code of a process, imported in the background from the process's
  first steps.
- ``capture``: Child side of output: which node instance wrote each line, in a process
  running several.
- ``nodelog``: ``node.log``: a logger per node whose records are shown under the node's name.
- ``memory``: glibc's malloc thresholds, pinned in a node process so message buffers stay
  mapped.
- ``control``: The control channel: typed messages between the supervisor and each process's
  runtime.
- ``runtime``: One per process: the control connection, the node threads, and a clean exit.
- ``context``: What a node's thread and the wiring thread may use of their process.
- ``wiring``: One thread per process wires every node of it: build, bind, connect, gate,
  hand over.
- ``sockets``: Creating one node's sockets from the plan: types, options, subscriptions.
- ``gate``: The readiness gate: when may a node's function be called?
- ``execlinks``: A receiver's connections from exec senders, seen after its gate and told
  to the supervisor (for the senders' go).
- ``external``: Endpoints outside the topology: bound and connected after the gate,
  lingering bounded.
- ``curve``: CURVE for everything that crosses hosts: keys per run, options per endpoint,
  and ZAP.
- ``runner``: One node instance's own thread: call its function, report how it ended, close.
- ``node``: What a node function receives: its sockets, its arguments, and whether to go
  on.
- ``delivery``: What a node sent before it returned reaches its peers, on ipc too.
- ``family``: A node process's family: its own process group, and the descriptors it must
  not hand on.
- ``outbox``: The events a process has for the supervisor, in order, within a bound.
- ``records``: Output lines through a pipe whose read end lives outside the process.
- ``tap``: Copies of what a node's socket sends and receives, taken without touching
  delivery (its class swapped while tapped).
- ``tapping``: Taps put on and taken off at the supervisor's word, on a lease; one thread
  sends their copies to the requester; the taps of ``topo up --record`` from each node's
  first instruction.
- ``alarm``: The taps' sender thread's wake-up, waited on together with full PUSHes' room
  (``zmq_poll``), so it never looks at them again and again beside the node's threads.
- ``tapway``: One tap's way to its reader: its copies taken off the tap's queue and sent in
  batches, what a full reader refuses kept in that bounded queue, what is lost counted.
- ``taprecord``: A recording's tap: the node waits for room rather than lose a copy,
  within a bound, and stops waiting for a recorder that takes nothing.
- ``recordack``: A process on another host asks its agent whether its recorded copies'
  ``end`` is read before it closes their way (a full PULL loses what its peer left).
- ``relink``: A link made or dropped on a running node's socket (``topo apply``): connect
  or disconnect in the thread that owns the socket, at its next send, recv or poll.
- ``handover``: A scale-down without loss: a feeding PUSH moved to a new socket under its
  node's object, the old one closed once delivered; a removed worker drained, then ended.
- ``aiofollow``: An async node's asyncio socket made to follow the socket it shadows when
  a hand-over points that one at a new libzmq socket.
- ``inject``: One message put into a node's receiving socket from outside, as a peer
  would (``topo send``, here or through an agent).
- ``tapwire``: The tap sender's messages: a batch's copies packed in columns and unpacked,
  markers, and the copies a dropped message held (as far as a relay needs them).
"""
