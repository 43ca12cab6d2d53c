"""Node functions of the tests of endpoints outside the topology (``external:``)."""

from __future__ import annotations

from typing import Any


def answer(node: Any) -> None:
    """Answers ``count`` requests on ``api`` (each with ``re:`` before it), then returns."""
    api = node.sockets["api"]
    for _ in range(node.args.get("count", 1)):
        request = api.recv()
        api.send(b"re:" + request)
        print("answered", request.decode(), flush=True)


def ask(node: Any) -> None:
    """One request on ``ask``, its answer printed."""
    node.sockets["ask"].send(b"inside")
    print("got", node.sockets["ask"].recv().decode(), flush=True)


def send_n(node: Any) -> None:
    """Sends ``n`` numbered messages on ``out`` (a PUSH, or a DEALER) and returns at once."""
    out = node.sockets["out"]
    for i in range(node.args.get("n", 1)):
        out.send_string(f"{node.name} {i}")
    print("sent", node.args.get("n", 1), flush=True)
