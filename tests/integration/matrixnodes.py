"""Node functions of the placement matrix (test_matrix.py): one exchange per link.

A hub serves ``args.peers`` linked peers and prints what each said; every other node makes
one exchange and returns. Every receive has a deadline: a message that never comes fails
the node with what it waited for, instead of holding the run until the test's timeout.
"""

from __future__ import annotations

from typing import Any

import zmq

#: How long one receive may wait (ms): well under the test's own timeout.
WAIT_MS = 15_000


def _recv(sock: zmq.Socket[Any], node: Any, what: str) -> list[bytes]:
    if not sock.poll(WAIT_MS):
        raise TimeoutError(f"{node.name}: no {what} within {WAIT_MS / 1000:g}s")
    return sock.recv_multipart()


def _done(node: Any, heard: list[str]) -> None:
    expected = node.args["peers"]
    if len(set(heard)) != expected:
        raise AssertionError(f"{node.name}: heard {sorted(heard)}, expected {expected} distinct peers")
    print("heard", " ".join(sorted(heard)), flush=True)


def hub_pull(node: Any) -> None:
    """PULL: one message from each linked PUSH."""
    inp = node.sockets["s"]
    _done(node, [_recv(inp, node, "message")[0].decode() for _ in range(node.args["peers"])])


def push_one(node: Any) -> None:
    node.sockets["s"].send_string(node.name)


def hub_pub(node: Any) -> None:
    """PUB: one message; the gate held it until every SUB had subscribed."""
    node.sockets["s"].send_multipart([b"m", node.name.encode()])


def sub_one(node: Any) -> None:
    topic, sender = _recv(node.sockets["s"], node, "publication")
    print("got", topic.decode(), "from", sender.decode(), flush=True)


def hub_rep(node: Any) -> None:
    """REP: answers one request of each linked REQ."""
    rep, heard = node.sockets["s"], []
    for _ in range(node.args["peers"]):
        (name,) = _recv(rep, node, "request")
        heard.append(name.decode())
        rep.send(b"re " + name)
    _done(node, heard)


def hub_router(node: Any) -> None:
    """ROUTER: answers one message of each linked DEALER, by its routing id."""
    router, heard = node.sockets["s"], []
    for _ in range(node.args["peers"]):
        ident, name = _recv(router, node, "message")
        heard.append(name.decode())
        router.send_multipart([ident, b"re " + name])
    _done(node, heard)


def ask_one(node: Any) -> None:
    """REQ or DEALER: one request, one answer naming it."""
    sock = node.sockets["s"]
    sock.send_string(node.name)
    (answer,) = _recv(sock, node, "answer")
    if answer.decode() != f"re {node.name}":
        raise AssertionError(f"{node.name}: answer {answer!r}")
    print("answered", flush=True)


def pair_ping(node: Any) -> None:
    sock = node.sockets["s"]
    sock.send_string(f"ping {node.name}")
    (answer,) = _recv(sock, node, "pong")
    print(answer.decode(), flush=True)


def pair_pong(node: Any) -> None:
    sock = node.sockets["s"]
    (ping,) = _recv(sock, node, "ping")
    sock.send_string(f"pong to {ping.decode().split()[1]}")
