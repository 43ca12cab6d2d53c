"""Nodes of the tap tests: senders of a known sequence (paced, forever or ``count`` times),
receivers that print what they got, a REQ/REP pair, and a sender that reports whether its
socket is tapped (its class swapped), so a test sees a tap end without asking topo."""

from __future__ import annotations

import os
import time
from typing import Any

import zmq

from topo.process import tap


def ticker(node: Any) -> None:
    """Sends ``[topic, "tick N"]`` (or a binary frame with ``binary``) every ``interval``
    seconds, ``count`` times (forever without), then returns. ``topics``: taken in turn.
    ``pid_topic``: the topic is its process's pid. ``wait_tapped``: starts only once its socket is tapped (the test then sees every one).
    ``stay``: does not return once done, but waits to be stopped."""
    out = node.sockets["out"]
    count, interval = node.args.get("count"), float(node.args.get("interval", 0.01))
    topics = [t.encode() for t in node.args.get("topics", [node.args.get("topic", "")])]
    if node.args.get("pid_topic"):  # which process sent it: a restarted node's is another
        topics = [b"pid %d" % os.getpid()]
    if node.args.get("wait_tapped"):
        deadline = time.monotonic() + 30
        while not tap.tapped(out) and time.monotonic() < deadline:
            time.sleep(0.005)  # polling a fact that has no event, with a deadline
    i = 0
    was_tapped = False
    while node.running and (count is None or i < count):
        body = b"\x00\x1b[31m\xff" + bytes([i % 256]) if node.args.get("binary") else b"tick %d" % i
        topic = topics[i % len(topics)]
        out.send_multipart([topic, body] if topic else [body])
        i += 1
        now_tapped = tap.tapped(out)
        if node.args.get("say_tapped") and now_tapped != was_tapped:
            print("tapped" if now_tapped else "untapped", flush=True)
        was_tapped = now_tapped
        if interval:
            time.sleep(interval)  # the node's own pace (what `topo hz` measures)
    print(f"{node.name} sent {i}", flush=True)
    while node.args.get("stay") and node.running:
        time.sleep(0.05)  # idle until stopped: its process (and the tap's sender) stays


def printer(node: Any) -> None:
    """Prints each message it receives, until stopped."""
    sock = node.sockets["in"]
    while node.running:
        if sock.poll(100):
            print(f"{node.name} got " + " ".join(f.decode(errors="replace") for f in sock.recv_multipart()),
                  flush=True)


def asker(node: Any) -> None:
    """REQ: asks ``q N``, waits for the answer, every ``interval`` seconds, until stopped."""
    sock = node.sockets["out"]
    i = 0
    while node.running:
        sock.send(b"q %d" % i)
        sock.recv()
        i += 1
        time.sleep(float(node.args.get("interval", 0.02)))  # the node's own pace


def answerer(node: Any) -> None:
    """REP: answers ``a N`` to ``q N``."""
    sock = node.sockets["in"]
    while node.running:
        if sock.poll(100):
            sock.send(b"a" + sock.recv()[1:])


async def async_printer(node: Any) -> None:
    """The async twin of :func:`printer` (its socket an asyncio one)."""
    sock = node.sockets["in"]
    while True:
        frames = await sock.recv_multipart()
        print(f"{node.name} got " + " ".join(f.decode(errors="replace") for f in frames), flush=True)


async def async_ticker(node: Any) -> None:
    """An async PUB: ``tick N`` every 10 ms until stopped (topo drains its subscriptions)."""
    import asyncio

    out = node.sockets["out"]
    i = 0
    while True:
        await out.send(b"tick %d" % i)
        i += 1
        await asyncio.sleep(0.01)  # the node's own pace


def counting_sink(node: Any) -> None:
    """PULL: receives ``count`` messages, then prints how many and returns."""
    sock = node.sockets["in"]
    for _ in range(node.args["count"]):
        sock.recv_multipart()
    print(f"{node.name} received {node.args['count']}", flush=True)


_ = zmq  # (the nodes' sockets are pyzmq's)
