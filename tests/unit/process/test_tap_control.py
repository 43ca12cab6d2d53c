"""Tap messages (supervisor → process) are checked like every other before they are read,
and a tap attached and detached leaves the socket its plain class."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zmq

from topo.process import tap
from topo.process.control import Kind, Message
from topo.process.sockets import PubSocket

GOOD = {"tap": "ab12cd0", "instance": "worker.1", "socket": "tasks", "endpoint": "ipc:///run/x/tap-ab12cd",
        "directions": ["in", "out"]}


def test_a_tap_request_is_read_back() -> None:
    for message in (Message(Kind.TAP, dict(GOOD)), Message(Kind.UNTAP, {"tap": "ab12cd0"})):
        assert Message.decode(message.encode()) == message


@pytest.mark.parametrize("change", [
    {"directions": []}, {"directions": ["up"]}, {"directions": [["in"]]}, {"directions": "in"},
    {"endpoint": "tcp://evil:1"}, {"tap": "x" * 65}, {"instance": 3}, {"socket": None},
])
def test_a_bad_tap_request_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Message.decode([b"tap", json.dumps({**GOOD, **change}).encode()])


def test_untap_needs_its_id() -> None:
    with pytest.raises(ValueError):
        Message.decode([b"untap", b"{}"])


@pytest.mark.parametrize("make", [
    lambda ctx: ctx.socket(zmq.PUSH),
    lambda ctx: ctx.socket(zmq.XPUB, socket_class=PubSocket),
])
def test_attach_swaps_the_class_and_detach_restores_it(make: Any) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    sock = make(ctx)
    plain = type(sock)
    one, two = tap.Tap(), tap.Tap()
    tap.attach(sock, one)
    tap.attach(sock, two)
    assert tap.tapped(sock) and isinstance(sock, plain)  # a PubSocket keeps being one
    tap.detach(sock, one)
    assert tap.tapped(sock)
    tap.detach(sock, two)
    assert type(sock) is plain and not tap.tapped(sock)
    sock.close(linger=0)
    ctx.term()


def test_copies_are_whole_messages_and_a_full_queue_counts_drops() -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://t")
    b.connect("inproc://t")
    seen = tap.Tap(capacity=2)
    tap.attach(a, seen)
    a.send_multipart([b"topic", b"body"])
    a.send(b"two")
    a.send(b"three")
    assert b.recv_multipart() == [b"topic", b"body"] and b.recv() == b"two" and b.recv() == b"three"
    assert [(c.direction, c.frames) for c in seen.take()] == [("out", [b"topic", b"body"]), ("out", [b"two"])]
    assert seen.dropped == 1
    for s in (a, b):
        s.close(linger=0)
    ctx.term()
