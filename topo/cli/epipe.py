"""A reader that has gone (``topo logs RUN | head``): the command ends quietly, as ``cat`` does.

Python ignores SIGPIPE, so a write to a pipe nobody reads any more raises
BrokenPipeError wherever the command happens to be; unhandled it read ``internal error``,
and at exit the interpreter's flush of stdout added ``Exception ignored ...``. Instead
(:meth:`topo.cli.main._TopoGroup.invoke`, the one place errors become statuses):

- the error counts as the reader's going only when stdout or stderr really is a pipe
  (or socket) without a reader (:func:`reader_gone`); a BrokenPipeError of topo's own
  (another pipe) stays an internal error;
- every standard stream whose reader has gone is pointed at ``/dev/null``
  (:func:`silence`), so what is left in its buffer, and the interpreter's last flush, go
  nowhere instead of raising again;
- the command's status is :data:`EXIT_PIPE`, and the ``topo`` command itself then ends by
  SIGPIPE (:func:`die`), as ``cat``, ``grep`` and ``git`` do: 141 in a shell, nothing
  printed, and ``set -o pipefail`` sees what it sees for them.

``topo up`` never gets here: a closed terminal ends its display, not the run
(:class:`topo.cli.launch.TerminalReporter`).
"""

from __future__ import annotations

import os
import select
import signal
import sys
from typing import NoReturn, TextIO

#: The status of a command whose reader went away: a shell's for a process that SIGPIPE
#: ended (128 + 13). In-process (click's test runner) it is the command's exit code.
EXIT_PIPE = 128 + signal.SIGPIPE


def _fd(stream: TextIO | None) -> int | None:
    try:
        return stream.fileno() if stream is not None else None
    except (AttributeError, ValueError, OSError):  # closed, or no descriptor (a StringIO)
        return None


def _fd_gone(fd: int) -> bool:
    """``fd`` is the write end of a pipe (or a socket) that no one can read any more:
    Linux polls it POLLERR (a pipe) or POLLHUP (a socket) for good."""
    poller = select.poll()
    try:
        poller.register(fd, select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError):
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def stream_gone(stream: TextIO | None) -> bool:
    """The reader of ``stream`` (a real file descriptor) has gone."""
    fd = _fd(stream)
    return fd is not None and _fd_gone(fd)


def reader_gone(err: BaseException) -> bool:
    """``err`` is what writing to stdout or stderr raises once its reader has gone."""
    return isinstance(err, BrokenPipeError) and (stream_gone(sys.stdout) or stream_gone(sys.stderr))


def silence() -> None:
    """Points every standard stream whose reader has gone at ``/dev/null``: its buffer's
    rest and the interpreter's flush at exit then succeed, writing nothing."""
    for stream in (sys.stdout, sys.stderr):
        fd = _fd(stream)
        if fd is None or not _fd_gone(fd):
            continue
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def die() -> NoReturn:
    """Ends the process by SIGPIPE, as a Unix tool whose reader has gone ends: status 141 in
    a shell, no message. Should the signal not end it (it cannot be unblocked), the same
    status by ``_exit``."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})
    signal.raise_signal(signal.SIGPIPE)
    os._exit(EXIT_PIPE)
