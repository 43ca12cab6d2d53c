"""The supervisor's way for ``topo up --record``'s copies from nodes on other hosts: from
the agents' relays (:mod:`topo.supervisor.remotetaps`) to the recorder's PULL, with
nothing lost while everyone is alive.

A recording makes nodes wait rather than lose a copy (:mod:`topo.process.taprecord`);
that wait must reach a node on another host when the recorder here is behind, without
this side reading a flood it cannot pass on, and without holding up the other hosts'
copies or ``topo send``, which share the one ROUTER. So a host's recorded copies travel
on credit: its agent sends at most :data:`WINDOW` bytes of them ahead (:mod:`topo.hosts.recordfeed`),
and gets their bytes back as credit once they have gone on to the recorder. A copy the
recorder's PUSH cannot take waits here, in its host's queue (at most a window), the
ones after it behind it; the agent, out of credit, stops reading its nodes' copies, and
their taps make the nodes wait. Memory stays bounded on every hop.

A recorder that takes nothing for :data:`STALL` seconds (dead, or hung) is given up as
the nodes give it up: what waits and what comes is dropped and counted from then on (a
``missed`` marker under the pseudo-instance ``relay``, as the other relays count), and
the credits still go back, so no node waits for it any more.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Mapping

import zmq

from topo.process.recordack import ask
from topo.process.tapping import RECORD_PREFIX, RECORD_RECONNECT_MS
from topo.process.tapwire import END, MISSED, copies_in, head

#: Bytes of recorded copies a host's agent may send before the supervisor has passed them
#: on. Counted in bytes, not messages: a message is a batch of up to 32 copies and 64 KiB
#: (or one larger copy), so a window of messages bounded nothing a user could reason about.
WINDOW = 4 << 20
#: Copies this side's PUSH holds for the recorder.
HWM = 1000
#: Seconds without a copy taken by the recorder after which it is given up.
STALL = 5.0
#: What the supervisor sends an agent: credit for so many more bytes of recorded copies.
CREDIT = b"k"
#: What an agent's relay says at its end, once its processes' recorded copies are all sent.
FLUSHED = b"f"

_PREFIX = RECORD_PREFIX.encode()
_END = END.encode()


def weight(frames: list[Any]) -> int:
    """What a recorded message costs in credit: its frames' bytes, counted the same way at
    both ends (the agent's PULL and the supervisor's ROUTER see the same frames)."""
    return sum(len(f) for f in frames)


def _raw(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else frame.bytes


def is_record(frames: list[Any]) -> bool:
    """Whether a copy (frames of the tap sender's format) is a recording's."""
    if len(frames) == 1:
        ids = head(frames)
        return ids is not None and ids[0].startswith(_PREFIX)
    return _raw(frames[0] if frames else b"").startswith(_PREFIX)


class RecordWays:
    """The recorder's PUSH, the copies waiting for it by host, the credits owed. Used from
    the remote taps' thread only."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, sockets: Mapping[str, tuple[str, ...]],
                 host_of: Callable[[str], str | None], ack: str = "") -> None:
        """``sockets``: instance → its recorded sockets; ``host_of``: an instance's remote host;
        ``ack``: where the recorder confirms an ``end`` read (:mod:`topo.process.recordack`)."""
        self._ctx, self._ack = ctx, ack
        #: The ``end`` markers passed on (tap, instance, time): asked for before the PUSH closes.
        self._ends: list[tuple[bytes, bytes, int]] = []
        self.push = ctx.socket(zmq.PUSH)
        self.push.linger = 0
        self.push.sndhwm = HWM
        self.push.setsockopt(zmq.RECONNECT_IVL, RECORD_RECONNECT_MS)
        self.push.connect(endpoint)
        self._sockets = {i: frozenset(names) for i, names in sockets.items()}
        self._host_of = host_of
        self.waiting: dict[str, deque[list[Any]]] = {}
        #: Credits owed to each host (bytes passed on or dropped since the last grant).
        self.owed: dict[str, int] = {}
        #: Bytes waiting, by host.
        self.queued: dict[str, int] = {}
        #: The recorder was given up: copies are dropped and counted.
        self.given_up = False
        #: Hosts that sent recorded copies, and those whose agent said all are sent.
        self.seen: set[str] = set()
        self.flushed: set[str] = set()
        self.dropped = 0
        self._told = 0
        self._progress = time.monotonic()

    def accepts(self, host: str, frames: list[Any]) -> bool:
        """A recorded copy of a socket recorded, of an instance on ``host`` (the host its
        key proved): anything else is a stray."""
        ids = head(frames)
        if ids is None:
            return False
        try:
            tap_id, instance = ids[0].decode(), ids[1].decode()
        except UnicodeDecodeError:
            return False
        return tap_id[len(RECORD_PREFIX):] in self._sockets.get(instance, ()) and self._host_of(instance) == host

    def copy(self, host: str, frames: list[Any]) -> None:
        """One recorded copy from ``host``: on to the recorder, or queued behind the others
        of its host. More than two windows queued is an agent that ignores its credits
        (one window, and one message over it, is what an honest one can have out):
        dropped and counted."""
        self.seen.add(host)
        queue = self.waiting.get(host)
        size = weight(frames)
        if not queue and self._send(frames):
            self.owed[host] = self.owed.get(host, 0) + size
            return
        if self.given_up or self.queued.get(host, 0) + size > 2 * WINDOW:
            self._drop(host, frames)
            return
        self.waiting.setdefault(host, deque()).append(frames)
        self.queued[host] = self.queued.get(host, 0) + size

    def pending(self) -> bool:
        """Copies wait for room in the recorder's PUSH."""
        return any(self.waiting.values())

    def drain(self, now: float) -> None:
        """What waits, on as the PUSH takes it, host after host in turn; the recorder given
        up after :data:`STALL` seconds without taking any."""
        moved = True
        while moved:
            moved = False
            for host, queue in self.waiting.items():
                if queue and self._send(queue[0]):
                    self._passed(host, weight(queue.popleft()))
                    moved = True
        if not self.pending():
            self._progress = now
        elif now - self._progress > STALL:
            self.given_up = True
            for host, queue in self.waiting.items():
                while queue:
                    frames = queue.popleft()
                    self._drop(host, frames)
                    self.queued[host] -= weight(frames)
        self._tell_dropped()

    def grants(self) -> list[tuple[str, int]]:
        """The credits to send now, and forgotten as sent (a host gone loses its own)."""
        out = [(host, n) for host, n in self.owed.items() if n]
        self.owed.clear()
        return out

    def _send(self, frames: list[Any]) -> bool:
        try:
            self.push.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError:
            self.dropped += copies_in(frames)
            return True  # gone: counted, and its credit goes back
        self._progress = time.monotonic()
        if len(frames) == 5 and _raw(frames[2]) == _END:
            try:
                self._ends.append((_raw(frames[0]), _raw(frames[1]), int(_raw(frames[3]))))
            except ValueError:
                pass  # not a time: the recorder will not confirm it either
        return True

    def _passed(self, host: str, size: int) -> None:
        """A queued message of ``size`` bytes has gone on: its credit is owed."""
        self.queued[host] -= size
        self.owed[host] = self.owed.get(host, 0) + size

    def _drop(self, host: str, frames: list[Any]) -> None:
        self.dropped += copies_in(frames)
        self.owed[host] = self.owed.get(host, 0) + weight(frames)

    def _tell_dropped(self) -> None:
        if self.dropped == self._told:
            return
        tap = b"record:relay"
        try:
            self.push.send_multipart([tap, b"relay", MISSED.encode(), b"%d" % time.time_ns(), b"%d" % self.dropped],
                                     zmq.NOBLOCK)
            self._told = self.dropped
        except zmq.ZMQError:
            pass

    def close(self, deadline: float) -> None:
        """At the run's end: what waits goes on, until ``deadline`` (the recorder reads
        until every process's ``end``); then, before the PUSH closes, the recorder's word
        that it read every ``end`` passed on. Without it the last copies were lost: a
        recorder behind has its PULL's pipe full, its engine stops reading the ipc
        connection, and when this side hangs up it takes the hang-up as the end and drops
        what the kernel still holds (libzmq issue 4660; seen as a remote flood's last
        ~2,000 copies and its ``end`` missing, 1 run in 4 under load)."""
        while self.pending() and not self.given_up and time.monotonic() < deadline:
            self.drain(time.monotonic())
            if self.pending():
                self.push.poll(10, zmq.POLLOUT)
        if self._ack and self._ends and not self.given_up:
            ask(self._ctx, self._ack, self._ends, deadline)
        self.push.close(linger=max(0, int((deadline - time.monotonic()) * 1000)))
