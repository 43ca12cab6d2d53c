"""Node functions the integration tests launch (importable through PYTHONPATH)."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
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


def talk_then_send(node: Any) -> None:
    """Talks, sends, and says its last words when the run stops it."""
    talk(node)
    node.sockets["out"].send_string("talked")
    while node.running:
        time.sleep(0.05)  # waiting to be stopped
    print(f"{node.name} last words", flush=True)


def boom_on_receive(node: Any) -> None:
    node.sockets["in"].recv_string()
    raise RuntimeError("boom from " + node.name)


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


def fail_twice(node: Any) -> None:
    """Fails on its first two runs, then succeeds."""
    print(f"run {node.restarts}", flush=True)
    if node.restarts < 2:
        raise RuntimeError(f"failure {node.restarts + 1}")


def always_fails(node: Any) -> None:
    raise ValueError("still broken")


def tick(node: Any) -> None:
    """Sends which incarnation it is, then returns: under `restart: always` it comes back."""
    node.sockets["out"].send_string(str(node.restarts))


def count_ticks(node: Any) -> None:
    inp = node.sockets["in"]
    seen = [inp.recv_string() for _ in range(node.args.get("ticks", 3))]
    print("ticks", " ".join(seen), flush=True)


def segfault_once(node: Any) -> None:
    """Crashes its whole process on the first run; a restart then works."""
    if node.restarts == 0:
        # to this very thread, so nothing after it runs (os.kill may hit another thread
        # while this one goes on for a moment)
        signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)
    node.sockets["out"].send_string(f"survived {node.restarts}")


def relay_forever(node: Any) -> None:
    """PULL in, PUSH out, until stopped; says its pid so a test can kill its process."""
    print("pid", os.getpid(), flush=True)
    inp, out = node.sockets["in"], node.sockets["out"]
    while node.running:
        if inp.poll(100):
            out.send_string(f"{inp.recv_string()} via {os.getpid()}")


def send_numbers(node: Any) -> None:
    out = node.sockets["out"]
    i = 0
    while node.running:
        out.send_string(str(i))
        i += 1
        time.sleep(0.05)  # a steady rate of numbers, not a synchronisation


def print_received(node: Any) -> None:
    inp = node.sockets["in"]
    while node.running:
        if inp.poll(100):
            print("received", inp.recv_string(), flush=True)


def receive_one_string(node: Any) -> None:
    print("got", node.sockets["in"].recv_string(), flush=True)


def say_endpoint_and_print(node: Any) -> None:
    """Tells where its socket is bound (a test dials it as a stranger), then prints all it gets."""
    inp = node.sockets["in"]
    print("endpoint", inp.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    while node.running:
        if inp.poll(100):
            print("received", inp.recv_string(), flush=True)


def publish_forever(node: Any) -> None:
    """Publishes numbered ticks until stopped, and says where it is bound."""
    out = node.sockets["out"]
    print("endpoint", out.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    i = 0
    while node.running:
        out.send_string(f"tick {i}")
        i += 1
        time.sleep(0.05)  # a steady rate, not a synchronisation


def say_backlog(node: Any) -> None:
    """Prints the listen backlog its socket was bound with."""
    print("backlog", node.sockets["in"].getsockopt(zmq.BACKLOG), flush=True)


def idle(node: Any) -> None:
    pass


def pace(node: Any) -> None:
    """Paces itself with ``node.sleep`` until the topology stops, then returns."""
    while node.sleep(0.05):
        pass


def stuck_at_its_end(node: Any) -> None:
    """Runs until stopped, then takes its process's output lock and never gives it back: a
    thread stuck holding what the process's own end needs (the fault)."""
    from topo.process import capture

    print("running", flush=True)
    while node.sleep(0.05):
        pass
    capture._active[-1]._lock.acquire()
