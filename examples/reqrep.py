"""Request/reply: the smallest conversation zmq has, a REQ client and a REP server."""

from __future__ import annotations

from typing import Any

POLL_MS = 100  # how often a waiting loop looks at node.running


def client(node: Any) -> None:
    """Sends ``count`` requests one at a time; REQ allows a new one only after the reply."""
    req = node.sockets["req"]
    for i in range(node.args.get("count", 5)):
        req.send_multipart([f"hello {i}".encode()])
        (reply,) = req.recv_multipart()
        print(f"{node.name}: request {i} -> {reply.decode()}", flush=True)


def server(node: Any) -> None:
    """Replies to every request until the topology stops.

    It polls instead of blocking in ``recv`` so that it notices ``node.running`` turning
    false between requests.
    """
    rep = node.sockets["rep"]
    while node.running:
        if not rep.poll(POLL_MS):
            continue
        (request,) = rep.recv_multipart()
        rep.send_multipart([b"world (re: " + request + b")"])
