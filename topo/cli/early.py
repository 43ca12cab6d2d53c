"""Ctrl-C in the first milliseconds of the ``topo`` command, before any command runs.

Imported by :mod:`topo.cli.main` before click (some 30 ms of imports): from then on a
Ctrl-C ends the command at once with the status a shell gives Ctrl-C. Nothing has been
started that would need undoing, and Python's own handler would raise KeyboardInterrupt
in the middle of an import (a traceback; once seen swallowed whole by importlib, the
Ctrl-C lost and ``topo up`` running on), or click would turn it into ``Aborted!`` and
status 1. Each command gets Python's handler back once click has found it
(``_TopoGroup.resolve_command``), except ``topo up``: it keeps this one until its own
take over (:class:`topo.cli.launch.StopSignals`, or ``topo.cli.detach._Forward`` with
``-d``). With Python's, a Ctrl-C in between (the launcher's imports, the arguments) raised
KeyboardInterrupt wherever the main thread was, and one raised in a finalizer or a weakref
callback, which the collector runs at any moment, is only printed: the Ctrl-C was lost
and the run went on until killed.

Only for the ``topo`` command itself (the console script or ``python -m topo``): a
program that imports :mod:`topo.cli.main` (a test with click's runner) keeps its
handlers.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: Exit status after Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130


def interrupted(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def is_the_command() -> bool:
    """This process is the ``topo`` command: its script, or ``python -m topo``."""
    first = sys.argv[0] if sys.argv else ""
    return os.path.basename(first) == "topo" or first.endswith(os.path.join("topo", "__main__.py"))


def install() -> None:
    signal.signal(signal.SIGINT, interrupted)


if is_the_command():
    install()
