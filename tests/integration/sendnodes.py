"""Nodes of the ``topo send`` tests: a receiver that prints what it gets, a REP that
answers, a ROUTER that answers the identity it got a message from (or, ``silent``, never
does), and the peers that keep them linked: a REQ that reads whole answers, an idle one."""

from __future__ import annotations

from typing import Any


def _shown(frames: list[bytes]) -> str:
    return " | ".join(f.decode(errors="replace") if len(f) < 200 else f"<{len(f)} bytes>" for f in frames)


def printer(node: Any) -> None:
    """Prints each message its ``in`` socket receives, frames joined by `` | ``."""
    sock = node.sockets["in"]
    while node.running:
        if sock.poll(100):
            print(f"{node.name} got {_shown(sock.recv_multipart())}", flush=True)


def answerer(node: Any) -> None:
    """REP: answers ``re: FRAMES`` and the number of frames; ``silent``: only prints."""
    sock = node.sockets["in"]
    while node.running:
        if sock.poll(100):
            frames = sock.recv_multipart()
            if node.args.get("silent"):
                print(f"{node.name} got {_shown(frames)} and keeps quiet", flush=True)
                continue
            sock.send_multipart([b"re: " + _shown(frames).encode(), b"%d" % len(frames)])


def router(node: Any) -> None:
    """ROUTER: answers ``ok N`` (N the frames after the identity) unless ``silent``."""
    sock = node.sockets["in"]
    while node.running:
        if sock.poll(100):
            identity, *frames = sock.recv_multipart()
            print(f"{node.name} got {_shown(frames)} from a peer of {len(identity)}-byte identity", flush=True)
            if not node.args.get("silent"):
                sock.send_multipart([identity, b"ok %d" % len(frames)])


def asker(node: Any) -> None:
    """REQ: asks ``q N`` every ``interval`` seconds and reads each whole answer."""
    sock = node.sockets["out"]
    i = 0
    while node.running:
        sock.send(b"q %d" % i)
        while node.running and not sock.poll(100):
            pass
        if node.running:
            sock.recv_multipart()
        i += 1
        node.sleep(float(node.args.get("interval", 1.0)))


def idle(node: Any) -> None:
    """Holds its socket linked and sends nothing, until stopped."""
    while node.running:
        node.sockets["out"].poll(100)


def quits(node: Any) -> None:
    """Says so and returns at once: a node that is no longer running."""
    print(f"{node.name} returns", flush=True)
