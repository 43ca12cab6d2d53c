"""The command line: ``topo`` and its commands, on top of everything else.

Click commands (:mod:`topo.cli.main`), ``topo up``'s terminal and log files
(:mod:`topo.cli.launch`), and the commands that talk to a run from another terminal
(:mod:`topo.cli.client`, :mod:`topo.cli.logview`). May import every package but
:mod:`topo.testing`. Public names: the ``topo`` script (``topo.cli.main:main``),
``python -m topo``.

Modules, in the order a run meets them:

- ``main``: The ``topo`` command line: the command group, the commands that read a
  topology file, and the one place where errors become exit statuses.
- ``runcmds``: the commands that act on a run from any terminal (``ps``, ``down``,
  ``logs``, ``attach``, ``record``).
- ``sourceopts``: ``FILE... -f FILE --set NODE.KEY=VALUE --profile NAME``, ``--strict``,
  ``--lenient``, ``--no-run-check``: how every command that reads a topology names it,
  how strictly it reads it, and the reading.
- ``importcheck``: ``topo check --import``: every local node's ``run:`` imported for
  real, each module in a child process of its own.
- ``launch``: ``topo up``: a validated file, a supervisor, the terminal and the log files.
- ``detach``: ``topo up -d``: the run goes on in the background once every node is ready.
- ``attach``: ``topo attach``: a running run's output, as ``topo up`` shows it, until the
  run ends.
- ``client``: ``topo ps`` and ``topo down``: talking to runs from another terminal.
- ``logview``: ``topo logs``: which run, which node, which lines.
- ``record``: ``topo record``: a recording's contents (``--info FILE``); recording a run.
- ``observe``: ``topo echo``, ``topo hz``, ``topo sockets``: what flows through a running
  topology, seen from another terminal.
- ``editcmds``: ``topo restart`` and ``topo apply``: editing a running topology.
- ``send``: ``topo send``: one message injected into a running node's receiving socket, as
  a peer would; a service's reply printed.
- ``sendremote``: ``topo send`` to a node on another host, through the run's supervisor
  and that host's agent.
- ``frames``: message frames made safe to print (no control character reaches the terminal).
- ``early``: Ctrl-C in the first milliseconds of the ``topo`` command, before any command
  runs.
- ``epipe``: a reader that has gone (``topo logs RUN | head``): the command ends quietly,
  as ``cat`` does.
"""
