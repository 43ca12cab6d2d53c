"""Node functions of the data-path benchmark (``bench/datapath.py``).

The same two functions run wired by topo and wired by hand with pyzmq: a node gets an
object with ``sockets`` (a mapping of name to socket), as a topo node does, and nothing
else is used. Each node obeys commands (JSON) on its ``ctl`` PULL and answers on its
``report`` PUSH, so one launch serves every trial of a transport and the benchmark can
interleave topo's trials with the baseline's.

sender:   ``push`` PUSH, ``pub`` PUB, ``req`` REQ  (the measured sockets), ``ctl``, ``report``
receiver: ``pull`` PULL, ``sub`` SUB (subscribed to everything), ``rep`` REP, ``ctl``, ``report``

Throughput is measured in the receiver, from its first message to its last; latency in
the sender (the requesting node), per round trip. Every loop is bounded in count, and every
wait in time.
"""

from __future__ import annotations

import json
import time
from typing import Any

import zmq

#: Commands a node obeys before it returns anyway.
MAX_COMMANDS = 100_000
#: A node waiting this long for a command returns: its controller is gone.
IDLE_MS = 300_000
#: Receive and send timeout of the measured sockets (set as socket options on both sides).
DATA_TIMEOUT_MS = 20_000
#: How long a PUB/SUB synchronisation may take, and the pause between its probe messages.
SYNC_TIMEOUT_S = 20.0
SYNC_EVERY_MS = 2
#: Options of the measured sockets, the same in the topology file and the baseline.
OPTIONS: dict[str, dict[str, int]] = {
    "push": {"sndtimeo": DATA_TIMEOUT_MS},
    "pub": {"sndtimeo": DATA_TIMEOUT_MS},
    "req": {"sndtimeo": DATA_TIMEOUT_MS, "rcvtimeo": DATA_TIMEOUT_MS},
    "pull": {"rcvtimeo": DATA_TIMEOUT_MS},
    "sub": {"rcvtimeo": DATA_TIMEOUT_MS},
    "rep": {"sndtimeo": DATA_TIMEOUT_MS, "rcvtimeo": DATA_TIMEOUT_MS},
}


def _commands(node: Any) -> Any:
    """Yields each command until ``quit``, the command limit or a silent controller."""
    ctl = node.sockets["ctl"]
    for _ in range(MAX_COMMANDS):
        if not ctl.poll(IDLE_MS):
            return
        cmd = json.loads(ctl.recv())
        if cmd["op"] == "quit":
            return
        yield cmd


def _report(node: Any, **data: Any) -> None:
    node.sockets["report"].send(json.dumps(data).encode())


# -- sender --------------------------------------------------------------------------------

def sender(node: Any) -> None:
    # A PUB drops what its high-water mark cannot hold; with XPUB_NODROP it blocks instead,
    # as a PUSH does, so every message sent is counted at the receiver. Set here, by the
    # node, so both sides set it the same way (a topology may declare it since 1fca6f4).
    node.sockets["pub"].setsockopt(zmq.XPUB_NODROP, 1)
    for cmd in _commands(node):
        op = cmd["op"]
        if op == "send":
            _report(node, **_send(node, cmd))
        elif op == "ping":
            _report(node, **_ping(node, cmd))
        elif op == "sync":
            _report(node, **_sync(node))
        else:
            _report(node, error=f"unknown command {op!r}")


def _send(node: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    sock = node.sockets[cmd["socket"]]
    payload = b"x" * int(cmd["size"])
    n = int(cmd["n"])
    cpu = time.thread_time()
    process_cpu = time.process_time()  # every thread of its process: a tap's sender too
    started = time.perf_counter()
    try:
        for _ in range(n):
            sock.send(payload)
    except zmq.Again:
        return {"error": "send timed out"}
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu
    process_cpu = time.process_time() - process_cpu
    return {"op": "sent", "elapsed": elapsed, "cpu": cpu, "process_cpu": process_cpu}


def _ping(node: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    req = node.sockets["req"]
    payload = b"x" * int(cmd["size"])
    n = int(cmd["n"])
    samples = [0] * n
    clock = time.perf_counter_ns
    try:
        for i in range(n):
            t0 = clock()
            req.send(payload)
            req.recv()
            samples[i] = clock() - t0
    except zmq.Again:
        return {"error": "round trip timed out"}
    samples.sort()
    return {"op": "pinged", "n": n, "p50": samples[n // 2] / 1e9,
            "p99": samples[min(n - 1, (n * 99) // 100)] / 1e9, "mean": sum(samples) / n / 1e9}


def _sync(node: Any) -> dict[str, Any]:
    """Sends empty messages on ``pub`` until the controller says the receiver saw one.

    With topo the first one is received (the gate has seen the subscription); by hand, the
    subscription takes a moment to reach the publisher. The receiver drains the rest.
    """
    pub, ctl = node.sockets["pub"], node.sockets["ctl"]
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    sent = 0
    while time.monotonic() < deadline:
        pub.send(b"")
        sent += 1
        if ctl.poll(SYNC_EVERY_MS):
            json.loads(ctl.recv())  # "synced": the receiver has one
            return {"op": "synced", "sent": sent}
    return {"error": "no subscriber seen", "sent": sent}


# -- receiver ------------------------------------------------------------------------------

def receiver(node: Any) -> None:
    for cmd in _commands(node):
        op = cmd["op"]
        if op == "count":
            _report(node, op="armed")
            _report(node, **_count(node, cmd))
        elif op == "pong":
            _report(node, op="armed")
            _report(node, **_pong(node, cmd))
        elif op == "syncwait":
            _report(node, **_syncwait(node))
        elif op == "drain":
            _report(node, **_drain(node, cmd["socket"]))
        else:
            _report(node, error=f"unknown command {op!r}")


def _count(node: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    sock = node.sockets[cmd["socket"]]
    n = int(cmd["n"])
    got = 0
    try:
        size = len(sock.recv())
        got = 1
        cpu = time.thread_time()
        started = time.perf_counter()
        for _ in range(n - 1):
            sock.recv()
            got += 1
        elapsed = time.perf_counter() - started
        cpu = time.thread_time() - cpu
    except zmq.Again:
        return {"error": f"receive timed out after {got} of {n} message(s)"}
    return {"op": "counted", "n": n, "size": size, "elapsed": elapsed, "cpu": cpu}


def _pong(node: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    rep = node.sockets["rep"]
    n = int(cmd["n"])
    try:
        for _ in range(n):
            rep.send(rep.recv())
    except zmq.Again:
        return {"error": "request timed out"}
    return {"op": "ponged", "n": n}


def _syncwait(node: Any) -> dict[str, Any]:
    sub = node.sockets["sub"]
    if not sub.poll(int(SYNC_TIMEOUT_S * 1000)):
        return {"error": "nothing received"}
    sub.recv()
    return {"op": "synced"}


def _drain(node: Any, name: str) -> dict[str, Any]:
    """Discards what is queued, until 200 ms pass without a message."""
    sock = node.sockets[name]
    dropped = 0
    for _ in range(1_000_000):
        if not sock.poll(200):
            break
        sock.recv()
        dropped += 1
    return {"op": "drained", "dropped": dropped}


# -- nodes of the stop benchmark (bench/stop.py) --------------------------------------------

#: A blocked node's receive gives up after this long (the benchmark stops it well before).
BLOCKED_TIMEOUT_MS = 120_000


def blocked(node: Any) -> None:
    """Cooperative: blocks in ``recv`` until the stop interrupts it (ETERM)."""
    sock = node.sockets["in"]
    sock.setsockopt(zmq.RCVTIMEO, BLOCKED_TIMEOUT_MS)
    for _ in range(1000):
        if not node.running:
            return
        try:
            sock.recv()
        except zmq.Again:
            return


def stubborn(node: Any) -> None:
    """Ignores the stop: sleeps in a loop that never looks at ``node.running``
    (bounded all the same: two minutes)."""
    for _ in range(2400):
        time.sleep(0.05)
