"""The readiness gate: when may a node's function be called?

A node is ready when every socket is connected to every linked peer and every PUB socket
has seen the subscriptions of every linked SUB that subscribes to something. Each fact is
observed, never assumed after a delay:

* tcp and ipc links: a socket monitor's ``EVENT_HANDSHAKE_SUCCEEDED``, one per link. The
  session hands the new pipe to the socket (a command in its mailbox) *before* it emits
  the event, so after the event one API call on the socket (``EVENTS``) attaches the pipe:
  a PUSH then spreads work over every worker from the first message on.
* inproc links (no monitor events exist for them): the binding thread announces its bind
  and each connecting thread its connect on the process's :class:`InprocBoard`; a connect
  to an inproc name that is bound has put the pipe in place by the time it returns.
* subscriptions: a user's PUB is created as an XPUB with ``XPUB_VERBOSE`` set, and the
  gate reads subscription messages until each expected topic has been seen as many times
  as linked SUBs subscribe to it. libzmq enters a subscription in its trie before handing
  the message to the application, so once read, a message sent on that topic reaches the
  subscriber. (Handshake events alone are racy here: the subscription may arrive after.)

A socket monitor is always stopped and its PAIR closed before the node runs: left open it
would make the context's termination hang.
"""

from __future__ import annotations

import struct
import threading
from collections import Counter
from typing import Any

import zmq

from topo.share import INPROC, PUB, SUB, SocketShare

_EVENT = struct.Struct("=HI")
_monitor_ids = iter(range(1 << 62))
_monitor_lock = threading.Lock()


class InprocBoard:
    """Who has bound and connected which inproc endpoint, inside one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: set[str] = set()
        self._connected: Counter[str] = Counter()
        self._waiters: list[zmq.Socket[Any]] = []

    def subscribe(self, wake: zmq.Socket[Any]) -> None:
        """``wake`` (a PUSH owned by the board) pokes a waiting gate's poll."""
        with self._lock:
            self._waiters.append(wake)

    def unsubscribe(self, wake: zmq.Socket[Any]) -> None:
        with self._lock:
            if wake in self._waiters:
                self._waiters.remove(wake)

    def post_bound(self, endpoint: str) -> None:
        with self._lock:
            self._bound.add(endpoint)
            self._poke()

    def post_connected(self, endpoint: str) -> None:
        with self._lock:
            self._connected[endpoint] += 1
            self._poke()

    def notify(self) -> None:
        """Wakes every waiting gate so it looks again (new endpoint table, a stop)."""
        with self._lock:
            self._poke()

    def wake(self, one: zmq.Socket[Any]) -> None:
        """Pokes one waiting gate only (a node's import finished: nobody else cares), and
        only while it is still subscribed, so never a socket its owner has closed."""
        with self._lock:
            if one in self._waiters:
                try:
                    one.send(b"", zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass

    def bound(self, endpoint: str) -> bool:
        with self._lock:
            return endpoint in self._bound

    def connected(self, endpoint: str) -> int:
        with self._lock:
            return self._connected[endpoint]

    def _poke(self) -> None:
        for wake in self._waiters:
            try:
                wake.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass


class SocketGate:
    """Tracks one socket's readiness; the owning thread feeds it what its poll returns."""

    def __init__(self, ctx: zmq.Context[Any], sock: zmq.Socket[Any], planned: SocketShare,
                 transports: dict[str, str], addresses: dict[str, str],
                 absent: frozenset[str] = frozenset()) -> None:
        self.sock = sock
        self.planned = planned
        #: The links to wait for: not those to nodes that have ended for good.
        self.peers = [p for p in planned.peers if p.instance not in absent]
        self.transports = transports
        self.addresses = addresses
        net = [p for p in self.peers if transports[p.endpoint] != INPROC]
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
        if net:
            with _monitor_lock:
                address = f"inproc://#topo-monitor/{next(_monitor_ids)}"
            sock.monitor(address, zmq.EVENT_HANDSHAKE_SUCCEEDED)
            self.monitor = ctx.socket(zmq.PAIR)
            self.monitor.connect(address)

    # -- what the poll delivers ---------------------------------------------------------

    def on_monitor(self) -> None:
        assert self.monitor is not None
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event, _ = _EVENT.unpack(frames[0][:6])
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshakes += 1

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

    def finish(self) -> None:
        """Stops monitoring and attaches pipes the socket has been handed but not taken."""
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
