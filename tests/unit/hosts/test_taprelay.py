"""An agent's checks of what it is asked to tap and to inject: the supervisor's channel is
authenticated, but what comes on it is hostile until checked (bounded, typed, about this
host's own instances and endpoints only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from topo.hosts.taprelay import MAX_HEADER, check_send, tap_for_process
from topo.process.control import Kind, Message
from topo.process.tapwire import copies_in

OWN = {"worker.0": "worker.0", "worker.1": "worker.1", "a": "both", "b": "both"}
HERE = "ipc:///run/agent/taps"
DIR = "/run/agent"


def _tap(target: str = "worker.0", **change: Any) -> list[bytes]:
    data = {"tap": "t1", "instance": "worker.0", "socket": "in", "endpoint": "ipc:///sup/tap-1",
            "directions": ["in", "out"], **change}
    return [target.encode(), Kind.TAP.value.encode(), json.dumps(data).encode()]


def test_a_tap_goes_on_with_the_agents_own_endpoint() -> None:
    frames = tap_for_process(_tap(), OWN, HERE)
    assert frames is not None and frames[0] == b"worker.0"
    message = Message.decode(frames[1:])
    assert message.kind is Kind.TAP
    assert message.data == {"tap": "t1", "instance": "worker.0", "socket": "in", "endpoint": HERE,
                            "directions": ["in", "out"]}
    both = tap_for_process(_tap("both", instance="b", directions=["out", "out"]), OWN, HERE)
    assert both is not None and Message.decode(both[1:]).data["directions"] == ["out"]


@pytest.mark.parametrize("frames", [
    _tap("worker.1"),                                   # an instance of another process
    _tap(instance="elsewhere.0"),                       # not on this host
    _tap(tap="x" * 65),                                 # an id too long
    _tap(directions=["sideways"]), _tap(directions=[]),
    _tap(socket=7), _tap(socket="s" * 300), _tap(endpoint=3),
    _tap(extra="x" * MAX_HEADER),                       # too large to read
    [b"worker.0", b"tap", b"{not json"], [b"worker.0", b"tap", b"[1, 2]"],
    [b"worker.0", b"tap"], [b"worker.0", b"untap", b'{"tap": "t1"}'],
])
def test_a_tap_that_is_not_for_this_hosts_instance_or_malformed_is_dropped(frames: list[bytes]) -> None:
    assert tap_for_process(frames, OWN, HERE) is None


def _send(**change: Any) -> bytes:
    return json.dumps({"instance": "worker.0", "socket": "in", "type": "PULL",
                       "address": f"ipc://{DIR}/worker.0.in", "secure": False, "timeout": 5, **change}).encode()


def test_a_send_to_an_endpoint_of_this_host_is_taken() -> None:
    job = check_send(_send(), [b"x"], OWN, DIR, "10.0.0.2")
    assert (job.name, job.type, job.address, job.secure, job.timeout, job.frames) == (
        "worker.0.in", "PULL", f"ipc://{DIR}/worker.0.in", False, 5.0, [b"x"])
    tcp = check_send(_send(type="REP", address="tcp://10.0.0.2:4567", secure=True), [b"q"], OWN, DIR, "10.0.0.2")
    assert (tcp.address, tcp.secure) == ("tcp://10.0.0.2:4567", True)
    wildcard = check_send(_send(address="tcp://*:4567"), [b"q"], OWN, DIR, "10.0.0.2")
    assert wildcard.address == "tcp://10.0.0.2:4567"  # dialled on the host's own address
    six = check_send(_send(address="tcp://[fd00::2]:80"), [b"q"], OWN, DIR, "fd00::2")
    assert six.address == "tcp://[fd00::2]:80"


@pytest.mark.parametrize("header, frames, error", [
    (_send(instance="other.0"), [b"x"], "no instance"),
    (_send(type="PUSH"), [b"x"], "cannot inject into a PUSH"),
    (_send(type="PAIR"), [b"x"], "cannot inject"),
    (_send(address="ipc:///etc/passwd"), [b"x"], "outside the agent's directory"),
    (_send(address=f"ipc://{DIR}/../../etc/x"), [b"x"], "outside the agent's directory"),
    (_send(address="tcp://10.9.9.9:80"), [b"x"], "not of this host"),
    (_send(address="tcp://10.0.0.2:80;rm"), [b"x"], "not of this host"),
    (_send(address="inproc://x"), [b"x"], "not of this host"),
    (_send(timeout=0), [b"x"], "timeout"), (_send(timeout=10**9), [b"x"], "timeout"),
    (_send(timeout=True), [b"x"], "timeout"), (_send(timeout="5"), [b"x"], "timeout"),
    (_send(secure="yes"), [b"x"], "secure"),
    (_send(socket=""), [b"x"], "short text"), (_send(socket="s" * 300), [b"x"], "short text"),
    (_send(instance=None), [b"x"], "short text"),
    (_send(), [], "nothing to send"),
    (b"[1]", [b"x"], "not an object"),
    (b"{" + b" " * MAX_HEADER + b"}", [b"x"], "too long"),
])
def test_a_send_that_is_not_for_this_host_or_malformed_is_refused(header: bytes, frames: list[bytes],
                                                                  error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_send(header, frames, OWN, DIR, "10.0.0.2")


def test_a_send_header_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError):
        check_send(b"{oops", [b"x"], OWN, DIR, "10.0.0.2")


def test_a_dropped_marker_is_no_missed_copy() -> None:
    assert copies_in([b"t", b"i", b"out", b"1", b"0", b"payload"]) == 1
    assert copies_in([b"t", b"i", b"in", b"1", b"0", b"a", b"b"]) == 1
    assert copies_in([b"t", b"i", b"on", b"1", b"0"]) == 0
    assert copies_in([b"t", b"i", b"missed", b"1", b"5"]) == 0
    assert copies_in([b"t"]) == 0


def test_a_relay_owes_what_a_dropped_message_said_the_last_per_tap_instance_and_kind() -> None:
    import zmq

    from topo.supervisor.remotetaps import Owed

    owed = Owed()
    owed.add([b"t", b"w.0", b"out", b"1", b"3", b"copy"])
    owed.add([b"t", b"w.0", b"out", b"2", b"7", b"copy"])     # a later total replaces it
    owed.add([b"t", b"w.1", b"on", b"2", b"0"])
    owed.add([b"t"])                                          # not of the format: nothing owed
    sent: list[list[bytes]] = []
    refuse = [True]

    def send(marker: list[bytes]) -> None:
        if refuse[0]:
            raise zmq.Again()
        sent.append(marker)

    with pytest.raises(zmq.Again):
        owed.flush(send)
    assert owed and sent == []                                # kept until it can go
    refuse[0] = False
    owed.flush(send)
    assert [(m[1], m[2], m[4]) for m in sent] == [(b"w.1", b"on", b"0"), (b"w.0", b"missed", b"7")]
    assert not owed
