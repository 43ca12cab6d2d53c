"""A tap that records: it never drops a copy while its reader keeps up; the node waits.

``topo up --record`` promises that nothing is missed: the copies of a recorded socket must
all reach the recorder, whatever the rate. A plain :class:`topo.process.tap.Tap` drops
what does not fit in its bounded queue (a slow ``topo echo`` must never slow the node);
a :class:`RecordTap` makes the node's ``send`` or ``recv`` wait for room instead, so memory
stays bounded by the queue and the node goes at the recorder's pace.

A recorder that dies or hangs must not hang the nodes: a node that has waited
``stall`` seconds without a single copy being taken gives up waiting, and the tap drops
and counts from then on, as a plain tap does (:attr:`RecordTap.stalled`: the process says
so on the run's output, and the recording shows the count as a gap in the channel's
sequence numbers). A stop releases every wait too: a stopping node must not wait for
a recorder.
"""

from __future__ import annotations

import threading
from typing import Callable

from topo.process.tap import IN, OUT, Tap


class RecordTap(Tap):
    """A :class:`Tap` whose node waits for room (see the module's docstring). The taker
    (:mod:`topo.process.tapping`) calls :meth:`taken` after taking copies."""

    def __init__(self, directions: frozenset[str] = frozenset({IN, OUT}), stall: float = 5.0,
                 notify: Callable[[], None] | None = None) -> None:
        super().__init__(directions, notify=notify)
        self.stall = stall
        #: The node waits for room (False once stalled, or released by a stop).
        self.blocking = True
        #: A wait ran ``stall`` seconds with no copy taken: copies are dropped from then on.
        self.stalled = False
        self._room = threading.Event()
        self._waiting = False

    def _over(self) -> bool:
        return len(self.items) >= self.room or self.bytes_in - self.bytes_out >= self.max_bytes

    def _queue(self, code: bytes, frames: bytes | list[bytes]) -> None:
        if self.blocking and self._over():
            self._wait_room()
        Tap._queue(self, code, frames)

    def _wait_room(self) -> None:
        """In the node's thread, until the taker has made room: each copy taken restarts
        the ``stall`` seconds; none taken within them, the tap stalls (drops from now on)."""
        room = self._room
        while self.blocking and self._over():
            room.clear()
            self._waiting = True
            if not self._over():
                break
            notify = self.notify
            if notify is not None:
                notify()  # the taker may be idle: a full queue is worth its look
            if not room.wait(self.stall) and self.blocking and self._over():
                self.stalled = True
                self.blocking = False
        self._waiting = False

    def taken(self) -> None:
        """The taker took copies: a node waiting for room goes on."""
        if self._waiting:
            self._room.set()

    def stall_notice(self, label: str) -> str:
        """What the run's output says of a stall of ``label``'s recording."""
        return (f"topo: recording {label}: the recorder took no copy for {self.stall:g}s; copies that do "
                "not fit are dropped from now on (counted in the recording)")

    def release(self) -> None:
        """No more waits (the run stops, or the process ends): what does not fit is dropped."""
        self.blocking = False
        self._room.set()
