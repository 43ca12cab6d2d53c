"""The process side of ``topo echo`` and friends: taps put on and taken off a node's
sockets at the supervisor's word, and one thread that sends their copies out.

A tap (:mod:`topo.process.tap`) only queues copies in the node's thread; here, one
sender thread per process (started with the first tap) takes them and PUSHes them, in
batches of up to :data:`~topo.process.tapwire.BATCH_COPIES` copies a message
(:mod:`topo.process.tapwire` has the format), to the ipc endpoint the requester bound.
The node never waits for the reader: the PUSH sends with NOBLOCK behind a small
high-water mark (:data:`SEND_COPIES` copies), a batch it refuses goes back to the tap's
bounded queue until it has room, and what that queue cannot hold the node drops and
counts in its own thread (counting costs it less than copying). ``missed`` is the
running total of what was lost, so a reader that lost some of the copies themselves
still knows how many it lost. While copies flow, the sender takes them in batches (every :data:`BATCH` seconds) rather than being woken by
each: a wake-up per message would cost the node's thread more than its copy.

A tap lives on a lease: the requester renews it (the same ``tap`` message, again)
every second or so through the supervisor, and a tap not renewed within :data:`LEASE`
seconds is taken off. A ``topo echo`` killed with SIGKILL cannot say goodbye; its tap
ends anyway and the socket is its plain class again.

Besides copies, the sender sends markers with no frames: direction ``on`` once the tap
is on the socket (a node not yet running gets its tap when it starts), ``missed``
when copies were lost with nothing left to carry the count, and ``end`` after a
recorded socket's last copy, at the process's end.

``topo up --record`` (:class:`topo.process.boot.Recording`): its taps come with the
process, put on by the node's own thread before its function is called
(:meth:`Tapping.node_started`), with no lease; a :class:`topo.process.taprecord.RecordTap`
makes the node wait rather than lose a copy, a full PUSH keeps its copies for the next
turn, and :meth:`Tapping.finish` sends what is left, then ``end``, at the process's end.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import zmq

from topo.process import tap as taps
from topo.process.recordack import ask
from topo.process.taprecord import RecordTap
from topo.process.tapwire import (
    BATCH_BYTES, BATCH_COPIES, COPIES, COPY_HEAD, END, FRAME_LEN, MISSED, ON, ONE_FRAME_HEAD, batch_hwm)
from topo.plan.share import PUB

if TYPE_CHECKING:
    from topo.process.boot import Recording

#: Seconds a tap lives without being renewed.
LEASE = 4.0
#: Copies a requester's PUSH holds before the sender drops them, and its high-water mark
#: in batch messages (:mod:`topo.process.tapwire`).
SEND_COPIES = 1000
SEND_HWM = batch_hwm(SEND_COPIES)
#: The tap id of a recorded socket's tap (``topo up --record``): the socket's name after it.
RECORD_PREFIX = "record:"
#: Reconnect interval (ms) of a recording tap's PUSH: the recorder may bind after the
#: process starts, and what is queued meanwhile waits for it.
RECORD_RECONNECT_MS = 10
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
_CODES = {taps.OUT: b"o", taps.IN: b"i"}
_COPIES = COPIES.encode()


class _Entry:
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

    @property
    def missed(self) -> int:
        return self.tap.dropped + self.unsent


class Tapping:
    """Every tap of one process. ``sockets_of(instance)``: the sockets its node function
    got (``node.sockets``), or None while it has not started."""

    def __init__(self, instances: Mapping[str, Any], sockets_of: Callable[[str], Mapping[str, Any] | None],
                 record: Recording | None = None, say: Callable[[str, str], None] | None = None) -> None:
        """``record``: the sockets recorded from their first message; ``say(instance,
        line)``: a line on the run's output (that a recording stalled)."""
        self._instances = instances
        self._sockets_of = sockets_of
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._say = say
        self._finish_by: float | None = None
        self._ack = record.ack if record is not None else ""
        self._finished = threading.Event()
        for instance, name in _recorded(record, instances):
            assert record is not None
            self._entries[(RECORD_PREFIX + name, instance)] = _Entry(
                RECORD_PREFIX + name, instance, name, record.endpoint, frozenset({taps.IN, taps.OUT}),
                self._wake.set, stall=record.stall)
        if self._entries:
            self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="topo:taps", daemon=True)
        self._thread.start()

    def node_started(self, instance: str, sockets: Mapping[str, Any]) -> None:
        """In the node's thread, just before its function is called: the recording's taps
        go on its sockets (``sockets``: what the function gets), so its first message is
        copied."""
        with self._lock:
            entries = [e for (_, i), e in self._entries.items() if i == instance and e.record is not None]
        for entry in entries:
            sock = sockets.get(entry.socket)
            if sock is None or entry.sock is not None:
                continue
            if any(s.name == entry.socket and s.type == PUB for s in self._instances[instance].sockets):
                entry.tap.directions = entry.tap.directions & {taps.OUT}
            taps.attach(sock, entry.tap)
            entry.sock = sock
        if entries:
            self._wake.set()

    def release(self) -> None:
        """The run stops: no node waits for the recorder any more (copies that do not fit
        are dropped and counted)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            if entry.record is not None:
                entry.record.release()

    def finish(self, timeout: float) -> None:
        """At the process's end, once its nodes have ended: what the recording's taps hold
        is sent, then ``end``, within ``timeout`` seconds (a recorder that stalled is not
        waited for)."""
        if self._thread is None:
            return
        self._finish_by = time.monotonic() + timeout
        self._wake.set()
        self._finished.wait(timeout + 1.0)

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
            self._start()
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
            if self._finish_by is not None:
                self._last_turn(ctx, [e for _, e in entries])
                return
            now = time.monotonic()
            busy = full = False
            for key, entry in entries:
                if now >= entry.lease_until:
                    self._close(entry)
                    with self._lock:
                        if self._entries.get(key) is entry:
                            del self._entries[key]
                    continue
                if entry.record is not None:
                    if entry.sock is None:
                        continue  # its node has not started
                    if entry.push is None:
                        self._connect(ctx, entry)
                    if entry.record.stalled and not entry.told_stall:
                        self._tell_stall(entry)
                elif entry.sock is None:
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
        if full:
            return FULL_RETRY  # copies wait in their tap for the PUSH to have room
        if any(entry.tap.copies for entry in entries):
            return 0.0  # queued before its tap's notify was back: not waited for
        return IDLE

    def _attach(self, ctx: zmq.Context[Any], entry: _Entry) -> None:
        sockets = self._sockets_of(entry.instance)
        if sockets is None or entry.socket not in sockets:
            return  # not running yet: looked at again at the next turn
        sock = sockets[entry.socket]
        if any(s.name == entry.socket and s.type == PUB for s in self._instances[entry.instance].sockets):
            # an XPUB underneath (topo.process.sockets): what it receives is subscriptions
            entry.tap.directions = entry.tap.directions & {taps.OUT}
        entry.sock = sock
        self._connect(ctx, entry)
        taps.attach(sock, entry.tap)

    def _connect(self, ctx: zmq.Context[Any], entry: _Entry) -> None:
        """The PUSH to the tap's reader, and the ``on`` marker first on it."""
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDHWM, SEND_HWM)
        if entry.record is not None:
            push.setsockopt(zmq.RECONNECT_IVL, RECORD_RECONNECT_MS)
        push.connect(entry.endpoint)
        entry.push = push
        self._send(entry, ON, [])

    def _tell_stall(self, entry: _Entry) -> None:
        entry.told_stall = True
        if self._say is not None and entry.record is not None:
            self._say(entry.instance, entry.record.stall_notice(f"{entry.instance}.{entry.socket}"))

    def _last_turn(self, ctx: zmq.Context[Any], entries: list[_Entry]) -> None:
        """:meth:`finish`'s work, in this thread: each recording's tap emptied and ended,
        then every PUSH closed, lingering until its copies are out or the time is up."""
        assert self._finish_by is not None
        for entry in entries:
            record = entry.record
            if record is None or entry.sock is None:
                continue
            if entry.push is None:  # its node ran and ended before this thread's next turn
                self._connect(ctx, entry)
            record.release()
            progress = time.monotonic()
            while entry.tap.copies and time.monotonic() < self._finish_by:
                if entry.full and not self._writable(entry):
                    if record.stalled or time.monotonic() - progress > record.stall:  # as long as the node waited
                        record.stalled = True  # a recorder that stalls is not waited for
                        break
                    self._wake.wait(FULL_RETRY)
                    continue
                if self._forward(entry):
                    progress = time.monotonic()
            if entry.tap.copies:
                entry.unsent += len(entry.tap.copies)
                entry.tap.copies.clear()
            while not record.stalled and not self._writable(entry) \
                    and time.monotonic() < min(self._finish_by, progress + record.stall):
                self._wake.wait(FULL_RETRY)  # the last word waits for room, as the copies did
            entry.end_ns = time.time_ns()
            while not self._send(entry, END, [], entry.end_ns):  # behind the last copies, which may fill the PUSH
                if record.stalled or time.monotonic() >= self._finish_by:
                    entry.end_ns = 0  # not sent: nothing for the reader to confirm
                    break
                self._wake.wait(FULL_RETRY)
        if self._ack:  # the reader's word that it read them all, before their way closes
            ask(ctx, self._ack, [(*e.head, e.end_ns) for e in entries if e.end_ns and e.record is not None
                                 and not e.record.stalled], self._finish_by)
        for entry in entries:
            if entry.push is not None:
                live = entry.record is not None and not entry.record.stalled
                linger = max(0, int((self._finish_by - time.monotonic()) * 1000)) if live else 0
                entry.push.close(linger=linger)
        ctx.term()
        self._finished.set()

    def _forward(self, entry: _Entry) -> bool:
        """Sends what the tap holds, in batches of up to :data:`BATCH_COPIES` copies
        (:mod:`topo.process.tapwire`): one zmq message per copy cost this thread, which
        shares the node's interpreter lock, more than the node's own send. True if it sent
        any. A batch a full PUSH refuses (the reader behind) goes back to the tap's queue and
        waits there, with what comes meanwhile, until :meth:`_writable`: that bounded
        queue is what a slow reader fills, and once it is full the node drops and counts
        new copies in its own thread (cheaper than copying them to be dropped here)."""
        tap, push = entry.tap, entry.push
        copies = tap.copies
        head_tap, head_instance = entry.head
        missed = entry.missed
        missed_frame = b"%d" % missed
        one, head, frame_len = ONE_FRAME_HEAD.pack, COPY_HEAD.pack, FRAME_LEN.pack
        sent = 0
        left = len(copies)  # what is queued now; what comes meanwhile waits for the next turn
        while left:
            parts: list[bytes] = []
            batch: list[taps.Queued] = []
            size = 0
            while left and len(batch) < BATCH_COPIES and size < BATCH_BYTES:
                item = copies.popleft()
                left -= 1
                direction, frames, time_ns = item
                if isinstance(frames, bytes):
                    parts.append(one(_CODES[direction], time_ns, 1, len(frames)))
                    parts.append(frames)
                    size += len(frames)
                else:
                    parts.append(head(_CODES[direction], time_ns, len(frames)))
                    for frame in frames:
                        parts.append(frame_len(len(frame)))
                        parts.append(frame)
                        size += len(frame)
                batch.append(item)
            try:
                _push_frame(push, head_tap, _MORE_NOBLOCK)  # the first frame: the only one a full PUSH refuses
            except zmq.Again:  # kept for the next turn, in the tap's bounded queue
                copies.extendleft(reversed(batch))
                entry.full = True
                break
            except zmq.ZMQError:
                tap.bytes_out += size
                entry.unsent += len(batch)
                continue
            _push_frame(push, head_instance, _MORE_NOBLOCK)
            _push_frame(push, _COPIES, _MORE_NOBLOCK)
            _push_frame(push, b"%d" % time.time_ns(), _MORE_NOBLOCK)
            _push_frame(push, missed_frame, _MORE_NOBLOCK)
            _push_frame(push, b"%d" % len(batch), _MORE_NOBLOCK)
            _push_frame(push, b"".join(parts), _NOBLOCK)
            tap.bytes_out += size  # (this thread is the counter's one writer)
            sent += len(batch)
        if entry.record is not None and sent:
            entry.record.taken()
        if sent:
            entry.told_missed = missed
        if entry.missed != entry.told_missed and not entry.full:
            self._send(entry, MISSED, [])
        return sent > 0

    def _writable(self, entry: _Entry) -> bool:
        """Whether a full PUSH has room again."""
        if not int(entry.push.getsockopt(zmq.EVENTS)) & zmq.POLLOUT:
            return False
        entry.full = False
        return True

    def _send(self, entry: _Entry, direction: str, frames: list[bytes], time_ns: int | None = None) -> bool:
        """One message (a marker, when ``frames`` is empty); True unless the PUSH was full."""
        missed = entry.missed
        head = [entry.tap_id.encode(), entry.instance.encode(), direction.encode(),
                str(time_ns or time.time_ns()).encode(), str(missed).encode()]
        try:
            entry.push.send_multipart(head + frames, zmq.NOBLOCK)
            entry.told_missed = missed
            return True
        except zmq.Again:
            if frames:
                entry.unsent += 1
        except zmq.ZMQError:
            entry.unsent += 1
            return True  # not worth trying again
        return False

    def _close(self, entry: _Entry) -> None:
        entry.ended = True
        if entry.sock is not None:
            taps.detach(entry.sock, entry.tap)
        if entry.push is not None:
            entry.push.close(linger=0)


def _recorded(record: Recording | None, instances: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(instance, socket) of this process recorded from the first message."""
    return [(i, name) for i, names in (record.sockets.items() if record is not None else ())
            for name in sorted(set(names) & {s.name for s in getattr(instances.get(i), "sockets", ())})]
