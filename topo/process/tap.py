"""Copies of what a node's socket sends and receives, taken without touching delivery.

A tap must not change what the node's peers see: no extra connection, nothing stolen from a
PUSH's round robin, nothing reordered. So it sits in the node's own process, on the node's
own socket object: while a tap is on, the socket's class is swapped for a subclass whose
``send`` and ``recv`` also hand a copy of each frame to the tap, and swapped back when the
tap ends. With no tap the socket is the plain pyzmq class, and the data path costs nothing
more than it did (a check in every ``send`` would cost every node on every message).

Every way pyzmq sends or receives goes through those two methods (``send_multipart``,
``send_string``, ``recv_json``... call them), and an asyncio socket does its I/O through a
plain socket it shadows, whose class is the one swapped. What pyzmq cannot see is not
tapped: ``zmq.proxy`` and ``zmq.device`` move messages inside libzmq.

A tap put on while the node is in the middle of a ``send_multipart`` or ``recv_multipart``
(between two of its frames) begins with the next message (:mod:`topo.process.tapstart`).

The copies go into a bounded queue: a tap whose reader is slow loses its own copies, counted
in :attr:`Tap.dropped`, never the node's messages and never the node's time.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import zmq

from topo.process.tapstart import SKIPPING, UNSEEN, skipped_in, skipped_out
from topo.process.tapwire import IN_MANY, IN_ONE, OUT_MANY, OUT_ONE, STRIDE

#: Copies a tap holds for its reader before it drops new ones.
DEFAULT_CAPACITY = 10_000
#: Bytes of copies queued before new ones are dropped: with the count above, what a tap's
#: queue may hold whatever the messages' size (10,000 copies of 64 KB would be 640 MB).
#: Only copies of more than :data:`SMALL` bytes are counted: the count bounds the others
#: (10,000 of at most 1 KiB), and a tapped send of a small frame, the common case, is
#: spared the counting (a fifth of the node's price of a copy).
MAX_QUEUED_BYTES = 64 * 2**20
SMALL = 1024

OUT, IN = "out", "in"
#: Plain ints: ``flags & zmq.SNDMORE`` goes through the enum's ``__and__``, a quarter of a
#: tapped send's cost.
_SNDMORE, _RCVMORE = int(zmq.SNDMORE), int(zmq.RCVMORE)
_now = time.time_ns


class Copy:
    """One whole message as the socket sent (``out``) or received (``in``) it: its frames
    (a ROUTER's first frame is the peer's identity) and when, in ns since the epoch."""

    __slots__ = ("direction", "frames", "time_ns")

    def __init__(self, direction: str, frames: list[bytes], time_ns: int) -> None:
        self.direction = direction
        self.frames = frames
        self.time_ns = time_ns

    def __repr__(self) -> str:
        return f"Copy({self.direction!r}, {self.frames!r}, {self.time_ns})"


class Tap:
    """The copies of one socket's messages, in one or both directions, until closed.

    :meth:`sent` and :meth:`received` run in the node's thread, on every message while the
    tap is on: what they do is the price of a tap, so they do as little as possible. The
    copies are queued in :attr:`items`, a flat list (:data:`~topo.process.tapwire.STRIDE`
    items a copy) that the node's thread only extends, atomically (one ``+=`` of a tuple,
    under the interpreter lock), and the taker only shortens from its front: neither needs
    a lock."""

    def __init__(self, directions: frozenset[str] = frozenset({IN, OUT}), capacity: int = DEFAULT_CAPACITY,
                 notify: Callable[[], None] | None = None) -> None:
        self.directions = directions
        self.capacity = capacity
        self.limit = capacity
        #: Called when a copy is queued into an empty queue (from the node's thread: must
        #: not block); the reader takes until the queue is empty before it waits again. The
        #: reader may set it to None while it will look at the queue soon anyway.
        self.notify = notify
        self.items: list[Any] = []
        #: Copies not queued because the reader was behind.
        self.dropped = 0
        #: Bytes queued (written by the node's thread only) and taken (by the reader's
        #: only): each counter has one writer, so neither loses an update.
        self.bytes_in = 0
        self.bytes_out = 0
        self.max_bytes = MAX_QUEUED_BYTES
        #: The frames of a message not complete yet; before the first frame,
        #: :data:`~topo.process.tapstart.UNSEEN` (the tapped methods look where it begins).
        self._parts_out: list[bytes] = UNSEEN
        self._parts_in: list[bytes] = UNSEEN

    @property
    def limit(self) -> int:
        """The copies queued before new ones are dropped (``capacity`` unless changed)."""
        return self.room // STRIDE

    @limit.setter
    def limit(self, copies: int) -> None:
        #: The same bound in items of :attr:`items`, as the node's thread compares it.
        self.room = copies * STRIDE

    @property
    def queued(self) -> int:
        """Copies queued, not yet taken."""
        return len(self.items) // STRIDE

    def sent(self, data: bytes, more: int) -> None:
        """One frame the socket sent (``more``: not the last of its message)."""
        if self._parts_out is UNSEEN or self._parts_out is SKIPPING:  # (called directly)
            self._parts_out = []
        if more or self._parts_out:
            parts = self._parts_out
            parts.append(data)
            if more:
                return
            self._parts_out = []
            self._queue(OUT_MANY, parts)
            return
        self._queue(OUT_ONE, data)

    def received(self, data: bytes, more: int) -> None:
        """One frame the socket received (``more``: not the last of its message)."""
        if self._parts_in is UNSEEN or self._parts_in is SKIPPING:
            self._parts_in = []
        if more or self._parts_in:
            parts = self._parts_in
            parts.append(data)
            if more:
                return
            self._parts_in = []
            self._queue(IN_MANY, parts)
            return
        self._queue(IN_ONE, data)

    def frame(self, direction: str, data: bytes, more: bool) -> None:
        """One frame seen by the socket; a message is queued at its last frame."""
        if direction in self.directions:
            (self.sent if direction == OUT else self.received)(data, more)

    def _queue(self, code: bytes, frames: bytes | list[bytes]) -> None:
        items = self.items
        if len(items) >= self.room or self.bytes_in - self.bytes_out >= self.max_bytes:
            self.dropped += 1
            return
        size = len(frames) if isinstance(frames, bytes) else sum(map(len, frames))
        if size > SMALL:
            self.bytes_in += size
        items += (code, frames, size, _now())  # one extend: atomic
        if len(items) == STRIDE:
            notify = self.notify
            if notify is not None:
                notify()  # only when the reader may be asleep: it takes until the queue is empty

    def take_items(self, most: int | None = None) -> list[Any]:
        """Up to ``most`` queued copies (all, if None), as :attr:`items` holds them, oldest
        first; taken off the queue (the taker's side)."""
        items = self.items
        n = len(items) if most is None else min(len(items), most * STRIDE)
        taken = items[:n]
        del items[:n]  # only what was copied: what the node added meanwhile stays
        return taken

    def take(self, most: int = 1000) -> list[Copy]:
        """Up to ``most`` queued copies, oldest first (the reader's side)."""
        taken = self.take_items(most)
        self.bytes_out += counted(taken[2::STRIDE])
        return [Copy(OUT if code.lower() == OUT_ONE else IN, [frames] if type(frames) is bytes else frames, t)
                for code, frames, t in zip(taken[0::STRIDE], taken[1::STRIDE], taken[3::STRIDE])]


def counted(sizes: list[int]) -> int:
    """The bytes of those copies of ``sizes`` (a column of their sizes) that were counted
    in bytes when queued (see :data:`SMALL`): in C, and none to count in the common case."""
    if not sizes or max(sizes) <= SMALL:
        return 0
    return sum(filter(SMALL.__lt__, sizes))


def _bytes(data: Any) -> bytes:
    """A frame as bytes, whatever pyzmq was given or gave (bytes, a buffer, a Frame)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, zmq.Frame):
        return data.bytes
    if isinstance(data, str):  # refused by send itself; never reached after a success
        return data.encode()
    return bytes(memoryview(data))


class _Tapped(zmq.Socket[Any]):
    """What every tapped class is (see the module's docstring), and what it holds: made
    for each plain class by :func:`_tapped_class`, in front of it, so a socket of a
    subclass (:class:`topo.process.sockets.PubSocket`) keeps its own behaviour.

    ``_topo_out`` and ``_topo_in``: the taps that want each direction, as a tuple replaced
    whole (never changed in place) when a tap comes or goes, so the node's thread, which
    reads it once per frame, sees either the old taps or the new ones."""

    _topo_taps: list[Tap]
    _topo_out: tuple[Tap, ...]
    _topo_in: tuple[Tap, ...]


_lock = threading.Lock()
_classes: dict[type, type] = {}
#: pyzmq's own send, under the layer of ``zmq.Socket.send`` that only handles
#: ``routing_id`` and ``group`` (as :class:`topo.process.sockets.PubSocket` calls it).
_backend_send = zmq.backend.Socket.send


def _tapped_class(plain: type) -> type:
    """The tapped class of ``plain``, made once per plain class."""
    tapped = _classes.get(plain)
    if tapped is None:
        tapped = _classes[plain] = _make_tapped(plain)
    return tapped


def _make_tapped(plain: type) -> type:
    """``plain`` with ``send`` and ``recv`` that also hand each frame to the socket's taps.

    They are on every message's path while a tap is on, so they call the plain class's
    methods directly, with pyzmq's positional signature: ``super()`` with keywords alone
    cost a tapped send more than the rest of the tap's work."""
    plain_send: Callable[..., Any] = getattr(plain, "send")
    plain_recv: Callable[..., Any] = getattr(plain, "recv")
    fast_send: Callable[..., Any] = _backend_send if plain_send is zmq.Socket.send else plain_send

    def send(self: _Tapped, data: Any, flags: int = 0, copy: bool = True, track: bool = False,
             routing_id: Any = None, group: Any = None) -> Any:
        if routing_id is None and group is None:
            result = fast_send(self, data, flags, copy, track)
        else:
            result = plain_send(self, data, flags, copy, track, routing_id, group)
        taps = self._topo_out
        if taps:
            frame = data if type(data) is bytes else _bytes(data)
            more = flags & _SNDMORE if flags else 0
            size = len(frame)
            for tap in taps:
                if more or size > SMALL or tap._parts_out or type(tap) is not Tap:
                    parts = tap._parts_out
                    if (parts is UNSEEN or parts is SKIPPING) and skipped_out(tap, data, more):
                        continue
                    tap.sent(frame, more)
                    continue
                # Tap.sent's common case, inline: a call costs the node a fifth of the tap's
                # price; a small frame is bounded by the count alone (MAX_QUEUED_BYTES)
                items = tap.items
                if len(items) >= tap.room:
                    tap.dropped += 1
                    continue
                items += (OUT_ONE, frame, size, _now())  # one extend: atomic
                if len(items) == STRIDE:
                    notify = tap.notify
                    if notify is not None:
                        notify()
        return result

    def recv(self: _Tapped, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        data = plain_recv(self, flags, copy, track)
        taps = self._topo_in
        if taps:
            if type(data) is bytes:
                frame, more = data, int(self.getsockopt(_RCVMORE))
            else:  # a Frame (copy=False): it knows whether more follow
                frame, more = data.bytes, data.more
            for tap in taps:
                parts = tap._parts_in
                if (parts is UNSEEN or parts is SKIPPING) and skipped_in(tap, more):
                    continue
                tap.received(frame, more)
        return data

    methods: dict[str, Any] = {"send": send, "recv": recv}
    plain_recv_into: Callable[..., int] | None = getattr(plain, "recv_into", None)  # pyzmq 26 and newer
    if plain_recv_into is not None:
        def recv_into(self: _Tapped, buffer: Any, /, *args: Any, **kwargs: Any) -> int:
            assert plain_recv_into is not None
            n = plain_recv_into(self, buffer, *args, **kwargs)
            taps = self._topo_in
            if taps:
                frame = bytes(memoryview(buffer).cast("B")[:n])
                more = int(self.getsockopt(_RCVMORE))
                for tap in taps:
                    parts = tap._parts_in
                    if (parts is UNSEEN or parts is SKIPPING) and skipped_in(tap, more):
                        continue
                    tap.received(frame, more)
            return n

        methods["recv_into"] = recv_into
    return type(f"Tapped{plain.__name__}", (_Tapped, plain), methods)


def tapped(sock: zmq.Socket[Any]) -> bool:
    """Whether ``sock`` has a tap on (its class is not the plain one)."""
    return isinstance(_io_socket(sock), _Tapped)


def _io_socket(sock: zmq.Socket[Any]) -> zmq.Socket[Any]:
    """The object whose send and recv do the I/O: an asyncio socket's shadow."""
    shadow = getattr(sock, "_shadow_sock", None)
    return shadow if isinstance(shadow, zmq.Socket) else sock


def attach(sock: zmq.Socket[Any], tap: Tap) -> None:
    """From now on, ``tap`` gets a copy of each message of ``sock``."""
    io = _io_socket(sock)
    with _lock:
        taps = list(io.__dict__.get("_topo_taps", ()))
        taps.append(tap)
        _set_taps(io, taps)
        if not isinstance(io, _Tapped):
            io.__dict__["_topo_plain"] = type(io)
            io.__class__ = _tapped_class(type(io))


def detach(sock: zmq.Socket[Any], tap: Tap) -> None:
    """``tap`` gets no more copies; the last tap gone, ``sock`` is its plain class again."""
    io = _io_socket(sock)
    with _lock:
        taps = [t for t in io.__dict__.get("_topo_taps", ()) if t is not tap]
        _set_taps(io, taps)
        if not taps and isinstance(io, _Tapped):
            io.__class__ = io.__dict__.pop("_topo_plain", zmq.Socket[Any])


def _set_taps(io: zmq.Socket[Any], taps: list[Tap]) -> None:
    """New lists and tuples, never changed in place: the node's thread, in the middle of a
    send, goes on with the old ones safely."""
    io.__dict__["_topo_taps"] = taps
    io.__dict__["_topo_out"] = tuple(t for t in taps if OUT in t.directions)
    io.__dict__["_topo_in"] = tuple(t for t in taps if IN in t.directions)
