"""The supervisor's and the agent's ways for recorded copies from other hosts: a
recording's copies are told from a plain tap's by their id, never dropped while the
recorder lives (they wait, bounded by the agent's credits), dropped and counted once it is
given up; the agent sends only on credit and confirms a process's ``end``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from topo.hosts import recordfeed
from topo.hosts.recordfeed import RecordFeed
from topo.process.recordack import ask
from topo.supervisor import recordways
from topo.supervisor.recordways import CREDIT, STALL, RecordWays, is_record, weight

HOSTS = {"w.0": "h1", "w.1": "h1", "sink": "h2"}


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def _copy(n: int, instance: str = "w.0", tap: str = "record:tasks", direction: bytes = b"in") -> list[zmq.Frame]:
    return [zmq.Frame(f) for f in (tap.encode(), instance.encode(), direction, b"1", b"0", b"%d" % n)]


#: The credit one of the copies below costs (numbers 0 to 9: one digit).
W = weight(_copy(0))


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
    assert ways.pending() and passed < 20 * W and ways.dropped == 0  # waiting, none lost
    got: list[int] = []
    deadline = time.monotonic() + 10
    while len(got) < 20:
        assert time.monotonic() < deadline, f"copy {len(got)} never came"
        if pull.poll(10):
            got.append(int(pull.recv_multipart()[5]))
        ways.push.poll(10, zmq.POLLOUT)  # the room made is told to the PUSH
        ways.drain(time.monotonic())
        passed += sum(n for _, n in ways.grants())
    assert got == list(range(20)) and not ways.pending()
    assert passed == sum(weight(_copy(n)) for n in range(20))  # every byte's credit back


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
    assert dict(ways.grants()) == {"h1": waiting * W}  # the agent's credits come back: no node waits
    ways.copy("h1", _copy(10))
    assert ways.dropped == waiting + 1 and STALL > 0


def test_an_agent_that_ignores_its_credits_has_its_excess_dropped(
        ctx: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordways, "HWM", 1)
    monkeypatch.setattr(recordways, "WINDOW", 5 * W)
    pull = ctx.socket(zmq.PULL)
    pull.rcvhwm = 1
    pull.bind("inproc://rec-greedy")
    ways = _ways(ctx, "inproc://rec-greedy")
    for n in range(40):
        ways.copy("h1", _copy(n % 10))
    assert len(ways.waiting["h1"]) == 10 and ways.dropped > 0  # two windows of bytes at most
    assert ways.queued["h1"] == 10 * W


def test_the_agent_sends_on_credit_only_and_confirms_an_end(ctx: zmq.Context[Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    on, copy = [b"record:out", b"src", b"on", b"1", b"0"], [b"record:out", b"src", b"out", b"2", b"0", b"0"]
    window = weight(on) + 2 * weight(copy)  # credit for three messages: credit counts bytes
    monkeypatch.setattr(recordfeed, "WINDOW", window)
    feed = RecordFeed(ctx, tmp_path)
    feed.credit = window
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
    assert feed.credit == window  # never above a window
    while feed.open:
        feed.relay(up)
    assert asker.poll(2000) and asker.recv() == b"ok"
    asker.send_multipart([b"record:out", b"src", b"77"])  # asked once the end is read: at once
    assert feed.ack.poll(2000)
    feed.asked()
    assert asker.poll(2000) and asker.recv() == b"ok"
    assert ask(ctx, feed.ack_endpoint, [], 0.0)  # nothing to ask: no wait
    feed.close()


def test_the_push_to_a_recorder_behind_closes_only_once_it_read_every_end(ctx: zmq.Context[Any],
                                                                          tmp_path: Path) -> None:
    """A recorder behind (its PULL's pipe full) stops reading the ipc connection; closed
    under it, the PUSH's hang-up made it drop what the kernel still held (libzmq issue
    4660). So the close asks first, on the recorder's ack ROUTER, and the reader here
    starts reading only once asked (or after a bound: then what it finds is what an
    unasked close left)."""
    from topo.process.recordack import Asks

    endpoint, ack_endpoint = f"ipc://{tmp_path}/rec", f"ipc://{tmp_path}/rec-ack"
    pull = ctx.socket(zmq.PULL)
    pull.rcvhwm = 4
    pull.bind(endpoint)
    ack = ctx.socket(zmq.ROUTER)
    ack.bind(ack_endpoint)
    ways = RecordWays(ctx, endpoint, {"w.0": ("tasks",)}, HOSTS.get, ack=ack_endpoint)
    ways.push.sndhwm = 100_000
    count = 3000
    body = b"x" * 200
    for n in range(count):
        ways.copy("h1", [zmq.Frame(f) for f in (b"record:tasks", b"w.0", b"in", b"1", b"0", b"%d" % n, body)])
    ways.copy("h1", [zmq.Frame(f) for f in (b"record:tasks", b"w.0", b"end", b"77", b"0")])
    assert not ways.pending()
    got: list[list[bytes]] = []

    def recorder() -> None:  # reads nothing until asked whether the end is read
        asks = Asks()
        asked = ack.poll(3000)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (got and got[-1][2] == b"end"):
            if asked:
                while ack.poll(0):
                    asks.asked(ack.recv_multipart())
            if pull.poll(100):
                frames = pull.recv_multipart()
                got.append(frames)
                if frames[2] == b"end":
                    asks.ended(frames[0], frames[1], frames[3])
        for who in asks.answered():
            ack.send_multipart([who, b"", b"ok"])

    reader = threading.Thread(target=recorder)
    reader.start()
    ways.close(time.monotonic() + 10)
    reader.join(15)
    assert len(got) == count + 1 and got[-1][2] == b"end", f"{count + 1 - len(got)} of {count + 1} lost"
