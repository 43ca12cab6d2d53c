"""The events a process has for the supervisor, in order, within a bound.

Every thread of a node process may report (a node's output line, its end, the runtime's
bye), and one thread sends (:meth:`topo.process.runtime.ProcessRuntime._send_loop`). Between
them sits this queue. Output is bounded: a node printing faster than the supervisor takes
its lines blocks in ``print`` once :data:`MAX_OUTPUT_BYTES` of them wait, as it would on a
pipe to a terminal, so a node printing until stopped keeps its memory. Control events
(exited, failed, bye...) never wait and are never dropped: a few per node, they are what the
supervisor decides on, and each keeps its place after the output written before it.

Output is dropped only when the runtime says so (:meth:`Outbox.drop_output`: the run is
stopping and its grace is over, or nobody is left to read), with a count.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from topo.process.control import Kind, Message

#: Output waiting to be sent, in characters of line text, before a printing node waits.
#: About a megabyte: tens of milliseconds of the supervisor's reading, and nothing a
#: process notices in its memory.
MAX_OUTPUT_BYTES = 1 << 20
#: How often a writer kept waiting looks again whether output is being dropped by now
#: (it is woken at once by a send or a drop; this only bounds each wait).
_WAIT_STEP = 0.5


class Outbox:
    """A FIFO of messages (``None`` ends the sender); output is bounded, see the module."""

    def __init__(self, max_output: int = MAX_OUTPUT_BYTES) -> None:
        self._max_output = max_output
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[tuple[Message | None, int]] = deque()  # (message, output size)
        self._output = 0  # characters of output lines queued
        self._dropping = False
        #: Output lines dropped (after :meth:`drop_output`).
        self.dropped = 0
        #: ``time.monotonic()`` of the last message taken by the sender: how the runtime
        #: tells a slow reader from a stuck one.
        self.progress = time.monotonic()

    def put(self, message: Message | None) -> None:
        """A control event (or ``None``, the sender's end): queued at once, never dropped."""
        with self._cond:
            self._queue.append((message, 0))
            self._cond.notify_all()

    def put_output(self, message: Message, size: int) -> None:
        """An output line of ``size`` characters: waits while the bound is reached (the
        printing node waits), unless output is being dropped."""
        size = max(1, size)
        with self._cond:
            while (not self._dropping and self._output > 0
                   and self._output + size > self._max_output):
                self._cond.wait(_WAIT_STEP)
            if self._dropping:
                self.dropped += 1
                return
            self._queue.append((message, size))
            self._output += size
            self._cond.notify_all()

    def get(self) -> Message | None:
        """The next message, in order (blocks: the sender thread's only wait)."""
        with self._cond:
            while not self._queue:
                self._cond.wait()
            message, size = self._queue.popleft()
            self._output -= size
            self.progress = time.monotonic()
            self._cond.notify_all()
            return message

    def drop_output(self) -> None:
        """From now on output is counted, not sent, and what waits is dropped; writers
        waiting for room go on at once. Control events stay, in order."""
        with self._cond:
            self._dropping = True
            kept = deque(item for item in self._queue if item[0] is None or item[0].kind is not Kind.OUTPUT)
            self.dropped += len(self._queue) - len(kept)
            self._queue = kept
            self._output = 0
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)
