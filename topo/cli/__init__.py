"""The command line: ``topo`` and its commands, on top of everything else.

Click commands (:mod:`topo.cli.main`), ``topo up``'s terminal and log files
(:mod:`topo.cli.launch`), and the commands that talk to a run from another terminal
(:mod:`topo.cli.client`, :mod:`topo.cli.logview`). May import every package but
:mod:`topo.testing`. Public names: the ``topo`` script (``topo.cli.main:main``),
``python -m topo``.

Modules, in the order a run meets them:

- ``main``: The ``topo`` command line: click commands and nothing else.
- ``sourceopts``: ``FILE... -f FILE --set NODE.KEY=VALUE --profile NAME``, the options of
  every command that reads a topology.
- ``launch``: ``topo up``: a validated file, a supervisor, the terminal and the log files.
- ``detach``: ``topo up -d``: the run goes on in the background once every node is ready.
- ``attach``: ``topo attach``: a running run's output, as ``topo up`` shows it, until the
  run ends.
- ``client``: ``topo ps`` and ``topo down``: talking to runs from another terminal.
- ``logview``: ``topo logs``: which run, which node, which lines.
- ``observe``: ``topo echo``, ``topo hz``, ``topo sockets``: what flows through a running
  topology, seen from another terminal.
- ``frames``: message frames made safe to print (no control character reaches the terminal).
- ``early``: Ctrl-C in the first milliseconds of the ``topo`` command, before any command
  runs.
- ``epipe``: a reader that has gone (``topo logs RUN | head``): the command ends quietly,
  as ``cat`` does.
"""
