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

A tap put on while the node is in the middle of a multipart ``send_multipart`` (between
two of its frames) sees that first message without its first frames; delivery is not
affected.

The copies go into a bounded queue: a tap whose reader is slow loses its own copies, counted
in :attr:`Tap.dropped`, never the node's messages and never the node's time.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable

import zmq

#: Copies a tap holds for its reader before it drops new ones.
DEFAULT_CAPACITY = 10_000

OUT, IN = "out", "in"
#: Plain ints: ``flags & zmq.SNDMORE`` goes through the enum's ``__and__``, a quarter of a
#: tapped send's cost.
_SNDMORE, _RCVMORE = int(zmq.SNDMORE), int(zmq.RCVMORE)


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
    """The copies of one socket's messages, in one or both directions, until closed."""

    def __init__(self, directions: frozenset[str] = frozenset({IN, OUT}), capacity: int = DEFAULT_CAPACITY,
                 notify: Callable[[], None] | None = None) -> None:
        self.directions = directions
        self.capacity = capacity
        #: Called when a copy is queued into an empty queue (from the node's thread: must
        #: not block); the reader takes until the queue is empty before it waits again.
        self.notify = notify
        self.copies: collections.deque[Copy] = collections.deque()
        #: Copies not queued because the reader was behind.
        self.dropped = 0
        self._partial: dict[str, list[bytes]] = {IN: [], OUT: []}

    def frame(self, direction: str, data: bytes, more: bool) -> None:
        """One frame seen by the socket; a message is queued at its last frame."""
        if direction not in self.directions:
            return
        parts = self._partial[direction]
        if more:
            parts.append(data)
            return
        if parts:  # the last frame of a multipart message
            parts.append(data)
            self._partial[direction] = []
        else:
            parts = [data]
        if len(self.copies) >= self.capacity:
            self.dropped += 1
            return
        copies = self.copies
        copies.append(Copy(direction, parts, time.time_ns()))  # deque.append: atomic
        if len(copies) == 1 and self.notify is not None:
            self.notify()  # only when the reader may be asleep: it takes until the queue is empty

    def take(self, most: int = 1000) -> list[Copy]:
        """Up to ``most`` queued copies, oldest first (the reader's side)."""
        out: list[Copy] = []
        while self.copies and len(out) < most:
            out.append(self.copies.popleft())
        return out


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
    """What a tapped socket's class adds to its plain class while tapped (see the module's
    docstring). Mixed in front of the plain class (:func:`_tapped_class`), so a socket of a
    subclass (:class:`topo.process.sockets.PubSocket`) keeps its own behaviour."""

    _topo_taps: list[Tap]

    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False,  # type: ignore[override]
             **kwargs: Any) -> Any:
        result = super().send(data, flags, copy=copy, track=track, **kwargs)
        frame = _bytes(data)
        for tap in self._topo_taps:
            tap.frame(OUT, frame, bool(flags & _SNDMORE))
        return result

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        data = super().recv(flags, copy=copy, track=track)
        frame = _bytes(data)
        more = bool(self.getsockopt(_RCVMORE))
        for tap in self._topo_taps:
            tap.frame(IN, frame, more)
        return data

    if hasattr(zmq.Socket, "recv_into"):  # pyzmq 26 and newer
        def recv_into(self, buffer: Any, /, *args: Any, **kwargs: Any) -> int:
            n: int = super().recv_into(buffer, *args, **kwargs)
            frame = bytes(memoryview(buffer).cast("B")[:n])
            more = bool(self.getsockopt(_RCVMORE))
            for tap in self._topo_taps:
                tap.frame(IN, frame, more)
            return n


_lock = threading.Lock()
_classes: dict[type, type] = {}


def _tapped_class(plain: type) -> type:
    """The tapped class of ``plain``, made once per plain class."""
    tapped = _classes.get(plain)
    if tapped is None:
        tapped = _classes[plain] = type(f"Tapped{plain.__name__}", (_Tapped, plain), {})
    return tapped


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
        io.__dict__["_topo_taps"] = taps  # a new list: the node's thread iterates the old one safely
        if not isinstance(io, _Tapped):
            io.__dict__["_topo_plain"] = type(io)
            io.__class__ = _tapped_class(type(io))


def detach(sock: zmq.Socket[Any], tap: Tap) -> None:
    """``tap`` gets no more copies; the last tap gone, ``sock`` is its plain class again."""
    io = _io_socket(sock)
    with _lock:
        taps = [t for t in io.__dict__.get("_topo_taps", ()) if t is not tap]
        io.__dict__["_topo_taps"] = taps
        if not taps and isinstance(io, _Tapped):
            io.__class__ = io.__dict__.pop("_topo_plain", zmq.Socket[Any])
