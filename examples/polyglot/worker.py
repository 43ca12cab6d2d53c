#!/usr/bin/env python3
"""A pipeline worker in plain pyzmq, run by topo as an exec node: no topo import.

It finds its sockets in the environment topo gives it (``TOPO_SOCKETS``, JSON: each
socket's type and the endpoints it binds and connects to), pulls tasks on ``tasks``,
pushes ``[its name, task, task squared]`` on ``results`` (what examples/pipeline.py's
worker does), tells topo it is ready by sd_notify when the node says ``ready: notify``,
and ends at SIGTERM (topo's stop) with exit status 0.

Run with a ``python3`` that has pyzmq: the environment topo is installed in.
"""

from __future__ import annotations

import json
import os
import signal
import socket

import zmq


def sd_notify(state: str) -> None:
    """systemd's sd_notify in three lines: one datagram to the socket NOTIFY_SOCKET names
    (a leading '@' is Linux's abstract namespace). Nothing to do without it."""
    path = os.environ.get("NOTIFY_SOCKET")
    if path:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), "\0" + path[1:] if path.startswith("@") else path)


def wire(ctx: zmq.Context, name: str, wiring: dict) -> zmq.Socket:
    """The socket ``name`` as topo says: its type, bound and connected."""
    spec = wiring[name]
    sock = ctx.socket(getattr(zmq, spec["type"]))
    for endpoint in spec["bind"]:
        sock.bind(endpoint)
    for endpoint in spec["connect"]:
        sock.connect(endpoint)
    return sock


def main() -> int:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wiring = json.loads(os.environ["TOPO_SOCKETS"])
    me = os.environ.get("TOPO_INSTANCE", "worker").encode()
    ctx = zmq.Context()
    tasks, results = wire(ctx, "tasks", wiring), wire(ctx, "results", wiring)
    sd_notify("READY=1")
    done = 0
    while not stopping:
        if not tasks.poll(100):  # wakes up to see a SIGTERM
            continue
        task = tasks.recv()
        results.send_multipart([me, task, str(int(task) ** 2).encode()])
        done += 1
    print(f"{me.decode()}: {done} task(s) done", flush=True)
    ctx.destroy(linger=1000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
