"""The supervisor's and the agent's ways for recorded copies from other hosts: a
recording's copies are told from a plain tap's by their id, never dropped while the
recorder lives (they wait, bounded by the agent's credits), dropped and counted once it is
given up; the agent sends only on credit and confirms a process's ``end``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from topo.hosts import recordfeed
from topo.hosts.recordfeed import RecordFeed
from topo.process.recordack import ask
from topo.supervisor import recordways
from topo.supervisor.recordways import CREDIT, STALL, RecordWays, is_record

HOSTS = {"w.0": "h1", "w.1": "h1", "sink": "h2"}


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def _copy(n: int, instance: str = "w.0", tap: str = "record:tasks", direction: bytes = b"in") -> list[zmq.Frame]:
    return [zmq.Frame(f) for f in (tap.encode(), instance.encode(), direction, b"1", b"0", b"%d" % n)]


def test_a_recordings_copy_is_told_by_its_id() -> None:
    assert is_record(_copy(1)) and is_record([b"record:x", b"i"])
    assert not is_record(_copy(1, tap="tap-3f2a")) and not is_record([b"recordx"]) and not is_record([])


def _ways(ctx: zmq.Context[Any], endpoint: str) -> RecordWays:
    return RecordWays(ctx, endpoint, {"w.0": ("tasks", "results"), "sink": ("results",)}, HOSTS.get)


def test_only_a_recorded_socket_of_an_instance_on_the_sending_host_is_accepted(ctx: zmq.Context[Any]) -> None:
    ways = _ways(ctx, "inproc://rec-accept")
    assert ways.accepts("h1", _copy(1))
    assert not ways.accepts("h2", _copy(1))                       # w.0 is h1's
    assert not ways.accepts("h1", _copy(1, instance="w.1"))       # w.1's sockets are not recorded
    assert not ways.accepts("h1", _copy(1, tap="record:other"))   # nor that socket
    assert not ways.accepts("h1", _copy(1)[:4])                   # malformed
    assert not ways.accepts("h1", [zmq.Frame(b"record:tasks"), zmq.Frame(b"\xff")] + _copy(1)[2:])


def test_copies_wait_for_a_recorder_behind_and_go_in_order_with_their_credits(
        ctx: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordways, "HWM", 1)
    pull = ctx.socket(zmq.PULL)
    pull.rcvhwm = 1
    pull.bind("inproc://rec-behind")
    ways = _ways(ctx, "inproc://rec-behind")
    for n in range(20):
        ways.copy("h1", _copy(n))
    passed = sum(n for _, n in ways.grants())
    assert ways.pending() and passed < 20 and ways.dropped == 0  # waiting, none lost
    got: list[int] = []
    deadline = time.monotonic() + 10
    while len(got) < 20:
        assert time.monotonic() < deadline, f"copy {len(got)} never came"
        if pull.poll(10):
            got.append(int(pull.recv_multipart()[5]))
        ways.push.poll(10, zmq.POLLOUT)  # the room made is told to the PUSH
        ways.drain(time.monotonic())
        passed += sum(n for _, n in ways.grants())
    assert got == list(range(20)) and passed == 20 and not ways.pending()


def test_a_recorder_that_takes_nothing_is_given_up_dropped_and_counted(
        ctx: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordways, "HWM", 1)
    pull = ctx.socket(zmq.PULL)
    pull.rcvhwm = 1
    pull.bind("inproc://rec-dead")
    ways = _ways(ctx, "inproc://rec-dead")
    for n in range(10):
        ways.copy("h1", _copy(n))
    ways.grants()
    waiting = len(ways.waiting["h1"])
    ways.drain(1e12)  # long after the last copy was taken
    assert ways.given_up and ways.dropped == waiting and not ways.pending()
    assert dict(ways.grants()) == {"h1": waiting}  # the agent's credits come back: no node waits
    ways.copy("h1", _copy(10))
    assert ways.dropped == waiting + 1 and STALL > 0


def test_an_agent_that_ignores_its_credits_has_its_excess_dropped(
        ctx: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordways, "HWM", 1)
    monkeypatch.setattr(recordways, "WINDOW", 5)
    pull = ctx.socket(zmq.PULL)
    pull.rcvhwm = 1
    pull.bind("inproc://rec-greedy")
    ways = _ways(ctx, "inproc://rec-greedy")
    for n in range(40):
        ways.copy("h1", _copy(n))
    assert len(ways.waiting["h1"]) == 10 and ways.dropped > 0  # two windows at most


def test_the_agent_sends_on_credit_only_and_confirms_an_end(ctx: zmq.Context[Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordfeed, "WINDOW", 3)
    feed = RecordFeed(ctx, tmp_path)
    feed.credit = 3
    router = ctx.socket(zmq.ROUTER)
    router.bind("inproc://sup")
    up = ctx.socket(zmq.DEALER)
    up.identity = b"h1"
    up.connect("inproc://sup")
    push = ctx.socket(zmq.PUSH)
    push.connect(feed.endpoint)
    push.send_multipart([b"record:out", b"src", b"on", b"1", b"0"])
    for n in range(4):
        push.send_multipart([b"record:out", b"src", b"out", b"2", b"0", b"%d" % n])
    push.send_multipart([b"record:out", b"src", b"end", b"77", b"0"])
    assert feed.pull.poll(2000)
    while feed.credit:
        feed.relay(up)
    assert feed.credit == 0 and feed.open == {(b"record:out", b"src"): 1}
    sent = [router.recv_multipart() for _ in range(3)]
    assert [m[1] for m in sent] == [b"c"] * 3 and not router.poll(50)  # no credit: nothing more read
    asker = ctx.socket(zmq.REQ)
    asker.connect(feed.ack_endpoint)
    asker.send_multipart([b"record:out", b"src", b"77"])
    assert feed.ack.poll(2000)
    feed.asked()
    assert not asker.poll(50)  # its end is not read yet: no answer
    feed.granted([CREDIT, b"99"])
    assert feed.credit == 3  # never above a window
    while feed.open:
        feed.relay(up)
    assert asker.poll(2000) and asker.recv() == b"ok"
    asker.send_multipart([b"record:out", b"src", b"77"])  # asked once the end is read: at once
    assert feed.ack.poll(2000)
    feed.asked()
    assert asker.poll(2000) and asker.recv() == b"ok"
    assert ask(ctx, feed.ack_endpoint, [], 0.0)  # nothing to ask: no wait
    feed.close()
