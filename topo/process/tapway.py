"""One tap's way from a node's socket to its reader: the tap, the PUSH its copies leave
by, and what was lost on the way.

The sender thread (:mod:`topo.process.tapping`) owns every way of its process and calls
:meth:`TapWay.forward` at each turn: the copies the tap queued since are sent in batches
(:mod:`topo.process.tapwire` has the format) with NOBLOCK behind a small high-water mark
(:data:`SEND_COPIES` copies). A batch the PUSH refuses (its reader behind) waits with the
way, counted in the tap's bound with what the tap queues meanwhile, until
:meth:`TapWay.writable`; once that bound is reached the node drops and counts new copies
in its own thread (counting costs it less than copying). ``missed`` is the running total of
what was lost, so a reader that lost some of the copies themselves still knows how many
it lost.

This thread shares the node's interpreter lock: what it spends per copy, the node waits.
So a batch is made from the tap's queue with a slice per column and packed in C
(:func:`topo.process.tapwire.pack`), never with a Python loop per copy.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import zmq

from topo.process import tap as taps
from topo.process.taprecord import RecordTap
from topo.process.tapwire import MISSED, ON, STRIDE, batch_hwm, cut, pack

#: Seconds a tap lives without being renewed.
LEASE = 4.0
#: Copies a requester's PUSH holds before the sender drops them, and its high-water mark
#: in batch messages (:mod:`topo.process.tapwire`).
SEND_COPIES = 1000
SEND_HWM = batch_hwm(SEND_COPIES)
#: Reconnect interval (ms) of a recording tap's PUSH: the recorder may bind after the
#: process starts, and what is queued meanwhile waits for it.
RECORD_RECONNECT_MS = 10

#: pyzmq's own send, under the Python layer of ``zmq.Socket.send`` (which only handles
#: ``routing_id`` and ``group``): the sender calls it per batch.
_push_frame = zmq.backend.Socket.send
_NOBLOCK = int(zmq.NOBLOCK)
_now = time.time_ns


class TapWay:
    """One tap on one instance's socket, as the sender thread holds it."""

    def __init__(self, tap_id: str, instance: str, socket: str, endpoint: str, directions: frozenset[str],
                 notify: Callable[[], None], stall: float | None = None) -> None:
        self.tap_id, self.instance, self.socket, self.endpoint = tap_id, instance, socket, endpoint
        #: A recording's tap (``stall`` given): put on by the node's thread, never dropping
        #: while the recorder keeps up, no lease.
        self.record: RecordTap | None = None
        self.tap: taps.Tap
        if stall is not None:
            self.tap = self.record = RecordTap(directions, stall, notify=notify)
            self.lease_until = float("inf")
        else:
            self.tap = taps.Tap(directions, notify=notify)
            self.lease_until = time.monotonic() + LEASE
        self.told_stall = False
        self.sock: Any = None       # the node's socket once attached
        self.push: Any = None       # the sender thread's own, once connected
        self.unsent = 0             # copies the PUSH could not take
        self.told_missed = 0        # the total last sent to the reader
        self.full = False           # the PUSH refused a copy: its reader is behind
        self.head = (tap_id.encode(), instance.encode())
        self.ended = False
        self.end_ns = 0             # the time of the ``end`` marker sent (a recording's)
        #: Copies taken from the tap and not yet sent (the PUSH refused them), as columns
        #: of the tap's items (codes, frames, sizes, times), from index ``_at`` on.
        self._codes: list[Any] = []
        self._frames: list[Any] = []
        self._sizes: list[int] = []
        self._times: list[int] = []
        self._at = 0

    @property
    def missed(self) -> int:
        return self.tap.dropped + self.unsent

    def connect(self, ctx: zmq.Context[Any]) -> None:
        """The PUSH to the tap's reader, and the ``on`` marker first on it."""
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDHWM, SEND_HWM)
        if self.record is not None:
            push.setsockopt(zmq.RECONNECT_IVL, RECORD_RECONNECT_MS)
        push.connect(self.endpoint)
        self.push = push
        self.send_marker(ON)

    def forward(self) -> bool:
        """Sends what the tap holds, in batches of up to
        :data:`~topo.process.tapwire.BATCH_COPIES` copies: one zmq message per copy cost
        this thread more than the node's own send. True if it sent any. What a full PUSH
        refuses stays with this way (see the module's docstring)."""
        tap = self.tap
        missed = self.missed
        if self._at == len(self._codes):
            # all at once (what is queued now; what comes meanwhile waits for the next
            # turn): taking a part would move the rest of the list down, each time
            taken = tap.take_items()
            if taken:
                self._codes, self._frames, self._sizes, self._times = (taken[i::STRIDE] for i in range(STRIDE))
                self._at = 0
                tap.room -= len(taken)  # out of the queue, not out of its bound, until sent
        sent = self._send_pending(missed) if self._at < len(self._codes) else 0
        if sent:
            tap.room += sent * STRIDE
            if self.record is not None:
                self.record.taken()
            self.told_missed = missed
        self._tell_missed()
        return sent > 0

    @property
    def holding(self) -> bool:
        """Whether copies wait to be sent: in the tap's queue, or taken and refused."""
        return bool(self.tap.items) or self._at < len(self._codes)

    def _send_pending(self, missed: int) -> int:
        """The copies taken and not yet sent, in batches, a zmq message of one frame each,
        until the PUSH refuses one (kept, from that copy on, for a turn when it has room).
        How many copies left (sent, or lost to an error the PUSH will not get over).

        Kept here, in the columns they were taken in, rather than put back at the front of
        the tap's queue: putting back moved the whole queue (10,000 copies' items, each
        referenced again) at every turn of a reader that is behind, to send the few
        hundred it had room for; the node waited for all of it."""
        tap, push = self.tap, self.push
        codes, frames, sizes, times = self._codes, self._frames, self._sizes, self._times
        tap_id, instance = self.head
        start = first = self._at
        sent = 0
        while start < len(codes):
            end = cut(sizes, start)
            batch = pack(tap_id, instance, _now(), missed, codes[start:end], frames[start:end], sizes[start:end],
                         times[start:end])
            try:
                _push_frame(push, batch, _NOBLOCK)
            except zmq.Again:  # kept for a later turn, counted in the tap's bound
                self.full = True
                break
            except zmq.ZMQError:
                self.unsent += end - start
            else:
                sent += end - start
            tap.bytes_out += taps.counted(sizes[start:end])  # (this thread is the counter's one writer)
            start = end
        self._at = start
        if start == len(codes):
            self._codes = self._frames = self._sizes = self._times = []
            self._at = 0
        return start - first

    def _tell_missed(self) -> None:
        if self.missed != self.told_missed and not self.full:
            self.send_marker(MISSED)

    def writable(self) -> bool:
        """Whether a full PUSH has room again."""
        if not int(self.push.getsockopt(zmq.EVENTS)) & zmq.POLLOUT:
            return False
        self.full = False
        return True

    def send_marker(self, direction: str, time_ns: int | None = None) -> bool:
        """A marker (a message with no frames); True unless the PUSH was full."""
        missed = self.missed
        head = [self.tap_id.encode(), self.instance.encode(), direction.encode(),
                str(time_ns or time.time_ns()).encode(), str(missed).encode()]
        try:
            self.push.send_multipart(head, zmq.NOBLOCK)
            self.told_missed = missed
            return True
        except zmq.Again:
            pass
        except zmq.ZMQError:
            return True  # not worth trying again
        return False

    def drop_queued(self) -> None:
        """What the tap still holds is counted as not sent (the end's time is up)."""
        tap = self.tap
        taken = tap.take_items()
        left = self._sizes[self._at:]
        self.unsent += len(taken) // STRIDE + len(left)
        tap.bytes_out += taps.counted(taken[2::STRIDE]) + taps.counted(left)
        tap.room += len(left) * STRIDE
        self._codes = self._frames = self._sizes = self._times = []
        self._at = 0

    def close(self) -> None:
        self.ended = True
        if self.sock is not None:
            taps.detach(self.sock, self.tap)
        if self.push is not None:
            self.push.close(linger=0)
