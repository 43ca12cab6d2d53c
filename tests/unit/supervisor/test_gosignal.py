"""The go pipe of exec senders: given once every receiver has the program's connection."""

from __future__ import annotations

import os

import pytest

from topo.supervisor.goheld import GoWriter
from topo.supervisor.gosignal import GoSignals, Receiver, receivers_of


def _readable(fd: int) -> bytes | None:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 16)
    except BlockingIOError:
        return None


@pytest.fixture
def state():
    ready: set[str] = set()
    ended: set[str] = set()
    return ready, ended


def test_receivers_are_linked_or_ready_by_who_waits_for_whom():
    links = [("pub.out", "s.0.in"), ("pub.out", "s.1.in"), ("pub.out", "cpp.in"), ("pub.out", "late.in"),
             ("other.out", "pub.ctl")]
    got = receivers_of(links, {"pub", "cpp"}, {"pub": frozenset({"s.0", "s.1", "cpp"})})
    assert got["pub"] == [Receiver("s.0", "in", True), Receiver("s.1", "in", True),
                          Receiver("cpp", "in", False), Receiver("late", "in", False)]
    assert got["cpp"] == []


def test_the_go_comes_when_every_receiver_has_linked(state):
    ready, ended = state
    go = GoSignals({"pub": [Receiver("a", "in", True), Receiver("b", "in", True)]}, ready.__contains__, ended.__contains__, GoWriter(print))
    r = go.open("pub")
    assert go.look() == [] and _readable(r) is None
    assert go.linked("a", "in", 1) == [] and _readable(r) is None
    assert [x.instance for x in go.missing("pub")] == ["b"]
    assert go.linked("b", "in", 1) == ["pub"]
    assert _readable(r) == b"1"
    go.close_all()
    assert os.read(r, 1) == b""  # EOF: the run stops
    os.close(r)


def test_a_sender_without_receivers_gets_its_go_at_once(state):
    ready, ended = state
    go = GoSignals({"lonely": []}, ready.__contains__, ended.__contains__, GoWriter(print))
    r = go.open("lonely")
    assert go.look() == ["lonely"] and _readable(r) == b"1"
    go.close_all()
    os.close(r)


def test_an_exec_receiver_counts_once_ready_and_an_ended_one_not_at_all(state):
    ready, ended = state
    go = GoSignals({"x": [Receiver("y", "in", False), Receiver("z", "in", True)]}, ready.__contains__, ended.__contains__, GoWriter(print))
    r = go.open("x")
    assert go.look() == []
    ended.add("z")
    assert go.look() == []
    ready.add("y")
    assert go.look() == ["x"] and _readable(r) == b"1"
    go.close_all()
    os.close(r)


def test_handshakes_are_credited_oldest_sender_first(state):
    ready, ended = state
    both = [Receiver("s", "in", True)]
    go = GoSignals({"p.0": both, "p.1": both}, ready.__contains__, ended.__contains__, GoWriter(print))
    r0, r1 = go.open("p.0"), go.open("p.1")
    assert go.linked("s", "in", 1) == ["p.0"]
    assert go.linked("s", "other", 1) == []  # another socket: nobody's
    assert go.linked("s", "in", 3) == ["p.1"]  # more than wanted: the rest is nobody's
    assert _readable(r0) == b"1" and _readable(r1) == b"1"
    go.close_all()
    os.close(r0)
    os.close(r1)


def test_a_restart_gets_a_fresh_pipe_and_the_old_one_sees_eof(state):
    ready, ended = state
    go = GoSignals({"x": [Receiver("s", "in", True)]}, ready.__contains__, ended.__contains__, GoWriter(print))
    old = go.open("x")
    new = go.open("x")
    assert os.read(old, 1) == b"" and _readable(new) is None
    assert go.linked("s", "in", 1) == ["x"] and _readable(new) == b"1"
    go.close_all()
    os.close(old)
    os.close(new)


def test_the_read_end_is_inherited_and_the_write_end_not(state):
    ready, ended = state
    go = GoSignals({"x": []}, ready.__contains__, ended.__contains__, GoWriter(print))
    r = go.open("x")
    assert os.get_inheritable(r) and not os.get_inheritable(go._waiting["x"].write)
    go.close_all()
    os.close(r)


def test_a_program_on_another_host_is_given_its_go_and_its_end_through_its_agent(state):
    ready, ended = state
    go = GoSignals({"pub": [Receiver("a", "in", False)]}, ready.__contains__, ended.__contains__, GoWriter(print))
    sent: list[bool] = []
    go.open_remote("pub", lambda given, conns: sent.append(given))
    assert go.look() == [] and sent == []
    ready.add("a")
    assert go.look() == ["pub"] and sent == [True]
    assert go.look() == [] and sent == [True]  # given once
    go.close_all()
    assert sent == [True, False]  # the stop: its agent ends the pipe (end of file)


def test_the_tcp_connections_receivers_report_go_with_the_go_of_each_sender_credited(state):
    """The agent of a program on another host gets the connections its receivers reported,
    to hold the byte until the program read them (topo.supervisor.goheld); a report's
    connections go to every sender it credits (they are anonymous), each once."""
    ready, ended = state
    both = [Receiver("a", "in", True), Receiver("b", "in", True)]
    go = GoSignals({"p.0": both, "p.1": both}, ready.__contains__, ended.__contains__, GoWriter(print))
    sent: dict[str, list[object]] = {}
    for name in ("p.0", "p.1"):
        go.open_remote(name, lambda given, conns, name=name: sent.setdefault(name, []).append((given, conns)))
    c1, c2, c3 = ["10.0.0.2", 40001, "10.0.0.3", 5000], ["10.0.0.2", 40002, "10.0.0.3", 5000], ["10.0.0.2", 40003, "10.0.0.4", 5001]
    assert go.linked("a", "in", 2, [c1, c2]) == []
    assert go.linked("a", "in", 1, [c1]) == []  # (a report again names a connection credited before)
    assert go.linked("b", "in", 1, [c3]) == ["p.0"]
    assert sent == {"p.0": [(True, [c1, c2, c3])]}
    assert go.linked("b", "in", 1) == ["p.1"]
    assert sent["p.1"] == [(True, [c1, c2])]
