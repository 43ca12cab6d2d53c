"""Every message off a socket is checked before anything reads it."""

from __future__ import annotations

import json

import pytest

from topo.process.control import Kind, Message


def frames(kind: str, data: object) -> list[bytes]:
    return [kind.encode(), json.dumps(data).encode()]


@pytest.mark.parametrize("message", [
    Message(Kind.HELLO, {"process": "p", "pid": 12, "gen": 0}),
    Message(Kind.HELLO, {"process": "probe", "gen": 0}),
    Message(Kind.BOUND, {"instances": ["a", "b"], "endpoints": {"a.out": "ipc:///x/1"}, "gen": 1}),
    Message(Kind.IMPORTING, {"instances": ["a"]}),
    Message(Kind.READY, {"instances": ["a"]}),
    Message(Kind.READY, {"instance": "a"}),
    Message(Kind.NOT_READY, {"instance": "a", "waiting": ["a: socket 'in' ..."]}),
    Message(Kind.OUTPUT, {"instance": "a", "line": "hello", "err": False}),
    Message(Kind.EXITED, {"instance": "a"}),
    Message(Kind.STOPPED, {"instance": "a", "started": True}),
    Message(Kind.FAILED, {"instance": "a", "error": "ValueError: x", "traceback": None, "started": False}),
    Message(Kind.BYE, {"process": "p", "clean": True, "stuck": []}),
    Message(Kind.CONNECT, {"endpoints": {"k": "tcp://1.2.3.4:5"}}),
    Message(Kind.STOP, {"reason": "Ctrl-C"}),
    Message(Kind.AGENT, {"host": "edge", "pid": 3, "version": "0.1.0"}),
    Message(Kind.SPAWNED, {"process": "p", "gen": 0, "pid": 9}),
    Message(Kind.ENDED, {"process": "p", "gen": 0, "exitcode": None}),
    Message(Kind.BEAT, {"stats": {}}),
    Message(Kind.SIGNAL, {"process": "p", "signal": 15}),
    Message(Kind.PING),
    Message(Kind.EXEC_NOTICE, {"process": "p", "instance": "a", "gen": 2, "notice": {"ready": True}}),
    Message(Kind.EXEC_GO, {"process": "p", "instance": "a", "gen": 2, "go": False}),
])
def test_what_topo_sends_is_read_back(message: Message) -> None:
    assert Message.decode(message.encode()) == message


@pytest.mark.parametrize("bad", [
    frames("output", {"instance": "a", "line": "x"}),                # a field missing
    frames("output", {"instance": 1, "line": "x", "err": False}),    # a wrong type
    frames("bound", {"endpoints": {"k": 1}, "instances": ["a"]}),    # endpoints not text
    frames("bound", {"endpoints": {}}),                              # about no node
    frames("ready", {"instances": [1]}),
    frames("hello", {"process": "p", "gen": "0"}),
    frames("hello", {"process": "p", "pid": True}),                  # a bool is not a pid
    frames("not_ready", {"instance": "a", "waiting": [{"x": 1}]}),
    frames("bye", {"process": "p", "stuck": [None]}),
    frames("exec_notice", {"process": "p", "instance": "a", "gen": 0, "notice": "READY=1"}),
    frames("exec_go", {"process": "p", "instance": "a", "gen": 0, "go": 1}),
    frames("exec_go", {"process": "p", "instance": "a", "go": True}),          # of no generation
    frames("nonsense", {}),
    frames("exited", []),
    [b"exited", b"{"],
    [b"exited", b"\xff"],
    [b"\xff", b"{}"],
    [b"exited", b"[" * 100_000],                                     # RecursionError before
    [b"exited"],
])
def test_anything_else_is_a_value_error(bad: list[bytes]) -> None:
    with pytest.raises(ValueError):
        Message.decode(bad)


@pytest.mark.parametrize("conns", [
    "10.0.0.1", [["10.0.0.1", 1, "10.0.0.2"]], [["10.0.0.1", 0, "10.0.0.2", 2]], [["10.0.0.1", 1, "10.0.0.2", 65536]],
    [[1, 1, "10.0.0.2", 2]], [["10.0.0.1", True, "10.0.0.2", 2]], [["10.0.0.1", 1.0, "10.0.0.2", 2]],
    [["a", 1, "b", 2]] * 4097,
], ids=["text", "three", "port0", "port-high", "address-number", "port-bool", "port-float", "too-many"])
def test_a_linked_report_naming_connections_of_another_shape_is_refused(conns: object) -> None:
    """A receiver's ``conns`` reach the go's writer on the program's host (its kernel is
    asked about each): anything but [address, port, address, port] is refused whole."""
    data = {"instance": "s.0", "socket": "in", "count": 1, "conns": conns}
    with pytest.raises(ValueError, match="conns"):
        Message.decode([Kind.EXEC_LINKED.value.encode(), json.dumps(data).encode()])
    good = {**data, "conns": [["10.0.0.1", 40000, "::1", 5000]]}
    assert Message.decode([Kind.EXEC_LINKED.value.encode(), json.dumps(good).encode()]).data == good
