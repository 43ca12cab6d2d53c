"""Nodes of the delivery tests: senders that send a burst and return at once, receivers
that count what arrives. Every receiver ends by itself: when it has all, or after
``args.silence`` seconds without a message (then it says how many it got, and the test
fails on the count)."""

from __future__ import annotations

import time
from typing import Any

import zmq


def _report(node: Any, got: int) -> None:
    print(f"{node.name} received {got} of {node.args['count']}", flush=True)


def blast(node: Any) -> None:
    """PUSH, PUB, XPUB, DEALER, PAIR: ``count`` messages (``pad`` bytes longer than their
    number), then return."""
    out = node.sockets["out"]
    if node.args.get("xpub"):
        out.recv()  # its subscriber's subscription, which an XPUB node sees itself
    flags = zmq.NOBLOCK if node.args.get("until_alone") else 0
    pad = b"x" * node.args.get("pad", 0)
    for i in range(node.args["count"]):
        try:
            out.send(b"%d" % i + pad, flags)
        except zmq.Again:
            return  # ``until_alone``: no peer left to queue for (a PUSH would block)


def blast_replies(node: Any) -> None:
    """ROUTER: waits for one hello per peer, answers each with ``count`` messages, returns."""
    out = node.sockets["out"]
    peer, _ = out.recv_multipart()
    for i in range(node.args["count"]):
        out.send_multipart([peer, b"%d" % i])


def reply_once(node: Any) -> None:
    """REP: one request, one (large) reply, then return at once."""
    out = node.sockets["out"]
    out.recv()
    out.send(b"x" * node.args["size"])


def count(node: Any) -> None:
    """PULL, SUB, ROUTER, PAIR, DEALER: counts ``count`` messages; ``lag`` seconds of work
    after every 10,000 keep it behind its sender."""
    inp = node.sockets["in"]
    got = 0
    wanted = node.args["count"]
    silence = int(node.args.get("silence", 5) * 1000)
    lag = node.args.get("lag", 0)
    while got < wanted and inp.poll(silence):
        inp.recv_multipart()
        got += 1
        if lag and got % 10_000 == 0:
            time.sleep(lag)  # a slow consumer's work, not a wait for anything
    _report(node, got)


def hello_then_count(node: Any) -> None:
    """DEALER facing a ROUTER that answers: says hello, counts the answers."""
    inp = node.sockets["in"]
    inp.send(b"hello")
    count(node)


def request_once(node: Any) -> None:
    """REQ: one request, then its reply (``count`` is 1)."""
    inp = node.sockets["in"]
    inp.send(b"?")
    got = 1 if inp.poll(int(node.args.get("silence", 5) * 1000)) and len(inp.recv()) == node.args["size"] else 0
    _report(node, got)


def take_one(node: Any) -> None:
    """Receives one message and returns: the sender still has plenty queued for it."""
    node.sockets["in"].recv()
    print(f"{node.name} took one", flush=True)


def wait_for_stop(node: Any) -> None:
    """Keeps the run going until the test stops it: blocks on a socket nobody sends to
    (``args.wait_on``), which the stop interrupts; any other socket it has is never read."""
    node.sockets[node.args.get("wait_on", "in")].recv()
