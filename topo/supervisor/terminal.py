"""``topo up``'s stdout, written by a thread of its own so the supervisor never waits on it.

A terminal scrolled back, a pager, Ctrl-S or ``topo up | sleep 30`` stop reading; a write
to it then blocks until they read again. The supervisor's loop must go on meanwhile (``topo
ps``, ``topo down``, Ctrl-C, deadlines, restarts), so it only hands text to a
:class:`Terminal`, which a thread writes to the file descriptor. Two bounds:

- over :data:`SOFT_LIMIT` bytes waiting, :meth:`Terminal.hold_until` asks the supervisor to
  stop reading the nodes' output for a while: the nodes wait in ``print``
  (:mod:`topo.process.outbox`), as a pipe to a terminal makes them, and every line is
  shown however slow the reader -- as long as it reads;
- once the terminal has taken nothing for :data:`STALL` seconds, it is stalled: the
  supervisor reads on, the log files keep every line, and what would pass
  :data:`HARD_LIMIT` bytes is dropped from the display and counted; when the terminal
  takes text again, a line of topo's says how many lines it did not show.

A closed terminal (``topo up | head``) ends the display, not the run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import cast

#: Bytes waiting before the supervisor holds the nodes' output back.
SOFT_LIMIT = 256 << 10
#: Bytes waiting beyond which lines are dropped from the display (the log keeps them).
HARD_LIMIT = 4 << 20
#: Seconds without the terminal taking anything before it counts as stalled.
STALL = 2.0


class Terminal:
    """A text stream (``write``, ``flush``, ``isatty``) over ``fd`` that never blocks."""

    def __init__(self, fd: int, encoding: str = "utf-8", *,
                 notice: Callable[[int], str] = lambda n: f"topo | {n} line(s) not shown\n") -> None:
        self._fd = fd
        self.encoding = encoding
        #: ``notice(n)``: the text saying ``n`` lines were not shown (topo's own line).
        self.notice = notice
        self._tty = _isatty(fd)
        self._cond = threading.Condition(threading.Lock())
        #: Text to write; a ``[n]`` stands for ``n`` lines dropped there (the notice).
        self._chunks: list[bytes | list[int]] = []
        self._size = 0  # bytes in _chunks
        self._writing = 0  # bytes the thread is writing now
        self._progress = time.monotonic()  # the terminal last took something
        #: Lines not shown in all, for the summary.
        self.dropped = 0
        self._closed = False  # the reader went away (EPIPE): nothing more is shown
        #: Called from the writer thread when room is made after a hold (the supervisor's
        #: wake-up), so that it reads the nodes' output again at once.
        self.on_room: Callable[[], None] = lambda: None
        self._held = False
        self._thread = threading.Thread(target=self._run, name="topo:terminal", daemon=True)
        self._thread.start()

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        """Queues ``text`` (whole lines) for the thread; never waits."""
        data = text.encode(self.encoding, "replace")
        with self._cond:
            if self._closed:
                return len(text)
            if self._size + self._writing + len(data) > HARD_LIMIT:
                lines = max(1, text.count("\n"))
                self.dropped += lines
                if not self._chunks or not isinstance(self._chunks[-1], list):
                    self._chunks.append([0])  # where the notice goes: after what was kept
                    self._cond.notify()
                cast(list[int], self._chunks[-1])[0] += lines
                return len(text)
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the thread writes as soon as there is text (see :meth:`drain`)."""

    def stalled(self) -> bool:
        with self._cond:
            return self._stalled(time.monotonic())

    def hold_until(self) -> float | None:
        """While the terminal is taking text but more than :data:`SOFT_LIMIT` bytes wait:
        the time until which the supervisor may leave the nodes' output unread (when the
        terminal would count as stalled); otherwise None."""
        with self._cond:
            if self._closed or self._size + self._writing < SOFT_LIMIT:
                self._held = False
                return None
            now = time.monotonic()
            if self._stalled(now):
                return None
            self._held = True
            return self._progress + STALL

    def drain(self, timeout: float) -> bool:
        """Waits until everything queued is written, while the terminal keeps taking text
        (at most ``timeout`` seconds without progress); True when all was written."""
        started = time.monotonic()  # a terminal idle before is not one that stopped taking text
        with self._cond:
            while (self._chunks or self._writing) and not self._closed:
                left = max(self._progress, started) + timeout - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _stalled(self, now: float) -> bool:
        return bool(self._size or self._writing) and now - self._progress > STALL

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks:
                    self._cond.wait()
                # A notice last, after text, stays queued: the lines dropped while that text
                # is written (a stalled reader) add to its count, and one notice tells them
                # all, written once the text is (or alone, right away, if it is all there is).
                take = self._chunks[:-1] if len(self._chunks) > 1 and isinstance(self._chunks[-1], list) \
                    else self._chunks
                data = b"".join(c if isinstance(c, bytes) else self.notice(c[0]).encode(self.encoding, "replace")
                                for c in take)
                del self._chunks[:len(take)]
                self._size = sum(len(c) for c in self._chunks if isinstance(c, bytes))
                self._writing = len(data)
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view[:1 << 16])
                except InterruptedError:
                    continue
                except OSError:  # EPIPE, EIO: the reader is gone; the log files go on
                    with self._cond:
                        self._closed, self._chunks, self._size = True, [], 0
                        self._writing = 0
                        self._cond.notify_all()
                    return
                view = view[n:]
                with self._cond:
                    self._progress = time.monotonic()
                    self._writing = len(view)
                    room = self._held and self._size + self._writing < SOFT_LIMIT // 2
                    self._cond.notify_all()
                if room:
                    self._held = False
                    self.on_room()


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
