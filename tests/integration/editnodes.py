"""Node functions of the tests of editing a live run (``topo restart``, ``topo apply``)."""

from __future__ import annotations

import os
from typing import Any


def feed(node: Any) -> None:
    """On each ``BATCH COUNT`` that arrives on ``ctl`` (an external PULL the test sends
    to), sends COUNT messages ``BATCH I COUNT`` on ``out``; until stopped."""
    ctl, out = node.sockets["ctl"], node.sockets["out"]
    while node.running:
        if ctl.poll(100):
            batch, count = ctl.recv_string().split()
            for i in range(int(count)):
                out.send_string(f"{batch} {i} {count}")


def feed_pairs(node: Any) -> None:
    """:func:`feed`, each message in two frames (``BATCH I COUNT``, ``end``), with a look at
    ``ctl`` between the two: a node that uses another socket in the middle of a message."""
    import zmq

    ctl, out = node.sockets["ctl"], node.sockets["out"]
    while node.running:
        if ctl.poll(100):
            batch, count = ctl.recv_string().split()
            for i in range(int(count)):
                out.send_string(f"{batch} {i} {count}", zmq.SNDMORE)
                ctl.poll(0)
                out.send_string("end")


def relay_pairs(node: Any) -> None:
    """:func:`relay` of :func:`feed_pairs`' messages; one not of two frames ending ``end``
    is said (``split message``) and not relayed."""
    import time

    inp, out = node.sockets["in"], node.sockets["out"]
    pause = float(node.args.get("pause", 0))
    while node.running:
        if inp.poll(100):
            frames = inp.recv_multipart()
            if len(frames) != 2 or frames[1] != b"end":
                print(f"split message {frames!r}", flush=True)
                continue
            out.send_string(f"{frames[0].decode()} {os.getpid()}")
            if pause:
                time.sleep(pause)


def relay(node: Any) -> None:
    """``in`` to ``out``, each message with this process's pid after it (``args.pause``:
    seconds of work per message, a worker's pace)."""
    import time

    inp, out = node.sockets["in"], node.sockets["out"]
    pause = float(node.args.get("pause", 0))
    while node.running:
        if inp.poll(100):
            out.send_string(f"{inp.recv_string()} {os.getpid()}")
            if pause:
                time.sleep(pause)


def endless_relay(node: Any) -> None:
    """As :func:`relay`, never asking ``node.running``: it loops on a ``recv`` with a 0.1 s
    timeout for ever (its input gone, only a stop ends it)."""
    import time

    import zmq

    inp, out = node.sockets["in"], node.sockets["out"]
    inp.setsockopt(zmq.RCVTIMEO, 100)
    pause = float(node.args.get("pause", 0))
    while True:
        try:
            task = inp.recv_string()
        except zmq.Again:
            continue
        out.send_string(f"{task} {os.getpid()}")
        if pause:
            time.sleep(pause)


def tally(node: Any) -> None:
    """Counts each batch's messages; prints ``batch B complete N from PIDS`` once all N came."""
    inp = node.sockets["in"]
    seen: dict[str, set[int]] = {}
    pids: dict[str, set[str]] = {}
    while node.running:
        if inp.poll(100):
            batch, i, count, *by = inp.recv_string().split()
            pid = by[0] if by else "direct"  # sent straight by the feed, through no worker
            seen.setdefault(batch, set()).add(int(i))
            pids.setdefault(batch, set()).add(pid)
            if len(seen[batch]) == int(count):
                print(f"batch {batch} complete {count} from {' '.join(sorted(pids[batch]))}", flush=True)


def hold(node: Any) -> None:
    """Runs until stopped, reading and dropping whatever its sockets receive."""
    import zmq

    poller = zmq.Poller()
    for sock in node.sockets.values():
        poller.register(sock, zmq.POLLIN)
    while node.running:
        for sock, _ in poller.poll(100):
            sock.recv_multipart()


def doze(node: Any) -> None:
    """Holds its sockets and looks at nothing, 5 s at a time, until stopped (a node that
    computes: no socket call, no ``node.running`` in between)."""
    while node.sleep(5):
        pass


def once(node: Any) -> None:
    """Sends one message on ``out`` as soon as it runs (batch ``args.batch``, one message,
    from ``once``), then holds until stopped: its gate must make that first one arrive."""
    node.sockets["out"].send_string(f"{node.args['batch']} 0 1 once")
    while node.sleep(1.0):
        pass


def count(node: Any) -> None:
    """Counts each batch's messages (``BATCH I COUNT ...``) and, whenever none has come for
    0.1 s after some did, prints ``batch B has N dup D``: N distinct messages, D received twice."""
    inp = node.sockets["in"]
    seen: dict[str, set[int]] = {}
    dups: dict[str, int] = {}
    changed = False
    while node.running:
        if inp.poll(100):
            batch, i, *_ = inp.recv_string().split()
            if int(i) in seen.setdefault(batch, set()):
                dups[batch] = dups.get(batch, 0) + 1
            seen[batch].add(int(i))
            changed = True
        elif changed:
            changed = False
            for batch in seen:
                print(f"batch {batch} has {len(seen[batch])} dup {dups.get(batch, 0)}", flush=True)


def census(node: Any) -> None:
    """As :func:`count`, and by whom: ``batch B has N dup D by PID:K PID:K``, each relaying
    process's pid and how many of the batch's messages came through it."""
    inp = node.sockets["in"]
    seen: dict[str, set[int]] = {}
    dups: dict[str, int] = {}
    by: dict[str, dict[str, int]] = {}
    changed = False
    while node.running:
        if inp.poll(100):
            batch, i, _, pid = inp.recv_string().split()
            if int(i) in seen.setdefault(batch, set()):
                dups[batch] = dups.get(batch, 0) + 1
            seen[batch].add(int(i))
            counts = by.setdefault(batch, {})
            counts[pid] = counts.get(pid, 0) + 1
            changed = True
        elif changed:
            changed = False
            for batch in seen:
                who = " ".join(f"{p}:{n}" for p, n in sorted(by[batch].items()))
                print(f"batch {batch} has {len(seen[batch])} dup {dups.get(batch, 0)} by {who}", flush=True)


async def afeed(node: Any) -> None:
    """:func:`feed`, as an ``async def`` node (its sockets are asyncio's)."""
    ctl, out = node.sockets["ctl"], node.sockets["out"]
    while node.running:
        if await ctl.poll(100):
            batch, count = (await ctl.recv_string()).split()
            for i in range(int(count)):
                await out.send_string(f"{batch} {i} {count}")


async def arelay(node: Any) -> None:
    """:func:`relay`, as an ``async def`` node."""
    import asyncio

    inp, out = node.sockets["in"], node.sockets["out"]
    pause = float(node.args.get("pause", 0))
    while node.running:
        if await inp.poll(100):
            await out.send_string(f"{await inp.recv_string()} {os.getpid()}")
            if pause:
                await asyncio.sleep(pause)

