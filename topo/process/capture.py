"""Child side of output: which node instance wrote each line, in a process running several.

Nodes sharing a process share one ``sys.stdout`` and one fd 1, yet the supervisor must
prefix every line with the instance that wrote it. So :class:`Capture` replaces
``sys.stdout``/``sys.stderr`` with writers that look at the writing thread, and can point
fds 1 and 2 at pipes read by a thread of its own, for C code and subprocesses.

Attribution: a thread belongs to the instance it was bound to (:meth:`Capture.bind_thread`;
the runtime binds each node thread). Any other thread -- including threads a node starts
itself, unless it binds them -- and everything written to fds 1/2 directly is attributed
to ``default_name``. ``node.log`` (:func:`node_logger`) names its node explicitly, so a
record is attributed right whichever thread logs it.

Every line reaches ``emit(name, line, is_err)`` once, whole, from whatever thread wrote
it, always under one lock: ``emit`` need not be thread-safe. What ``emit`` cannot take (it
raises, or prints itself) goes to the real stderr as ``name | line``: output never loops
and never raises into a node.
"""

from __future__ import annotations

import io
import os
import selectors
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO, cast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from typing_extensions import Self

Emit = Callable[[str, str, bool], None]

#: A line without a newline is cut at this many characters, so a progress bar that only
#: ever writes ``\r`` cannot grow a buffer without bound.
MAX_LINE = 65536
_LOG_FORMAT = "%(levelname)s %(message)s"


class Capture:
    """Turns a process's output into ``(instance, line, is_err)`` events; see the module."""

    def __init__(self, emit: Emit, default_name: str) -> None:
        self.default_name = default_name
        self._emit = emit
        self._lock = threading.RLock()
        self._local = threading.local()  # .emitting: this thread is inside emit
        self._names: weakref.WeakKeyDictionary[threading.Thread, str]
        self._names = weakref.WeakKeyDictionary()
        # (thread, is_err, written by emit itself) -> the line being written
        self._partial: dict[tuple[threading.Thread, bool, bool], str] = {}
        self._streams: tuple[TextIO, TextIO] | None = None
        self._fds: _FdPump | None = None
        _active.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bind_thread(self, name: str, thread: threading.Thread | None = None) -> None:
        """Attributes a thread's output to ``name``. A Thread may be bound before it starts,
        so not even its first line goes to the default name."""
        with self._lock:
            self._names[thread or threading.current_thread()] = name

    def unbind_thread(self, thread: threading.Thread | None = None) -> None:
        """Ends a node's claim on a thread, emitting its partial lines under its name first
        (unlike :meth:`flush`, other nodes' unfinished lines stay whole)."""
        thread = thread or threading.current_thread()
        with self._lock:
            self._flush_partials(thread)
            self._names.pop(thread, None)

    def name_of(self, thread: threading.Thread | None = None) -> str:
        with self._lock:
            return self._names.get(thread or threading.current_thread(), self.default_name)

    def write_line(self, name: str, text: str, err: bool = False) -> None:
        """Emits text as ``name``'s, one event per line: for reports of the runtime itself
        (a node's traceback), serialised with everything else."""
        with self._lock:
            for line in text.split("\n"):
                self._deliver(name, line, err)

    def install(self) -> None:
        """Replaces ``sys.stdout``/``sys.stderr``. The writers call ``emit`` and never touch
        fds 1/2, so this combines with :meth:`capture_fds` without looping back."""
        with self._lock:
            if self._streams is None:
                self._streams = (sys.stdout, sys.stderr)
                sys.stdout = cast(TextIO, _Writer(self, err=False))
                sys.stderr = cast(TextIO, _Writer(self, err=True))

    def uninstall(self) -> None:
        """Emits what is buffered and restores the streams, unless someone replaced ours
        since (restoring then would undo their change)."""
        with self._lock:
            self._flush_partials(None)
            if self._streams is not None:
                if isinstance(sys.stdout, _Writer) and sys.stdout.capture is self:
                    sys.stdout = self._streams[0]
                if isinstance(sys.stderr, _Writer) and sys.stderr.capture is self:
                    sys.stderr = self._streams[1]
                self._streams = None

    def flush(self) -> None:
        """Emits every partial line of every thread (a node ended on ``print(end="")``).

        The writers' own ``flush()`` does not: ``print(x, end="", flush=True)`` then
        ``print(y)`` is one line on a terminal, and stays one line here."""
        with self._lock:
            self._flush_partials(None)

    def capture_fds(self) -> None:
        """Points fds 1 and 2 at pipes, so C code and subprocesses are captured too (as
        ``default_name``); :meth:`close` restores them."""
        if self._fds is None:
            _flush_std()  # what Python buffered so far belongs to the old target
            self._fds = _FdPump(self)

    def redirect_fds(self, out: int, err: int) -> None:
        """Points fds 1 and 2 at ``out`` and ``err`` (pipes read outside this process, see
        :mod:`topo.process.records`) for good: what C code and subprocesses write there
        reaches the reader even if this process dies right after."""
        _flush_std()
        os.dup2(out, 1)  # inheritable: subprocesses write into the pipes
        os.dup2(err, 2)
        for fd in {out, err} - {1, 2}:
            os.close(fd)

    def close(self) -> None:
        """Restores streams and fds, emitting every partial line first."""
        self.uninstall()
        pump = self._fds
        if pump is not None:
            _flush_std()
            pump.stop()
            with self._lock:
                self._fds = None
            pump.release()
        with self._lock:
            self._flush_partials(None)
        if self in _active:
            _active.remove(self)

    def _write(self, text: str, err: bool) -> None:
        thread = threading.current_thread()
        with self._lock:
            key = (thread, err, bool(getattr(self._local, "emitting", False)))
            sink = self._fallback if key[2] else self._deliver
            *lines, rest = (self._partial.pop(key, "") + text).split("\n")
            name = self._names.get(thread, self.default_name)
            for line in lines:
                sink(name, line.removesuffix("\r"), err)
            while len(rest) >= MAX_LINE:
                sink(name, rest[:MAX_LINE], err)
                rest = rest[MAX_LINE:]
            if rest:
                self._partial[key] = rest

    def _flush_partials(self, thread: threading.Thread | None) -> None:
        for key in [k for k in self._partial if thread is None or k[0] is thread]:
            sink = self._fallback if key[2] else self._deliver
            sink(self._names.get(key[0], self.default_name), self._partial.pop(key), key[1])

    def _deliver(self, name: str, line: str, err: bool) -> None:
        """The one caller of ``emit``; the lock is held."""
        if getattr(self._local, "emitting", False):
            self._fallback(name, line, err)
            return
        self._local.emitting = True
        try:
            self._emit(name, line, err)
        except Exception:  # noqa: BLE001 - a broken channel must not kill the node printing
            self._fallback(name, line, err)
        finally:
            self._local.emitting = False

    def _fallback(self, name: str, line: str, err: bool) -> None:
        """Last resort for a line ``emit`` could not take: the real stderr, prefixed."""
        data = f"{name} | {line}\n"
        try:
            if self._fds is not None:
                os.write(self._fds.saved[2], data.encode("utf-8", "replace"))
            else:
                stream = self._streams[1] if self._streams else sys.__stderr__
                if stream is not None:
                    stream.write(data)
                    stream.flush()
        except (OSError, ValueError):
            pass  # nowhere left to report to


def _flush_std() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:  # C stdio buffers too, or a C library's last printf would miss the restore
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


class _FdPump:
    """fds 1/2 redirected into pipes, and the daemon thread reading them.

    :meth:`stop` restores the fds, then wakes the thread through a pipe of its own; the
    thread drains what is already written without blocking and ends, so stopping never
    waits for a subprocess that still holds a write end."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.saved: dict[int, int] = {}
        self.readers: dict[int, bool] = {}  # read end -> is_err
        self.wake_r, self.wake_w = os.pipe()
        try:
            for fd in (1, 2):
                self.saved[fd] = os.dup(fd)
                r, w = os.pipe()
                self.readers[r] = fd == 2
                os.set_blocking(r, False)
                os.dup2(w, fd)  # inheritable: subprocesses write into the pipe
                os.close(w)
        except OSError:  # e.g. fd 2 closed: leave the process as it was
            self.stop_redirect()
            self.release()
            raise
        self.thread = threading.Thread(target=self._run, name="topo-capture-fds", daemon=True)
        self.thread.start()

    def stop_redirect(self) -> None:
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)

    def stop(self) -> None:
        self.stop_redirect()
        os.write(self.wake_w, b"x")
        self.thread.join()

    def release(self) -> None:
        for fd in [*self.saved.values(), *self.readers, self.wake_r, self.wake_w]:
            os.close(fd)

    def _run(self) -> None:
        pending = {r: b"" for r in self.readers}
        with selectors.DefaultSelector() as sel:
            for r in self.readers:
                sel.register(r, selectors.EVENT_READ)
            sel.register(self.wake_r, selectors.EVENT_READ)
            stopping = False
            while not stopping and pending:
                for key, _ in sel.select():
                    if key.fd == self.wake_r:
                        stopping = True
                    elif not self._drain(key.fd, pending):  # end of file
                        sel.unregister(key.fd)
                        self._finish(key.fd, pending)
            for r in list(pending):  # the fds are restored: only what is already written
                self._drain(r, pending)
                self._finish(r, pending)

    def _drain(self, fd: int, pending: dict[int, bytes]) -> bool:
        """Emits the complete lines available (a bounded amount); False at end of file."""
        for _ in range(64):
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            *lines, rest = (pending[fd] + chunk).split(b"\n")
            while len(rest) >= MAX_LINE:
                lines.append(rest[:MAX_LINE])
                rest = rest[MAX_LINE:]
            pending[fd] = rest
            for line in lines:
                self._emit(line, fd)
        return True

    def _finish(self, fd: int, pending: dict[int, bytes]) -> None:
        rest = pending.pop(fd)
        if rest:
            self._emit(rest, fd)

    def _emit(self, line: bytes, fd: int) -> None:
        text = line.removesuffix(b"\r").decode("utf-8", "replace")
        self.capture.write_line(self.capture.default_name, text, self.readers[fd])


class _Writer(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of a captured process."""

    def __init__(self, capture: Capture, err: bool) -> None:
        super().__init__()
        self.capture = capture
        self._err = err
        self.buffer = _ByteWriter(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, like a real stream's
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.capture._write(s, self._err)
        return len(s)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a captured stream has no file descriptor")

    def flush(self) -> None:
        """Keeps partial lines: see :meth:`Capture.flush`."""


class _ByteWriter(io.RawIOBase):
    """``sys.stdout.buffer``, for code that writes bytes (expected to be UTF-8)."""

    def __init__(self, text: _Writer) -> None:
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer) -> int:
        """Decodes each write whole: code writing bytes writes whole lines in practice."""
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


#: Open captures, newest last: where node loggers send records by default.
_active: list[Capture] = []
