"""Node functions the integration tests launch (importable through PYTHONPATH)."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
from typing import Any

import zmq


def publish_once(node: Any) -> None:
    """Sends exactly one message and returns: the first message must reach everyone."""
    node.sockets["out"].send_multipart([b"t", node.name.encode()])


def receive_one(node: Any) -> None:
    msg = node.sockets["in"].recv_multipart()
    print("got", msg[1].decode(), flush=True)


def slow_import_receive_one(node: Any) -> None:
    receive_one(node)


def vent(node: Any) -> None:
    out = node.sockets["out"]
    for i in range(node.args.get("tasks", 40)):
        out.send_string(str(i))


def work(node: Any) -> None:
    inp, out = node.sockets["in"], node.sockets["out"]
    while node.running:
        if inp.poll(100):
            inp.recv_string()
            out.send_string(node.name)


def collect(node: Any) -> None:
    inp = node.sockets["in"]
    counts: dict[str, int] = {}
    for _ in range(node.args.get("tasks", 40)):
        name = inp.recv_string()
        counts[name] = counts.get(name, 0) + 1
    print("counts", " ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)


def talk(node: Any) -> None:
    for i in range(3):
        print(f"{node.name} line {i}", flush=True)
        sys.stderr.write(f"{node.name} err {i}\n")
        node.log.info("%s log %d", node.name, i)


def boom(node: Any) -> None:
    raise RuntimeError("boom from " + node.name)


def block_forever(node: Any) -> None:
    """Blocks in recv: the stop must interrupt it."""
    print("blocking", flush=True)
    node.sockets["in"].recv()


def serve(node: Any) -> None:
    rep = node.sockets["rep"]
    while node.running:
        if rep.poll(100):
            rep.send(rep.recv())


def ignore_stop(node: Any) -> None:
    print("ignoring", flush=True)
    while True:  # never looks at node.running, never touches a socket
        time.sleep(0.05)


def print_pid_and_block(node: Any) -> None:
    print("pid", os.getpid(), flush=True)
    node.sockets["in"].recv()


def die_hard(node: Any) -> None:
    os._exit(3)


async def async_receive_one(node: Any) -> None:
    msg = await node.sockets["in"].recv_multipart()
    print("async got", msg[1].decode(), flush=True)


async def async_block(node: Any) -> None:
    print("async blocking", flush=True)
    await node.sockets["in"].recv()


def missing_module(node: Any) -> None:
    importlib.import_module("no_such_module_for_topo_tests")


ZMQ_VERSION = zmq.zmq_version()
