"""Nodes of the ``topo up --record`` tests: a flood of small messages and its counter."""

from __future__ import annotations

from typing import Any


def flood(node: Any) -> None:
    """``args.count`` small messages as fast as the socket takes them, then ``end``."""
    out = node.sockets["out"]
    for i in range(node.args.get("count", 1000)):
        out.send(b"%d" % i)
    out.send(b"end")


def count(node: Any) -> None:
    """Counts messages until ``end``; says how many."""
    inp = node.sockets["in"]
    got = 0
    while inp.recv() != b"end":
        got += 1
    print(f"counted {got}", flush=True)


def forever(node: Any) -> None:
    """Sends numbers until stopped, as fast as it may (what a recorder that stalls makes wait)."""
    out = node.sockets["out"]
    i = 0
    while node.running:
        out.send(b"%d" % i)
        i += 1


def drain(node: Any) -> None:
    inp = node.sockets["in"]
    while node.running:
        if inp.poll(100):
            inp.recv()


def flaky(node: Any) -> None:
    """Five messages naming its start, then a failure the first time, ``end`` the next."""
    out = node.sockets["out"]
    for i in range(5):
        out.send(b"start%d-%d" % (node.restarts, i))
    if node.restarts == 0:
        raise RuntimeError("first start fails")
    out.send(b"end")
