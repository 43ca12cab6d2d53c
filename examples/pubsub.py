"""Publish/subscribe with topic filters: each subscriber sees only the topics it asked for."""

from __future__ import annotations

from typing import Any

POLL_MS = 100


def publisher(node: Any) -> None:
    """Publishes ``per_topic`` messages on every topic, interleaved, then returns.

    No sleep before the first message: topo calls this function only once every linked
    SUB is connected and its subscriptions have reached this PUB, so nothing is lost.
    """
    pub = node.sockets["out"]
    topics: list[str] = node.args.get("topics", ["weather.", "sports."])
    per_topic: int = node.args.get("per_topic", 5)
    for i in range(per_topic):
        for topic in topics:
            pub.send_multipart([topic.encode(), f"update #{i}".encode()])
    node.log.info("published %d messages on %d topics", per_topic, len(topics))


def subscriber(node: Any) -> None:
    """Receives exactly ``count`` messages on its subscribed topics, prints them, returns."""
    sub = node.sockets["in"]
    count: int = node.args.get("count", 5)
    received = 0
    while received < count and node.running:
        if not sub.poll(POLL_MS):
            continue
        topic, body = sub.recv_multipart()
        received += 1
        print(f"{node.name}: [{topic.decode()}] {body.decode()}", flush=True)
