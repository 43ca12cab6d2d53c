"""Nodes with processes of their own, for tests/integration/test_children.py.

Each prints the pids it leaves behind as ``pids NODEPID CHILDPID...`` so the test can
watch them from outside.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import subprocess
import time
from typing import Any


def _idle(node: Any) -> None:
    while node.running:
        time.sleep(0.05)


def _shell_job() -> int:
    """A shell's background job: the shell exits at once, its job is nobody's child."""
    out = subprocess.run("sleep 1002 >/dev/null 2>&1 & echo $!", shell=True, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


def idle(node: Any) -> None:
    _idle(node)


def fork_child(node: Any) -> None:
    """A forked child (no exec) holds every descriptor its parent had."""
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1000,))
    child.start()
    print(f"pids {os.getpid()} {child.pid}", flush=True)
    _idle(node)


def os_fork_child(node: Any) -> None:
    pid = os.fork()
    if pid == 0:
        time.sleep(1000)
        os._exit(0)
    print(f"pids {os.getpid()} {pid}", flush=True)
    _idle(node)


def os_fork_child_own_session(node: Any) -> None:
    """A forked child (no exec) that leaves the node's process group (``os.setsid``, as a
    daemon does): the group's end does not reach it (docs/running.md, "Limits"), and it
    keeps every descriptor the node process had, its control connection to the supervisor
    included. The test kills it; it ends by itself after 120 s in any case."""
    left_r, left_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(left_r)
        os.setsid()
        os.write(left_w, b"x")  # out of the group now: what kills the group misses it
        os.close(left_w)
        time.sleep(120)
        os._exit(0)
    os.close(left_w)
    # not before the child has left the group: a test that kills the node at once would
    # otherwise have the group's end take the child too (seen in CI on a loaded machine)
    ready, _, _ = select.select([left_r], [], [], 30)
    assert ready and os.read(left_r, 1) == b"x", "the forked child did not leave the group within 30 s"
    os.close(left_r)
    print(f"pids {os.getpid()} {pid}", flush=True)
    _idle(node)


def popen_no_close_child(node: Any) -> None:
    child = subprocess.Popen(["sleep", "1003"], close_fds=False)
    print(f"pids {os.getpid()} {child.pid}", flush=True)
    _idle(node)


def fork_then_exit(node: Any) -> None:
    """Dies by itself (os._exit) while the child it forked lives on. The pids go to the
    file ``args.pidfile``: output written just before ``os._exit`` is not this test's
    subject."""
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1000,))
    child.start()
    with open(node.args["pidfile"], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os._exit(3)


def children(node: Any) -> None:
    """A subprocess, a shell's background job and a ``spawn`` multiprocessing child, then
    idles (or returns at once when ``args.ret``)."""
    child = subprocess.Popen(["sleep", "1001"])
    spawned = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(1004,))
    spawned.start()
    print(f"pids {os.getpid()} {child.pid} {_shell_job()} {spawned.pid}", flush=True)
    if not node.args.get("ret"):
        _idle(node)
