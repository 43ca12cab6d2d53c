"""The process side of ``topo echo`` and friends: taps put on and taken off a node's
sockets at the supervisor's word, and one thread that sends their copies out.

A tap (:mod:`topo.process.tap`) only queues copies in the node's thread; here, one
sender thread per process (started with the first tap) takes them and PUSHes each, as
``[tap, instance, direction, time_ns, missed, *frames]``, to the ipc endpoint the
requester bound. The node never waits for the reader: the PUSH sends with NOBLOCK behind
a small high-water mark and a copy it cannot send is dropped and counted, as the tap
counts what its queue could not hold; once the PUSH is full, the tap drops new copies in
the node's thread at once (counting them costs the node less than copying them) until
the PUSH has room again. ``missed`` is the running total of both, so a reader that lost
some of the copies themselves still knows how many it lost. While copies flow, the
sender takes them in batches (every :data:`BATCH` seconds) rather than being woken by
each: a wake-up per message would cost the node's thread more than its copy.

A tap lives on a lease: the requester renews it (the same ``tap`` message, again)
every second or so through the supervisor, and a tap not renewed within :data:`LEASE`
seconds is taken off. A ``topo echo`` killed with SIGKILL cannot say goodbye; its tap
ends anyway and the socket is its plain class again.

Besides copies, the sender sends markers with no frames: direction ``on`` once the tap
is on the socket (a node not yet running gets its tap when it starts), and ``missed``
when copies were lost with nothing left to carry the count.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Sequence

import zmq

from topo.process import tap as taps
from topo.plan.share import PUB

#: Seconds a tap lives without being renewed.
LEASE = 4.0
#: Copies a requester's PUSH holds before the sender drops them.
SEND_HWM = 1000
#: Directions of the markers (frames-less messages) a reader gets.
ON, MISSED = "on", "missed"
#: Seconds between two turns of the sender while copies flow: it takes them in batches.
BATCH = 0.002
#: Seconds between two looks at a PUSH found full (its reader behind).
FULL_RETRY = 0.001
#: Seconds between two turns with nothing to send (leases and nodes starting are looked at).
IDLE = 0.25

#: pyzmq's own send, under the Python layer of ``zmq.Socket.send`` (which only handles
#: ``routing_id`` and ``group``): the sender calls it per frame.
_push_frame = zmq.backend.Socket.send
_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_DIRECTIONS = {taps.OUT: taps.OUT.encode(), taps.IN: taps.IN.encode()}


class _Entry:
    """One tap on one instance's socket, as the sender thread holds it."""

    def __init__(self, tap_id: str, instance: str, socket: str, endpoint: str, directions: frozenset[str],
                 notify: Callable[[], None]) -> None:
        self.tap_id, self.instance, self.socket, self.endpoint = tap_id, instance, socket, endpoint
        self.tap = taps.Tap(directions, notify=notify)
        self.lease_until = time.monotonic() + LEASE
        self.sock: Any = None       # the node's socket once attached
        self.push: Any = None       # the sender thread's own, once connected
        self.unsent = 0             # copies the PUSH could not take
        self.told_missed = 0        # the total last sent to the reader
        self.full = False           # the PUSH refused a copy: its reader is behind
        self.head = (tap_id.encode(), instance.encode())
        self.ended = False

    @property
    def missed(self) -> int:
        return self.tap.dropped + self.unsent


class Tapping:
    """Every tap of one process. ``sockets_of(instance)``: the sockets its node function
    got (``node.sockets``), or None while it has not started."""

    def __init__(self, instances: Mapping[str, Any], sockets_of: Callable[[str], Mapping[str, Any] | None]) -> None:
        self._instances = instances
        self._sockets_of = sockets_of
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, data: Mapping[str, Any]) -> None:
        """A ``tap`` message (checked by :mod:`topo.process.control`): a new tap, or a lease
        renewed. One about an instance or a socket this process does not have is ignored."""
        inst = self._instances.get(data["instance"])
        if inst is None or data["socket"] not in {s.name for s in inst.sockets}:
            return
        key = (data["tap"], data["instance"])
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.ended:
                entry.lease_until = time.monotonic() + LEASE
                return
            self._entries[key] = _Entry(data["tap"], data["instance"], data["socket"], data["endpoint"],
                                        frozenset(data["directions"]), self._wake.set)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="topo:taps", daemon=True)
            self._thread.start()
        self._wake.set()

    def end(self, tap_id: str) -> None:
        """An ``untap`` message: the tap comes off at once (the sender closes its PUSH)."""
        with self._lock:
            for (tid, _), entry in self._entries.items():
                if tid == tap_id:
                    entry.lease_until = 0.0
        self._wake.set()

    # -- the sender thread -------------------------------------------------------------------

    def _run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()  # its own: the nodes' may be terminated under it
        while True:
            with self._lock:
                entries = list(self._entries.items())
            now = time.monotonic()
            busy = full = False
            for key, entry in entries:
                if now >= entry.lease_until:
                    self._close(entry)
                    with self._lock:
                        if self._entries.get(key) is entry:
                            del self._entries[key]
                    continue
                if entry.sock is None:
                    self._attach(ctx, entry)
                    if entry.sock is None:
                        continue
                if entry.full and not self._writable(entry):
                    full = True
                    continue
                busy = self._forward(entry) or busy
                full = full or entry.full
            self._wake.wait(self._pause([e for _, e in entries], busy, full))
            self._wake.clear()

    def _pause(self, entries: list[_Entry], busy: bool, full: bool) -> float:
        """How long the sender may wait before its next turn. While copies flow it takes
        them in batches, every :data:`BATCH` seconds, and the nodes do not wake it (a
        wake-up per message costs the node's thread more than the copy itself); once a
        turn found nothing, the first copy queued wakes it again."""
        if busy:
            for entry in entries:
                entry.tap.notify = None
            return BATCH
        for entry in entries:
            entry.tap.notify = self._wake.set
        if any(entry.tap.copies for entry in entries):
            return 0.0  # queued before its tap's notify was back: not waited for
        return FULL_RETRY if full else IDLE

    def _attach(self, ctx: zmq.Context[Any], entry: _Entry) -> None:
        sockets = self._sockets_of(entry.instance)
        if sockets is None or entry.socket not in sockets:
            return  # not running yet: looked at again at the next turn
        sock = sockets[entry.socket]
        if any(s.name == entry.socket and s.type == PUB for s in self._instances[entry.instance].sockets):
            # an XPUB underneath (topo.process.sockets): what it receives is subscriptions
            entry.tap.directions = entry.tap.directions & {taps.OUT}
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDHWM, SEND_HWM)
        push.connect(entry.endpoint)
        entry.push, entry.sock = push, sock
        taps.attach(sock, entry.tap)
        self._send(entry, ON, [])

    def _forward(self, entry: _Entry) -> bool:
        """Sends what the tap holds, frame by frame with pyzmq's backend ``send`` (a
        ``send_multipart`` costs four times as much, in a thread that shares the node's
        GIL); True if it sent any. A full PUSH (the reader behind) makes the tap drop its
        copies in the node's thread until :meth:`_writable`: counting them there costs the
        node less than copying them to be dropped here."""
        tap, push = entry.tap, entry.push
        copies = tap.copies
        head_tap, head_instance = entry.head
        missed = entry.missed
        missed_frame = b"%d" % missed
        sent = taken = 0
        for _ in range(len(copies)):  # what is queued now; what comes meanwhile waits for the next turn
            direction, frames, time_ns = copies.popleft()
            taken += len(frames) if isinstance(frames, bytes) else sum(map(len, frames))
            try:
                _push_frame(push, head_tap, _MORE_NOBLOCK)  # the first frame: the only one a full PUSH refuses
            except zmq.Again:
                self._full(entry)
                break
            except zmq.ZMQError:
                entry.unsent += 1
                continue
            _push_frame(push, head_instance, _MORE_NOBLOCK)
            _push_frame(push, _DIRECTIONS[direction], _MORE_NOBLOCK)
            _push_frame(push, b"%d" % time_ns, _MORE_NOBLOCK)
            _push_frame(push, missed_frame, _MORE_NOBLOCK)
            if isinstance(frames, bytes):
                _push_frame(push, frames, _NOBLOCK)
            else:
                for frame in frames[:-1]:
                    _push_frame(push, frame, _MORE_NOBLOCK)
                _push_frame(push, frames[-1], _NOBLOCK)
            sent += 1
        tap.bytes_out += taken  # (this thread is the counter's one writer)
        if sent:
            entry.told_missed = missed
        if entry.missed != entry.told_missed and not entry.full:
            self._send(entry, MISSED, [])
        return sent > 0

    def _full(self, entry: _Entry) -> None:
        """The reader's way is full: the copy in hand and every queued one are lost, and the
        node drops new ones at once (its tap's limit 0) until the way has room again."""
        entry.full = True
        entry.tap.limit = 0
        copies, lost, taken = entry.tap.copies, 1, 0
        while copies:  # popped one by one: a copy the node appends meanwhile is never lost uncounted
            frames = copies.popleft()[1]
            taken += len(frames) if isinstance(frames, bytes) else sum(map(len, frames))
            lost += 1
        entry.tap.bytes_out += taken
        entry.unsent += lost

    def _writable(self, entry: _Entry) -> bool:
        """Whether a full PUSH has room again; if so the tap queues copies again."""
        if not int(entry.push.getsockopt(zmq.EVENTS)) & zmq.POLLOUT:
            return False
        entry.full = False
        entry.tap.limit = entry.tap.capacity
        return True

    def _send(self, entry: _Entry, direction: str, frames: list[bytes], time_ns: int | None = None) -> None:
        missed = entry.missed
        head = [entry.tap_id.encode(), entry.instance.encode(), direction.encode(),
                str(time_ns or time.time_ns()).encode(), str(missed).encode()]
        try:
            entry.push.send_multipart(head + frames, zmq.NOBLOCK)
            entry.told_missed = missed
        except zmq.Again:
            if frames:
                entry.unsent += 1
        except zmq.ZMQError:
            entry.unsent += 1

    def _close(self, entry: _Entry) -> None:
        entry.ended = True
        if entry.sock is not None:
            taps.detach(entry.sock, entry.tap)
        if entry.push is not None:
            entry.push.close(linger=0)



def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame.bytes)


def copies_in(frames: Sequence[Any]) -> int:
    """How many copies one message of the sender's format carries: 1, or 0 for a marker
    (``on``, ``missed``). What a relay that drops the message must count as missed
    (:mod:`topo.supervisor.remotetaps`, :mod:`topo.hosts.taprelay`); frames as ``bytes`` or
    ``zmq.Frame``."""
    if len(frames) < 3:
        return 0
    return 0 if _bytes(frames[2]) in _MARKERS else 1


def owed_marker(frames: Sequence[Any]) -> list[bytes] | None:
    """What a relay that drops this message still owes the reader, as a marker: an ``on``
    marker itself, or a ``missed`` marker with the running total the message carried (the
    sender counts it told once it handed the message on, so a relay's drop must not lose
    it). Markers of one tap and instance and kind replace each other: only the last is owed."""
    if len(frames) < 5:
        return None
    tap_id, instance, direction, _, missed = (_bytes(f) for f in frames[:5])
    kind = direction if direction == _ON else _MISSED
    return [tap_id, instance, kind, b"%d" % time.time_ns(), missed]


_ON, _MISSED = ON.encode(), MISSED.encode()
_MARKERS = frozenset({_ON, _MISSED})
