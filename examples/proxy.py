"""XPUB/XSUB proxy: publishers and subscribers meet at a proxy and never know each other."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import zmq

POLL_MS = 100


def publisher(node: Any) -> None:
    """Publishes a tick every ``interval`` seconds until the topology stops.

    It keeps publishing because, behind a proxy, messages are only delivered once the
    proxy has forwarded the subscribers' subscriptions upstream; the sleep paces the
    stream, it does not wait for anyone.
    """
    pub = node.sockets["out"]
    interval: float = node.args.get("interval", 0.05)
    seq = 0
    while node.running:
        pub.send_multipart([b"tick.", f"{node.name} #{seq}".encode()])
        seq += 1
        time.sleep(interval)


def proxy(node: Any) -> None:
    """Forwards data XSUB -> XPUB and subscriptions XPUB -> XSUB until the topology stops.

    Forwarding subscriptions upstream is what makes publishers send at all: a PUB only
    sends topics someone has subscribed to, and here that someone is the XSUB.
    """
    frontend, backend = node.sockets["frontend"], node.sockets["backend"]
    poller = zmq.Poller()
    poller.register(frontend, zmq.POLLIN)
    poller.register(backend, zmq.POLLIN)
    while node.running:
        events = dict(poller.poll(POLL_MS))
        if frontend in events:
            backend.send_multipart(frontend.recv_multipart())
        if backend in events:
            frontend.send_multipart(backend.recv_multipart())


def subscriber(node: Any) -> None:
    """Receives ``count`` ticks, prints them and a per-publisher summary, then returns."""
    sub = node.sockets["in"]
    count: int = node.args.get("count", 10)
    seen: Counter[str] = Counter()
    while sum(seen.values()) < count and node.running:
        if not sub.poll(POLL_MS):
            continue
        _topic, body = sub.recv_multipart()
        text = body.decode()
        seen[text.split(" #")[0]] += 1
        print(f"{node.name}: {text}", flush=True)
    print(f"{node.name}: got {dict(sorted(seen.items()))}", flush=True)
