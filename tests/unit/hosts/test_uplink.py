"""An agent's way to its supervisor: one FIFO, and no input read while it is behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from topo.hosts.uplink import Uplink
from topo.process.control import Kind, Message
from topo.process.records import write_line
from topo.supervisor.pipes import open_pipes


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def _flags(poller: zmq.Poller) -> dict[Any, int]:
    return dict(poller.sockets)


def test_what_waits_keeps_its_order_and_holds_the_inputs_until_the_dealer_takes_it(ctx: zmq.Context[Any]) -> None:
    dealer, feed = ctx.socket(zmq.DEALER), ctx.socket(zmq.PULL)
    poller = zmq.Poller()
    up = Uplink(dealer, poller, (feed,))
    output, (records_w, out_w, err_w) = open_pipes("n")
    up.pipes.add("p", output)
    try:
        up.report(Message(Kind.AGENT, {"host": "h"}))  # connected to nobody: it waits
        assert up.behind
        held = _flags(poller)
        assert held[dealer] == zmq.POLLIN | zmq.POLLOUT  # woken once there is room
        assert feed not in held and not any(fd in held for fd in output.fds)
        up.beat(Message(Kind.BEAT, {}))  # a beat behind other messages is not queued
        write_line(records_w, "n", "a line", False)
        up.pipes.drain("p")  # as before a process's end: read even while held, queued behind
        router = ctx.socket(zmq.ROUTER)
        router.bind("inproc://up")
        dealer.connect("inproc://up")
        assert dict(poller.poll(5000)).get(dealer, 0) & zmq.POLLOUT
        up.flush()
        assert not up.behind
        free = _flags(poller)
        assert free[dealer] == zmq.POLLIN and free[feed] == zmq.POLLIN
        assert all(free[fd] == zmq.POLLIN for fd in output.fds)
        got = []
        while router.poll(1000):
            got.append(Message.decode(router.recv_multipart()[1:]))
            if len(got) == 2:
                break
        assert [m.kind for m in got] == [Kind.AGENT, Kind.OUTPUT]
        assert got[1].data == {"instance": "n", "line": "a line", "err": False}
        assert not router.poll(0)  # and no beat
    finally:
        up.pipes.close_all()
        for fd in (records_w, out_w, err_w):
            os.close(fd)


def test_once_cut_off_nothing_waits_and_nothing_is_held(ctx: zmq.Context[Any]) -> None:
    dealer, feed = ctx.socket(zmq.DEALER), ctx.socket(zmq.PULL)
    poller = zmq.Poller()
    up = Uplink(dealer, poller, (feed,))
    up.report(Message(Kind.AGENT, {"host": "h"}))
    assert up.behind
    up.cut_off()
    assert not up.behind and _flags(poller)[feed] == zmq.POLLIN
    up.report(Message(Kind.ENDED, {"process": "p"}))  # dropped: nobody to tell
    assert not up.behind
    up.finish(0.0)  # returns at once
