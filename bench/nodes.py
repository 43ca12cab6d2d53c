"""Node functions of the launch benchmark (``bench/launch.py``), and its floor's child.

Every function here is cheap to import: the module is loaded by each benchmark process,
so anything it imported at the top would be measured as part of the launch.
"""

from __future__ import annotations

import os
from typing import Any

#: What the pub/sub pair exchanges: the cheat sheet's message, on the cheat sheet's topic.
TOPIC = b"topic"
MESSAGE = [TOPIC, b"hello"]
#: Printed by every subscriber, so the benchmark counts deliveries from the output.
RECEIVED = "bench: received"
LOST = "bench: lost"


def publisher(node: Any) -> None:
    """Sends one message, no sleep before it (topo's gate is the synchronisation), returns."""
    node.sockets["out"].send_multipart(MESSAGE)


def subscriber(node: Any) -> None:
    """Waits for one message up to ``args.timeout`` seconds; a miss is reported, not hung."""
    sub = node.sockets["in"]
    timeout_ms = int(float(node.args.get("timeout", 2.0)) * 1000)
    if sub.poll(timeout_ms):
        sub.recv_multipart()
        print(RECEIVED, flush=True)
    else:
        print(LOST, flush=True)


def idle(node: Any) -> None:
    """Returns as soon as it is called: the run measures the launch, not the work."""


def floor_child(conn: Any) -> None:
    """The floor of the launch benchmark: a spawned process that imports zmq and reports."""
    import zmq  # noqa: F401  - the one import every topo process needs as well

    conn.send(os.getpid())
    conn.close()


def hold(node: Any) -> None:
    """Runs until the stop: a run that stays up while it is edited (bench/apply.py)."""
    while node.sleep(1.0):
        pass
