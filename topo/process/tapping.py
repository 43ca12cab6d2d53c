"""The process side of ``topo echo`` and friends: taps put on and taken off a node's
sockets at the supervisor's word, and one thread that sends their copies out.

A tap (:mod:`topo.process.tap`) only queues copies in the node's thread; here, one
sender thread per process (started with the first tap) takes them and PUSHes each, as
``[tap, instance, direction, time_ns, missed, *frames]``, to the ipc endpoint the
requester bound. The node never waits for the reader: the PUSH sends with NOBLOCK behind
a small high-water mark and a copy it cannot send is dropped and counted, as the tap
counts what its queue could not hold. ``missed`` is the running total of both, so a
reader that lost some of the copies themselves still knows how many it lost.

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
from typing import Any, Callable, Mapping

import zmq

from topo.process import tap as taps
from topo.plan.share import PUB

#: Seconds a tap lives without being renewed.
LEASE = 4.0
#: Copies a requester's PUSH holds before the sender drops them.
SEND_HWM = 1000
#: Directions of the markers (frames-less messages) a reader gets.
ON, MISSED = "on", "missed"


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
            busy = False
            with self._lock:
                entries = list(self._entries.items())
            now = time.monotonic()
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
                busy = self._forward(entry) or busy
            self._wake.wait(0 if busy else 0.25)  # 0.25: leases and nodes starting are looked at
            self._wake.clear()

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
        """Sends what the tap holds; True if it may hold more."""
        copies = entry.tap.take()
        for copy in copies:
            self._send(entry, copy.direction, copy.frames, copy.time_ns)
        if entry.missed != entry.told_missed:
            self._send(entry, MISSED, [])
        return len(copies) > 0

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
