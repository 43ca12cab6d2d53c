"""The tapped send and recv paths with real inproc sockets: single-frame and multipart
messages, both directions, copies and Frames, asyncio sockets, and a full reader's drop."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
import zmq
import zmq.asyncio

from topo.process import tap


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    ctx: zmq.Context[Any] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://paths")
    b.connect("inproc://paths")
    yield a, b
    for s in (a, b):
        s.close(linger=0)
    ctx.term()


def _seen(t: tap.Tap) -> list[tuple[str, list[bytes]]]:
    return [(c.direction, c.frames) for c in t.take()]


def test_both_directions_single_and_multipart_in_order(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    a, b = pair
    t = tap.Tap()
    tap.attach(a, t)
    a.send(b"one")
    a.send_multipart([b"k", b"v", memoryview(b"mv")])
    a.send_string("s")
    b.send_multipart([b"x", b"y"])
    b.send(b"z")
    assert a.recv_multipart() == [b"x", b"y"]
    assert a.recv(copy=False).bytes == b"z"  # a Frame: its own ``more`` says where the message ends
    assert [b.recv(), b.recv_multipart(), b.recv_string()] == [b"one", [b"k", b"v", b"mv"], "s"]
    assert _seen(t) == [("out", [b"one"]), ("out", [b"k", b"v", b"mv"]), ("out", [b"s"]),
                        ("in", [b"x", b"y"]), ("in", [b"z"])]
    tap.detach(a, t)


def test_multipart_received_as_frames_is_assembled(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    a, b = pair
    t = tap.Tap(frozenset({tap.IN}))
    tap.attach(b, t)
    a.send_multipart([b"1", b"2", b"3"])
    a.send(b"4")
    assert [f.bytes for f in b.recv_multipart(copy=False)] == [b"1", b"2", b"3"]
    if hasattr(zmq.Socket, "recv_into"):  # pyzmq 26 and newer: tapped there too
        buf = bytearray(8)
        assert b.recv_into(buf) == 1 and buf[:1] == b"4"
    else:
        assert b.recv() == b"4"
    b.send(b"not wanted")  # out is not one of the tap's directions
    assert a.recv() == b"not wanted"
    assert _seen(t) == [("in", [b"1", b"2", b"3"]), ("in", [b"4"])]
    tap.detach(b, t)


def test_two_taps_each_get_their_directions(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    a, b = pair
    outs, both = tap.Tap(frozenset({tap.OUT})), tap.Tap()
    tap.attach(a, outs)
    tap.attach(a, both)
    a.send_multipart([b"o", b"p"])
    b.send(b"i")
    assert a.recv() == b"i" and b.recv_multipart() == [b"o", b"p"]
    assert _seen(outs) == [("out", [b"o", b"p"])]
    assert _seen(both) == [("out", [b"o", b"p"]), ("in", [b"i"])]
    tap.detach(a, outs)
    tap.detach(a, both)
    assert not tap.tapped(a)


def test_limit_zero_counts_without_copying_and_delivery_is_whole(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    a, b = pair
    t = tap.Tap()
    tap.attach(a, t)
    t.limit = 0  # the reader's way full (topo.process.tapping)
    for i in range(5):
        a.send_multipart([b"m", b"%d" % i])
    assert [b.recv_multipart() for _ in range(5)] == [[b"m", b"%d" % i] for i in range(5)]
    assert t.take() == [] and t.dropped == 5
    t.limit = t.capacity
    a.send(b"again")
    assert b.recv() == b"again" and _seen(t) == [("out", [b"again"])]
    tap.detach(a, t)


def test_a_tapped_send_counts_a_large_frame_in_bytes_and_a_small_one_by_count(
        pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    a, b = pair
    t = tap.Tap(capacity=3)
    t.max_bytes = 5000
    tap.attach(a, t)
    for _ in range(4):
        a.send(b"L" * 2000)  # the third crosses the byte bound; the fourth is dropped
    assert t.queued == 3 and t.dropped == 1 and t.bytes_in == 6000
    assert len(t.take()) == 3 and t.bytes_in == t.bytes_out
    for _ in range(4):
        a.send(b"s" * tap.SMALL)  # not counted in bytes: the count (3) bounds them
    assert t.queued == 3 and t.dropped == 2 and t.bytes_in == t.bytes_out
    assert [c.frames for c in t.take()] == [[b"s" * tap.SMALL]] * 3 and t.bytes_in == t.bytes_out
    assert [len(b.recv()) for _ in range(8)] == [2000] * 4 + [tap.SMALL] * 4  # every message delivered
    tap.detach(a, t)


def test_asyncio_sockets_are_tapped_both_ways() -> None:
    async def main() -> list[tuple[str, list[bytes]]]:
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        a.bind("inproc://apaths")
        b.connect("inproc://apaths")
        t = tap.Tap()
        tap.attach(a, t)
        await a.send_multipart([b"h", b"i"])
        await a.send(b"j")
        assert await b.recv_multipart() == [b"h", b"i"] and await b.recv() == b"j"
        await b.send_multipart([b"k", b"l"])
        assert await a.recv_multipart() == [b"k", b"l"]
        tap.detach(a, t)
        for s in (a, b):
            s.close(linger=0)
        ctx.term()
        return _seen(t)

    assert asyncio.run(main()) == [("out", [b"h", b"i"]), ("out", [b"j"]), ("in", [b"k", b"l"])]


def test_a_tap_queue_is_bounded_in_bytes_too() -> None:
    """10,000 copies of 64 KB messages would be 640 MB: the queue also stops at a byte bound."""
    from topo.process.tap import IN, OUT, Tap

    tap = Tap(frozenset({IN, OUT}))
    tap.max_bytes = 100_000
    for _ in range(5):
        tap.sent(b"x" * 30_000, 0)
    assert tap.queued == 4 and tap.dropped == 1  # the 4th crossed the bound; the 5th was dropped
    tap.received(b"y" * 10, 0)
    assert tap.dropped == 2
    assert len(tap.take()) == 4 and tap.bytes_in - tap.bytes_out == 0
    tap.received(b"a" * 600, 1)
    tap.received(b"b" * 600, 0)  # a multipart message counts all its frames
    assert tap.bytes_in - tap.bytes_out == 1200 and [c.frames for c in tap.take()] == [[b"a" * 600, b"b" * 600]]
    tap.received(b"small", 0)  # a small copy is bounded by the count alone (10,000 of at most 1 KiB)
    assert tap.bytes_in - tap.bytes_out == 0 and tap.queued == 1
    assert len(tap.take()) == 1 and tap.bytes_in - tap.bytes_out == 0


class _TappedAfterFirstFrame(zmq.Socket[Any]):
    """A socket whose tap is put on between the first and second frame of its next
    message, sent or received: where the other thread's attach lands at worst."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__["due"] = None

    def send(self, data: Any, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        result = super().send(data, flags, *args, **kwargs)
        self._attach_due()
        return result

    def recv(self, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        result = super().recv(flags, *args, **kwargs)
        self._attach_due()
        return result

    def _attach_due(self) -> None:
        due, self.__dict__["due"] = self.__dict__["due"], None
        if due is not None:
            tap.attach(self, due)


@pytest.mark.parametrize("flavour", ["send_multipart", "recv_multipart", "recv_multipart Frames"])
def test_a_tap_put_on_in_the_middle_of_a_message_begins_with_the_next(flavour: str) -> None:
    """Before, the tap's first copy was the message's tail ([b"tick 16"] for
    [b"a.", b"tick 16"]): a message nobody sent, printed by ``topo echo``."""
    ctx: zmq.Context[Any] = zmq.Context()
    a = ctx.socket(zmq.PAIR, socket_class=_TappedAfterFirstFrame)
    b = ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://midway")
        b.connect("inproc://midway")
        t = tap.Tap()
        a.__dict__["due"] = t
        if flavour == "send_multipart":
            a.send_multipart([b"a.", b"tick 16", b"end"])
            a.send_multipart([b"b.", b"tick 17"])
            a.send(b"single")
            assert [b.recv_multipart() for _ in range(3)] == [[b"a.", b"tick 16", b"end"], [b"b.", b"tick 17"],
                                                             [b"single"]]
            assert _seen(t) == [("out", [b"b.", b"tick 17"]), ("out", [b"single"])]
        else:
            copy = flavour == "recv_multipart"
            b.send_multipart([b"a.", b"tick 16", b"end"])
            b.send_multipart([b"b.", b"tick 17"])
            got = [a.recv_multipart(copy=copy), a.recv_multipart(copy=copy)]
            assert [[f if copy else f.bytes for f in m] for m in got] == [[b"a.", b"tick 16", b"end"],
                                                                         [b"b.", b"tick 17"]]
            assert _seen(t) == [("in", [b"b.", b"tick 17"])]
        tap.detach(a, t)
    finally:
        for s in (a, b):
            s.close(linger=0)
        ctx.term()


def test_a_tap_put_on_between_messages_misses_none(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    """The look at a tap's first frame takes nothing from a tap put on before a message:
    a frame passed twice in one message (the same object) included."""
    a, b = pair
    t = tap.Tap()
    tap.attach(a, t)
    empty = b""
    a.send_multipart([empty, empty, b"x"])
    b.send_multipart([b"1", b"2"])
    assert b.recv_multipart() == [b"", b"", b"x"] and a.recv_multipart() == [b"1", b"2"]
    assert _seen(t) == [("out", [b"", b"", b"x"]), ("in", [b"1", b"2"])]
    tap.detach(a, t)
