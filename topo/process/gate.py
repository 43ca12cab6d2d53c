"""The readiness gate: when may a node's function be called?

A node is ready when every socket is connected to every linked peer and every PUB socket
has seen the subscriptions of every linked SUB that subscribes to something. Each fact is
observed, never assumed after a delay:

* tcp and ipc links: a socket monitor's ``EVENT_HANDSHAKE_SUCCEEDED``, one per link. The
  session hands the new pipe to the socket (a command in its mailbox) *before* it emits
  the event, so after the event one API call on the socket (``EVENTS``) attaches the pipe:
  a PUSH then spreads work over every worker from the first message on.
* inproc links (no monitor events exist for them): every bind and every connect is posted
  on the process's :class:`InprocBoard`; a connect to an inproc name that is bound has put
  the pipe in place by the time it returns.
* subscriptions: a user's PUB is created as an XPUB with ``XPUB_VERBOSE`` set, and the
  gate reads subscription messages until each expected topic has been seen as many times
  as linked SUBs subscribe to it. libzmq enters a subscription in its trie before handing
  the message to the application, so once read, a message sent on that topic reaches the
  subscriber. (Handshake events alone are racy here: the subscription may arrive after.)

A socket monitor is always stopped and its PAIR closed before the node runs: left open it
would make the context's termination hang.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import Counter
from typing import Any, Iterable

import zmq

from topo.plan.share import INPROC, PUB, SUB, SocketShare

_EVENT = struct.Struct("=HI")
_monitor_ids = iter(range(1 << 62))
_monitor_lock = threading.Lock()


class InprocBoard:
    """Who has bound and connected which inproc endpoint, inside one process; and the
    wake-up of the process's wiring thread, poked whenever something it waits for happens
    (an inproc bind or connect, the endpoint table, a finished import, a stop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: set[str] = set()
        self._connected: Counter[str] = Counter()
        self._wake: tuple[int, int] | None = None

    def listen(self) -> int:
        """The file descriptor to poll for pokes (a pipe's read end: no zmq socket pair,
        whose inproc handshake costs more than the whole poke traffic of a launch)."""
        with self._lock:
            if self._wake is None:
                r, w = os.pipe()
                os.set_blocking(r, False)
                os.set_blocking(w, False)
                self._wake = (r, w)
            return self._wake[0]

    def drain(self) -> None:
        """Empties the wake-up pipe: everything it announced is looked at again anyway."""
        if self._wake is not None:
            try:
                while os.read(self._wake[0], 4096):
                    pass
            except (BlockingIOError, OSError):
                pass

    def close(self) -> None:
        with self._lock:
            if self._wake is not None:
                for fd in self._wake:
                    os.close(fd)
                self._wake = None

    def post_bound(self, endpoint: str) -> None:
        with self._lock:
            self._bound.add(endpoint)
            self._poke()

    def post_connected(self, endpoint: str) -> None:
        with self._lock:
            self._connected[endpoint] += 1
            self._poke()

    def notify(self) -> None:
        """Wakes the waiting gates so they look again (new endpoint table, a stop, an
        import that ended). Safe from any thread."""
        with self._lock:
            self._poke()

    def bound(self, endpoint: str) -> bool:
        with self._lock:
            return endpoint in self._bound

    def connected(self, endpoint: str) -> int:
        with self._lock:
            return self._connected[endpoint]

    def _poke(self) -> None:
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"!")
            except (BlockingIOError, OSError):
                pass  # a full pipe has woken the reader already


class SocketGate:
    """Tracks one socket's readiness; the owning thread feeds it what its poll returns."""

    def __init__(self, ctx: zmq.Context[Any], sock: zmq.Socket[Any], planned: SocketShare,
                 transports: dict[str, str], addresses: dict[str, str],
                 absent: frozenset[str] = frozenset()) -> None:
        self.sock = sock
        self.planned = planned
        #: The links to wait for: not those to nodes that have ended for good, nor to
        #: exec nodes that start only once this one is ready (topo.plan.execplan).
        self.peers = [p for p in planned.peers if p.instance not in absent and p.wait]
        self.transports = transports
        self.addresses = addresses
        net = [p for p in self.peers if transports[p.endpoint] != INPROC]
        #: Exec senders that connect only after this gate (their handshakes are reported
        #: past it, :mod:`topo.process.execlinks`).
        self.exec_senders = [p for p in planned.peers if not p.wait and p.instance not in absent
                             and transports[p.endpoint] != INPROC]
        self.expected_handshakes = len(net)
        self.handshakes = 0
        self.counts_subscriptions = planned.type == PUB
        self.expected_topics: Counter[bytes] = Counter()
        if self.counts_subscriptions:
            for peer in self.peers:
                if peer.type == SUB:
                    self.expected_topics.update(t.encode() for t in peer.subscribe)
        self.seen_topics: Counter[bytes] = Counter()
        self.monitor: zmq.Socket[Any] | None = None
        if net or self.exec_senders:
            with _monitor_lock:
                address = f"inproc://#topo-monitor/{next(_monitor_ids)}"
            # a socket with exec senders: the connection's descriptor too (topo.process.execlinks)
            sock.monitor(address, zmq.EVENT_HANDSHAKE_SUCCEEDED | (
                zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED if self.exec_senders else 0))
            self.monitor = ctx.socket(zmq.PAIR)
            self.monitor.connect(address)

    # -- what the poll delivers ---------------------------------------------------------

    def on_monitor(self) -> None:
        assert self.monitor is not None
        self.handshakes += handshakes_in(self.monitor)

    def on_subscription(self) -> None:
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] == b"\x01":
                self.seen_topics[frame[1:]] += 1

    def touch(self) -> None:
        """One API call, so the socket takes the pipes handed to it. A SUB that binds sends
        its subscriptions to a new peer only then (libzmq processes commands lazily)."""
        try:
            self.sock.getsockopt(zmq.EVENTS)
        except zmq.ZMQError:
            pass

    # -- the verdict ---------------------------------------------------------------------

    def ready(self, board: InprocBoard) -> bool:
        """Whether nothing is missing: checked on every wake-up, so it only counts (a hub
        with hundreds of peers would otherwise format their names hundreds of times)."""
        if self.handshakes < self.expected_handshakes:
            return False
        if any(self.seen_topics[t] < n for t, n in self.expected_topics.items()):
            return False
        inproc = [p for p in self.peers if self.transports[p.endpoint] == INPROC]
        if not inproc:
            return True
        return not self.missing(board)

    def missing(self, board: InprocBoard) -> list[str]:
        """What this socket still waits for, in words; empty when ready."""
        out: list[str] = []
        name = self.planned.name
        if self.handshakes < self.expected_handshakes:
            peers = ", ".join(
                f"{p.instance}.{p.socket}" for p in self.peers
                if self.transports[p.endpoint] != INPROC
            )
            out.append(f"socket {name!r}: {self.expected_handshakes - self.handshakes} of "
                       f"{self.expected_handshakes} connections not made yet (peers: {peers})")
        for peer in self.peers:
            if self.transports[peer.endpoint] != INPROC:
                continue
            address = self.addresses[peer.endpoint]
            if peer.binds and not board.bound(address):
                out.append(f"socket {name!r}: {peer.instance}.{peer.socket} has not bound {address}")
        for address in {self.addresses[p.endpoint] for p in self.peers
                        if not p.binds and self.transports[p.endpoint] == INPROC}:
            wanted = sum(1 for p in self.peers if not p.binds and self.addresses[p.endpoint] == address)
            if board.connected(address) < wanted:
                out.append(f"socket {name!r}: {wanted - board.connected(address)} inproc peer(s) not connected to {address}")
        short = {t: n - self.seen_topics[t] for t, n in self.expected_topics.items() if self.seen_topics[t] < n}
        if short:
            waiting = [f"{p.instance}.{p.socket}" for p in self.peers
                       if p.type == SUB and any(t.encode() in short for t in p.subscribe)]
            topics = ", ".join(repr(t.decode(errors="replace")) for t in short)
            out.append(f"socket {name!r}: subscriptions {topics} not seen yet (from {', '.join(waiting)})")
        return out

    def finish(self, keep_monitor: bool = False) -> zmq.Socket[Any] | None:
        """Stops monitoring and attaches pipes the socket has been handed but not taken.
        ``keep_monitor``: the monitor stays on and its PAIR is returned, for the caller to
        read and close (a socket whose exec senders connect after the gate:
        :mod:`topo.process.execlinks`); None if it has none."""
        kept = None
        if keep_monitor and self.monitor is not None:
            kept, self.monitor = self.monitor, None
        if self.monitor is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)
            self.monitor = None
        try:
            self.sock.getsockopt(zmq.EVENTS)
        except zmq.ZMQError:
            pass
        return kept


def handshakes_in(monitor: zmq.Socket[Any], fds: list[int] | None = None) -> int:
    """How many ``EVENT_HANDSHAKE_SUCCEEDED`` wait on a monitor's PAIR (read, not waited
    for); ``fds``: gets the descriptor of each connection accepted or made."""
    count = 0
    while True:
        try:
            frames = monitor.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return count
        event, value = _EVENT.unpack(frames[0][:6])
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            count += 1
        elif fds is not None and event in (zmq.EVENT_ACCEPTED, zmq.EVENT_CONNECTED):
            fds.append(value)


class GateWatch:
    """One poll over the monitors and subscription feeds of many gates, plus any file
    descriptors (a wake-up pipe): what a process's wiring thread and the harness's probes
    wait on. Gates come and go as they open, so the poller is kept, not rebuilt per wait."""

    def __init__(self, fds: Iterable[int] = ()) -> None:
        self.poller = zmq.Poller()
        self._heard: dict[Any, tuple[SocketGate, bool]] = {}
        self._fds = set(fds)
        for fd in self._fds:
            self.poller.register(fd, zmq.POLLIN)

    def add(self, gate: SocketGate) -> None:
        if gate.monitor is not None:
            self.poller.register(gate.monitor, zmq.POLLIN)
            self._heard[gate.monitor] = (gate, True)
        if gate.counts_subscriptions and gate.expected_topics:
            self.poller.register(gate.sock, zmq.POLLIN)
            self._heard[gate.sock] = (gate, False)

    def remove(self, gate: SocketGate) -> None:
        for sock in (gate.monitor, gate.sock):
            if sock is not None and sock in self._heard and self._heard[sock][0] is gate:
                self.poller.unregister(sock)
                del self._heard[sock]

    def wait(self, timeout: float | None) -> tuple[set[SocketGate], bool]:
        """One wait (seconds; None: until something happens). Feeds each gate what arrived
        for it and returns the gates that heard something, and whether a file descriptor
        is readable (the caller drains it)."""
        events = self.poller.poll(None if timeout is None else max(1, int(timeout * 1000)))
        heard: set[SocketGate] = set()
        woken = False
        for sock, _ in events:
            if sock in self._fds:
                woken = True
                continue
            entry = self._heard.get(sock)
            if entry is None:
                continue
            gate, is_monitor = entry
            if is_monitor:
                gate.on_monitor()
            else:
                gate.on_subscription()
            heard.add(gate)
        return heard, woken
