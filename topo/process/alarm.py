"""A wake-up that a thread can wait on together with zmq sockets' readiness.

The taps' sender thread waits for two kinds of thing at once: a word from another thread
(a new tap, a copy queued into an empty tap, the process's end) and room in a PUSH whose
reader is behind. Looking at the PUSH again every millisecond was the obvious way, and a
costly one: each look makes the thread want the interpreter lock, and while one thread
waits for the lock every release of it by the node's threads (twice per message on an
inproc link: the send and the receive) signals a condition variable, a system call. A
tapped node whose reader read nothing ran at 0.52–0.61x of its untapped rate with those
looks, 0.79–0.83x without them (``bench/tap.py --messages 500000``, inproc). So the
thread sleeps in ``zmq_poll`` until libzmq says the PUSH has room (at its low-water mark)
or the alarm rings.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import zmq


class Alarm:
    """A :class:`threading.Event` whose :meth:`wait` can also end when a socket may send.

    The pipe is written only while the owner sleeps in :meth:`wait` with sockets (a flag
    set before it looks at the event), so :meth:`set` from a node's thread costs a
    system call only then."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._polling = False
        self._pipe: tuple[int, int] | None = None
        self._lock = threading.Lock()  # a write never meets a pipe being closed

    def set(self) -> None:
        self._event.set()
        if self._polling:
            with self._lock:
                if self._pipe is not None:
                    try:
                        os.write(self._pipe[1], b"!")
                    except OSError:
                        pass  # full: the waiter is woken already

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float, writable: Sequence[zmq.Socket[Any]] = ()) -> None:
        """Until the alarm is set, ``timeout`` seconds pass, or (given) one of
        ``writable`` may send. Set, it is cleared here when sockets were given (the caller
        looks at everything after this anyway), so a loop of waits never spins on it."""
        if not writable:
            self._event.wait(timeout)
            return
        if self._pipe is None:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._pipe = (r, w)
        self._polling = True  # before the look at the event: a set() after it writes the pipe
        try:
            if not self._event.is_set():
                zmq.zmq_poll([(self._pipe[0], zmq.POLLIN), *((s, zmq.POLLOUT) for s in writable)],
                             max(0, int(timeout * 1000)))
        finally:
            self._polling = False
        self._event.clear()
        try:
            while os.read(self._pipe[0], 4096):
                pass
        except OSError:
            pass  # empty

    def close(self) -> None:
        """Once nobody waits any more (the sender thread's end). A :meth:`set` after it
        only sets the event."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            for fd in pipe:
                os.close(fd)
