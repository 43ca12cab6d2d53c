"""A link made or dropped in place (topo.process.relink): the change is made by the thread
that uses the socket, at its next send, recv or poll, and answered once; one not taken
in time is withdrawn; inproc sockets stand in for a node's."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest
import zmq

from topo.process.control import Kind, Message
from topo.process.relink import Relinks


class FakeRunner:
    """What Relinks looks at of a node's runner: its sockets, and whether it runs."""

    def __init__(self, sockets: dict[str, zmq.Socket[Any]]) -> None:
        self.sockets = sockets
        self.node_sockets: dict[str, Any] | None = None
        self.ident: int | None = threading.get_ident()
        self.finished = False


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


def link(ident: str, ops: list[list[str]], **extra: Any) -> dict[str, Any]:
    return {"id": ident, "instance": "a", "socket": "out", "ops": ops, **extra}


def test_a_connect_is_made_by_the_next_send_before_it_and_answered(ctx: zmq.Context[Any]) -> None:
    push, first, second = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL), ctx.socket(zmq.PULL)
    first.bind("inproc://first")
    second.bind("inproc://second")
    push.connect("inproc://first")
    said: list[Message] = []
    relinks = Relinks(said.append, {"k1": "inproc://first"})
    relinks.request(link("1", [["connect", "k2", "inproc://second"]]), {"a": FakeRunner({"out": push})})
    assert said == [] and "send" in push.__dict__  # waiting for the socket's next use
    for i in range(4):
        push.send_string(str(i))
    got = [first.recv_string(zmq.NOBLOCK), first.recv_string(zmq.NOBLOCK),
           second.recv_string(zmq.NOBLOCK), second.recv_string(zmq.NOBLOCK)]
    assert sorted(got) == ["0", "1", "2", "3"]  # round robin over both from the first send on
    assert [(m.kind, m["done"]) for m in said] == [(Kind.LINKED, True)] and not relinks.waiting
    assert "send" not in push.__dict__ and relinks.addresses["k2"] == "inproc://second"


def test_a_disconnect_is_made_at_a_poll_and_the_address_is_the_one_connected(ctx: zmq.Context[Any]) -> None:
    pull, peer = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    peer.bind("inproc://peer")
    pull.connect("inproc://peer")
    said: list[Message] = []
    relinks = Relinks(said.append, {"k": "inproc://peer"})
    relinks.request({**link("1", [["disconnect", "k", ""]]), "socket": "in"}, {"a": FakeRunner({"in": pull})})
    assert pull.poll(0) == 0
    assert said[0]["done"] is True
    with pytest.raises(zmq.ZMQError):  # connected no more: a second disconnect finds nothing
        pull.disconnect("inproc://peer")


def test_a_change_not_taken_in_time_is_withdrawn_once_and_a_second_joins_a_waiting_one(
        ctx: zmq.Context[Any]) -> None:
    push = ctx.socket(zmq.PUSH)
    said: list[Message] = []
    relinks = Relinks(said.append, {})
    runners = {"a": FakeRunner({"out": push})}
    relinks.request(link("1", [["connect", "k", "inproc://x"]], within=0.05), runners)
    relinks.request(link("2", [["connect", "k2", "inproc://y"]]), runners)
    assert len(relinks.waiting) == 1  # joined
    relinks.expire(time.monotonic() + 1)
    assert sorted((m["id"], m["done"]) for m in said) == [("1", False), ("2", False)]
    assert not any(name in push.__dict__ for name in ("send", "recv", "poll"))
    relinks.expire(time.monotonic() + 2)
    assert len(said) == 2  # answered once


def test_a_node_that_is_not_running_is_answered_at_once(ctx: zmq.Context[Any]) -> None:
    runner = FakeRunner({"out": ctx.socket(zmq.PUSH)})
    runner.ident = None
    said: list[Message] = []
    relinks = Relinks(said.append, {})
    relinks.request(link("1", [["connect", "k", "inproc://x"]]), {"a": runner})
    relinks.request(link("2", [["bind", "k", "inproc://x"]]), {"a": runner})
    assert [(m["id"], m["done"], m["why"]) for m in said] == [
        ("1", False, "its node is not running"), ("2", False, "malformed change")]
