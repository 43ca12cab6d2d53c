"""The read ends of each local process's output pipes, owned by the supervisor.

A process's output is read outside it (:mod:`topo.process.records`): what a node printed,
and what anything wrote to fds 1 and 2, is in a pipe here the moment the write returns, so
the last words of a process that dies at once (``os._exit``, a signal, ``abort()``) are
shown and logged too. :func:`open_pipes` makes the three pipes of one process;
:class:`Pipes` reads them in the supervisor's loop.

Order: the lines of a node come before what the supervisor says of its end, because the
pipes of a process are read to the bottom (:meth:`Pipes.drain`) before its events
"exited", "failed", "stopped", "bye" and its end are handled. Lines written to fds 1/2
directly and lines a node printed travel in different pipes, so their order relative to
each other is the order they are read in, as with the capture thread before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from topo.process.capture import MAX_LINE
from topo.process.records import parse

if TYPE_CHECKING:  # imported by spawn, which runs before zmq is (topo.supervisor.prestart)
    import zmq

Show = Callable[[str, str, bool], None]
_POLLIN = 1  # zmq.POLLIN
#: Read at most this much of one pipe per call: one process's flood cannot keep the loop.
_CHUNK = 1 << 16
#: What one read of a pipe found (:meth:`ChildOutput._read`).
_READ, _NOTHING, _EOF = 1, 0, -1


class ChildOutput:
    """The read ends of one process's pipes: records (none for a program: it writes
    lines, no records), fd 1, fd 2."""

    def __init__(self, records: int | None, out: int, err: int, default: str) -> None:
        self.default = default
        self.records, self.err = records, err
        self.fds = (out, err) if records is None else (records, out, err)
        for fd in self.fds:
            os.set_blocking(fd, False)
        self._pending = {fd: b"" for fd in self.fds}
        self._joined: dict[tuple[str, bool], bytes] = {}  # a record's line going on

    def read(self, fd: int, show: Show, limit: int = _CHUNK) -> bool:
        """Shows the complete lines of at most ``limit`` bytes; False at end of file."""
        return self._read(fd, show, limit) != _EOF

    def _read(self, fd: int, show: Show, limit: int = _CHUNK) -> int:
        """:meth:`read`: :data:`_READ` (lines shown), :data:`_NOTHING` (nothing there now:
        the read ends are non-blocking) or :data:`_EOF`."""
        try:
            chunk = os.read(fd, limit)
        except BlockingIOError:
            return _NOTHING
        except OSError:
            chunk = b""
        if not chunk:
            return _EOF
        *lines, rest = (self._pending[fd] + chunk).split(b"\n")
        while len(rest) >= MAX_LINE:  # a line without end is cut (a record is far shorter)
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._pending[fd] = rest
        for line in lines:
            self._line(fd, line, show)
        return _READ

    def drain(self, show: Show) -> None:
        """Everything already written, without waiting (bounded by what is there now, and
        for a writer that goes on, by 64 reads a pipe)."""
        for fd in self.fds:
            for _ in range(64):
                if self._read(fd, show) != _READ:
                    break

    def close(self, show: Show) -> None:
        """Drains, shows unfinished lines and closes the read ends (a descendant still
        writing there after its process ended gets EPIPE)."""
        self.drain(show)
        for fd in self.fds:
            if self._pending[fd]:
                self._line(fd, self._pending[fd], show)
            os.close(fd)
        for (name, err), data in self._joined.items():
            show(name, data.decode("utf-8", "replace"), err)
        self._joined.clear()

    def _line(self, fd: int, line: bytes, show: Show) -> None:
        if fd != self.records:
            show(self.default, line.removesuffix(b"\r").decode("utf-8", "replace"), fd == self.err)
            return
        record = parse(line)
        if record is None:
            show(self.default, line.decode("utf-8", "replace"), False)
            return
        name, err, more, text = record
        text = self._joined.pop((name, err), b"") + text
        if more and len(text) < MAX_LINE * 4:
            self._joined[name, err] = text
        else:
            show(name, text.decode("utf-8", "replace"), err)


def open_pipes(default: str) -> tuple[ChildOutput, tuple[int, int, int]]:
    """Three pipes for a process about to be started: the reader's side, and the write ends
    to hand to the child (the caller closes them once the child has them)."""
    (records, records_w), (out, out_w), (err, err_w) = os.pipe(), os.pipe(), os.pipe()
    return ChildOutput(records, out, err, default=default), (records_w, out_w, err_w)


def open_program_pipes(default: str) -> tuple[ChildOutput, tuple[int, int]]:
    """:func:`open_pipes` for a program (an exec node): fds 1 and 2 only."""
    (out, out_w), (err, err_w) = os.pipe(), os.pipe()
    return ChildOutput(None, out, err, default=default), (out_w, err_w)


def batch_of(reporter: object) -> Callable[[], AbstractContextManager[None]] | None:
    """The reporter's ``batch``, if its class has one (a reporter whose ``__getattr__``
    answers any name would give one that is no context manager: bench/exec.py's did)."""
    return getattr(reporter, "batch") if callable(getattr(type(reporter), "batch", None)) else None


class Pipes:
    """The pipes of every local process, polled in the supervisor's loop."""

    def __init__(self, poller: zmq.Poller, show: Show,
                 batch: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        """``batch``: the lines of one drain or close are shown inside it (the reporter's
        log files write them together: :meth:`topo.supervisor.output.LogFiles.batch`); the
        supervisor's loop takes it around each of its turns, whose reads are inside."""
        self._poller = poller
        self._show = show
        #: Lines shown inside reach the log files together.
        self.batch = batch or nullcontext
        self._by_proc: dict[str, ChildOutput] = {}
        self._by_fd: dict[int, ChildOutput] = {}
        self._held = False

    def add(self, proc: str, output: ChildOutput | None) -> None:
        """A process (re)started with ``output`` (None: it has no pipes, e.g. adopted
        from elsewhere); the pipes of its previous start are closed first."""
        self.close(proc)
        if output is None:
            return
        self._by_proc[proc] = output
        for fd in output.fds:
            self._by_fd[fd] = output
            if not self._held:
                self._poller.register(fd, _POLLIN)

    def owns(self, fd: Any) -> bool:
        return isinstance(fd, int) and fd in self._by_fd

    def read(self, fd: int) -> None:
        output = self._by_fd[fd]
        if not output.read(fd, self._show):  # end of file: nothing more will come
            self._forget(fd)

    def drain(self, proc: str) -> None:
        """Shows what ``proc`` wrote so far: before anything is said of its nodes' end."""
        output = self._by_proc.get(proc)
        if output is not None:
            with self.batch():
                output.drain(self._show)

    def close(self, proc: str) -> None:
        """``proc`` ended: everything it wrote is shown, its pipes closed."""
        output = self._by_proc.pop(proc, None)
        if output is None:
            return
        for fd in output.fds:
            self._forget(fd)
        with self.batch():
            output.close(self._show)

    def close_all(self) -> None:
        for proc in list(self._by_proc):
            self.close(proc)

    def discard(self) -> None:
        """Closes every pipe left without reading it (the run failed: nothing to show it)."""
        for output in self._by_proc.values():
            for fd in output.fds:
                os.close(fd)
        for fd in list(self._by_fd):
            self._forget(fd)
        self._by_proc.clear()

    def hold_for(self, reporter: object) -> float:
        """While the terminal is behind but taking text (the reporter's ``hold_until``),
        the pipes are left unread, so the nodes wait in ``print``; everything else goes
        on. Returns when to look again (:mod:`topo.supervisor.terminal`)."""
        hold = getattr(reporter, "hold_until", lambda: None)()
        self.hold(hold is not None)
        return float("inf") if hold is None else hold

    def hold(self, held: bool) -> None:
        """While held, the pipes are not polled: the nodes wait in ``print``."""
        if held == self._held:
            return
        self._held = held
        for fd in self._by_fd:
            if held:
                self._poller.unregister(fd)
            else:
                self._poller.register(fd, _POLLIN)

    def _forget(self, fd: int) -> None:
        if self._by_fd.pop(fd, None) is not None and not self._held:
            self._poller.unregister(fd)
