"""Node functions for the warning tests (``run: "warnnodes:..."``)."""

from __future__ import annotations

from typing import Any


def lonely(node: Any) -> None:
    """Every declared socket is there, the linkless ones too; a linkless PUB drops what it
    is sent (it never blocks), so the node returns."""
    node.sockets["spare"].send(b"dropped")
    node.sockets["out"].send(b"hello")
    print("sockets:", " ".join(sorted(node.sockets)))


def receive(node: Any) -> None:
    print("got", node.sockets["in"].recv().decode())
