"""The command line: ``topo`` and its commands, on top of everything else.

Click commands (:mod:`topo.cli.main`), ``topo up``'s terminal and log files
(:mod:`topo.cli.launch`), and the commands that talk to a run from another terminal
(:mod:`topo.cli.client`). May import every package but :mod:`topo.testing`. Public names:
the ``topo`` script (``topo.cli.main:main``), ``python -m topo``.

Modules, in the order a run meets them:

- ``main``: The ``topo`` command line: click commands and nothing else.
- ``launch``: ``topo up``: a validated file, a supervisor, the terminal and the log files.
- ``client``: ``topo ps``, ``topo down`` and ``topo logs``: talking to runs from another
  terminal.
- ``early``: Ctrl-C in the first milliseconds of the ``topo`` command, before any command
  runs.
"""
