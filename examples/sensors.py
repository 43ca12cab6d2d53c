"""A system to look at with ``topo echo``, ``topo hz`` and ``topo sockets``: a sensor
publishing readings at a steady rate, a display subscribed to them, and jobs dealt to a
pool of workers. The sensor stops after ``count`` readings (0: never), and the run with it
(``on_exit: stop``)."""

from __future__ import annotations

import json
import time
from typing import Any

POLL_MS = 100


def sensor(node: Any) -> None:
    """Publishes ``[b"temp.<room>", JSON reading]`` every ``1 / rate`` seconds, rooms in
    turn, ``count`` times (0: until stopped)."""
    pub = node.sockets["readings"]
    rooms: list[str] = node.args.get("rooms", ["kitchen", "hall"])
    period = 1.0 / float(node.args.get("rate", 10))
    count: int = node.args.get("count", 0)
    n = 0
    next_at = time.monotonic()
    while node.running and (not count or n < count):
        room = rooms[n % len(rooms)]
        reading = {"room": room, "n": n, "celsius": round(20 + (n % 7) * 0.5, 1)}
        pub.send_multipart([f"temp.{room}".encode(), json.dumps(reading).encode()])
        n += 1
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))  # the sensor's own pace


def display(node: Any) -> None:
    """Receives readings; prints one line every ``every`` readings."""
    sub = node.sockets["readings"]
    every: int = node.args.get("every", 50)
    seen = 0
    while node.running:
        if sub.poll(POLL_MS):
            sub.recv_multipart()
            seen += 1
            if seen % every == 0:
                print(f"{seen} readings so far", flush=True)


def dispatcher(node: Any) -> None:
    """Deals a job (a number, and a binary checksum frame) every ``1 / rate`` seconds."""
    push = node.sockets["jobs"]
    period = 1.0 / float(node.args.get("rate", 5))
    n = 0
    while node.running:
        push.send_multipart([b"job %d" % n, (n * 2654435761 % 2**32).to_bytes(4, "big")])
        n += 1
        time.sleep(period)  # the dispatcher's own pace


def worker(node: Any) -> None:
    """Takes jobs until stopped."""
    pull = node.sockets["jobs"]
    while node.running:
        if pull.poll(POLL_MS):
            pull.recv_multipart()
