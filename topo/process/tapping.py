"""The process side of ``topo echo`` and friends: taps put on and taken off a node's
sockets at the supervisor's word, and one thread that sends their copies out.

A tap (:mod:`topo.process.tap`) only queues copies in the node's thread; here, one
sender thread per process (started with the first tap) takes them and sends them to the
ipc endpoint the requester bound, each tap by its own way (:mod:`topo.process.tapway`:
batches, a bounded queue, ``missed`` counted). While copies flow, the sender takes them
in batches (every :data:`BATCH` seconds) rather than being woken by each: a wake-up per
message would cost the node's thread more than its copy.

A tap lives on a lease: the requester renews it (the same ``tap`` message, again)
every second or so through the supervisor, and a tap not renewed within :data:`LEASE`
seconds is taken off. A ``topo echo`` killed with SIGKILL cannot say goodbye; its tap
ends anyway and the socket is its plain class again.

Besides copies, the sender sends markers with no frames: direction ``on`` once the tap
is on the socket (a node not yet running gets its tap when it starts), ``missed``
when copies were lost with nothing left to carry the count, and ``end`` after a
tap's last copy, at the process's end. There, what a plain tap still holds is sent while
its reader takes it, the rest counted as missed, and ``end`` carries the final count: a
reader's copies plus its misses are every copy, even of a process that ends mid-flood.

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
from topo.process.alarm import Alarm
from topo.process.delivery import Deliveries
from topo.process.recordack import ask
from topo.process.tapway import LEASE, RECORD_RECONNECT_MS, TapWay
from topo.process.tapwire import END
from topo.plan.share import PUB

if TYPE_CHECKING:
    from topo.process.boot import Recording

__all__ = ["LEASE", "RECORD_PREFIX", "RECORD_RECONNECT_MS", "Tapping"]

#: The tap id of a recorded socket's tap (``topo up --record``): the socket's name after it.
RECORD_PREFIX = "record:"
#: Seconds between two turns of the sender while copies flow: it takes them in batches.
BATCH = 0.002
#: Seconds between two looks at a PUSH found full (its reader behind), at most: the
#: sender sleeps until libzmq says it has room (:mod:`topo.process.alarm` says why).
FULL_RETRY = 0.05
#: Seconds a plain tap's reader may take no copy at its process's end before the copies
#: left are counted as missed and the process goes on ending without it.
END_STALL = 2.0
#: Seconds between two turns with nothing to send (leases and nodes starting are looked at).
IDLE = 0.25


class Tapping:
    """Every tap of one process. ``sockets_of(instance)``: the sockets its node function
    got (``node.sockets``), or None while it has not started."""

    def __init__(self, instances: Mapping[str, Any], sockets_of: Callable[[str], Mapping[str, Any] | None],
                 record: Recording | None = None, say: Callable[[str, str], None] | None = None) -> None:
        """``record``: the sockets recorded from their first message; ``say(instance,
        line)``: a line on the run's output (that a recording stalled)."""
        self._instances = instances
        self._sockets_of = sockets_of
        self._entries: dict[tuple[str, str], TapWay] = {}
        self._lock = threading.Lock()
        self._wake = Alarm()
        self._thread: threading.Thread | None = None
        self._say = say
        self._finish_by: float | None = None
        self._ack = record.ack if record is not None else ""
        self._finished = threading.Event()
        for instance, name in _recorded(record, instances):
            assert record is not None
            self._entries[(RECORD_PREFIX + name, instance)] = TapWay(
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
            self._entries[key] = TapWay(data["tap"], data["instance"], data["socket"], data["endpoint"],
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
                self._wake.close()
                return
            now = time.monotonic()
            busy = False
            full: list[zmq.Socket[Any]] = []  # the PUSHes of ways whose reader is behind
            for key, entry in entries:
                if now >= entry.lease_until:
                    entry.close()
                    with self._lock:
                        if self._entries.get(key) is entry:
                            del self._entries[key]
                    continue
                if entry.record is not None:
                    if entry.sock is None:
                        continue  # its node has not started
                    if entry.push is None:
                        entry.connect(ctx)
                    if entry.record.stalled and not entry.told_stall:
                        self._tell_stall(entry)
                elif entry.sock is None:
                    self._attach(ctx, entry)
                    if entry.sock is None:
                        continue
                if not (entry.full and not entry.writable()):
                    busy = entry.forward() or busy
                if entry.full and entry.push is not None:
                    full.append(entry.push)
            pause = self._pause([e for _, e in entries], busy, bool(full))
            self._wake.wait(pause, full if pause == FULL_RETRY else ())
            self._wake.clear()

    def _pause(self, entries: list[TapWay], busy: bool, full: bool) -> float:
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
            return FULL_RETRY  # copies wait in their tap for the PUSH to have room (or a word)
        if any(entry.holding for entry in entries):
            return 0.0  # queued before its tap's notify was back: not waited for
        return IDLE

    def _attach(self, ctx: zmq.Context[Any], entry: TapWay) -> None:
        sockets = self._sockets_of(entry.instance)
        if sockets is None or entry.socket not in sockets:
            return  # not running yet: looked at again at the next turn
        sock = sockets[entry.socket]
        if any(s.name == entry.socket and s.type == PUB for s in self._instances[entry.instance].sockets):
            # an XPUB underneath (topo.process.sockets): what it receives is subscriptions
            entry.tap.directions = entry.tap.directions & {taps.OUT}
        entry.sock = sock
        entry.connect(ctx)
        taps.attach(sock, entry.tap)

    def _tell_stall(self, entry: TapWay) -> None:
        entry.told_stall = True
        if self._say is not None and entry.record is not None:
            self._say(entry.instance, entry.record.stall_notice(f"{entry.instance}.{entry.socket}"))

    def _last_turn(self, ctx: zmq.Context[Any], entries: list[TapWay]) -> None:
        """:meth:`finish`'s work, in this thread: each recording's tap emptied and ended,
        then every PUSH closed, lingering until its copies are out or the time is up."""
        assert self._finish_by is not None
        for entry in entries:
            record = entry.record
            if record is None or entry.sock is None:
                continue
            if entry.push is None:  # its node ran and ended before this thread's next turn
                entry.connect(ctx)
            record.release()
            progress = time.monotonic()
            while entry.holding and time.monotonic() < self._finish_by:
                if entry.full and not entry.writable():
                    if record.stalled or time.monotonic() - progress > record.stall:  # as long as the node waited
                        record.stalled = True  # a recorder that stalls is not waited for
                        break
                    self._room(entry, min(self._finish_by, progress + record.stall))
                    continue
                if entry.forward():
                    progress = time.monotonic()
            entry.drop_queued()
            while not record.stalled and not entry.writable() \
                    and time.monotonic() < min(self._finish_by, progress + record.stall):
                self._room(entry, min(self._finish_by, progress + record.stall))  # the last word waits, as the copies did
            entry.end_ns = time.time_ns()
            while not entry.send_marker(END, entry.end_ns):  # behind the last copies, which may fill the PUSH
                if record.stalled or time.monotonic() >= self._finish_by:
                    entry.end_ns = 0  # not sent: nothing for the reader to confirm
                    break
                self._room(entry, self._finish_by)
        for entry in entries:  # (a tap whose lease is over has no reader left to tell)
            if entry.record is None and entry.push is not None and not entry.ended \
                    and time.monotonic() < entry.lease_until:
                self._last_copies(entry)
        if self._ack:  # the reader's word that it read them all, before their way closes
            ask(ctx, self._ack, [(*e.head, e.end_ns) for e in entries if e.end_ns and e.record is not None
                                 and not e.record.stalled], self._finish_by)
        held, idle = Deliveries(), threading.Event()  # (idle: never set, its waits are the bound)
        read_by = min(self._finish_by, time.monotonic() + END_STALL)  # a reader that reads nothing
        for entry in entries:
            if entry.push is not None:
                live = not entry.record.stalled if entry.record is not None else entry.end_ns > 0
                if live and entry.record is None:  # a plain tap's last copies: kept until read
                    held.wait_drained(held.hold([], [entry.endpoint]), idle, read_by)
                linger = max(0, int((self._finish_by - time.monotonic()) * 1000)) if live else 0
                entry.push.close(linger=linger)
        ctx.term()
        # a reader behind (its pipe full) stops reading the connection, and at this
        # process's exit would drop what the kernel still holds for it, ``end`` included
        # (libzmq issue 4660: 304 of 60,000 copies lost uncounted in CI); a recording's
        # reader says it read its ``end`` instead (:mod:`topo.process.recordack`)
        while held.settle() and time.monotonic() < read_by:
            idle.wait(held.next_look())
        held.drop()
        self._finished.set()

    def _last_copies(self, entry: TapWay) -> None:
        """A plain tap's copies still queued at the process's end: sent while its reader
        takes them, the rest counted as missed, then ``end`` with the final count, so that
        what the reader read plus what it was told it missed is every copy. A reader that
        takes nothing for :data:`END_STALL` seconds is not waited for further."""
        assert self._finish_by is not None
        stall_until = time.monotonic() + END_STALL
        while entry.holding and time.monotonic() < min(self._finish_by, stall_until):
            if entry.full and not entry.writable():
                self._room(entry, min(self._finish_by, stall_until))
            elif entry.forward():
                stall_until = time.monotonic() + END_STALL
        entry.drop_queued()
        end_ns = time.time_ns()
        while not entry.send_marker(END, end_ns):  # behind the last copies, which may fill the PUSH
            if time.monotonic() >= min(self._finish_by, stall_until):
                return
            self._room(entry, min(self._finish_by, stall_until))
        entry.end_ns = end_ns

    def _room(self, entry: TapWay, until: float) -> None:
        """Until ``entry``'s PUSH may send again (its reader took some), a word for this
        thread, or ``until`` (at most :data:`FULL_RETRY` seconds: the caller looks again)."""
        assert entry.push is not None
        self._wake.wait(max(0.0, min(FULL_RETRY, until - time.monotonic())), [entry.push])


def _recorded(record: Recording | None, instances: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(instance, socket) of this process recorded from the first message."""
    return [(i, name) for i, names in (record.sockets.items() if record is not None else ())
            for name in sorted(set(names) & {s.name for s in getattr(instances.get(i), "sockets", ())})]
