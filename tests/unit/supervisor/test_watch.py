"""A process's end is seen from its pidfd, whatever a child it forked holds open."""

from __future__ import annotations

import multiprocessing
import os
import select
import time

import psutil
import pytest

from topo.supervisor.watch import Started

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfds here")


def _forks_then_exits(w: int) -> None:
    """Leads a group, forks a child that sleeps (and holds every inherited fd,
    multiprocessing's sentinel included), tells its pid, and exits 3."""
    os.setpgid(0, 0)
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1000,))
    child.start()
    os.write(w, f"{child.pid}\n".encode())
    os._exit(3)


def _readable(fd: int, timeout: float) -> bool:
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(int(timeout * 1000)))


def test_the_end_is_seen_the_group_killed_and_the_exit_status_known() -> None:
    r, w = os.pipe()
    proc = multiprocessing.get_context("fork").Process(target=_forks_then_exits, args=(w,))
    proc.start()
    started = Started(proc)
    grandchild = None
    try:
        os.close(w)
        with os.fdopen(r) as pipe:
            grandchild = int(pipe.readline())
        assert _readable(started.sentinel, 30.0), "the pidfd never said the process ended"
        # the cause of issue 13 item 5: the grandchild holds multiprocessing's sentinel
        assert not _readable(proc.sentinel, 0.0)
        t0 = time.monotonic()
        started.join(10.0)
        assert time.monotonic() - t0 < 5.0
        assert started.exitcode == 3
        deadline = time.monotonic() + 30.0
        while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the grandchild outlived its group's end"
            time.sleep(0.02)  # polling a condition with a deadline
    finally:
        started.close()
        if proc.is_alive():
            proc.kill()
        if grandchild is not None:
            try:
                os.kill(grandchild, 9)
            except OSError:
                pass


def test_join_waits_no_longer_than_asked_for_a_live_process() -> None:
    proc = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1000,))
    proc.start()
    started = Started(proc)
    try:
        assert started.exact and not started.has_exited()
        t0 = time.monotonic()
        started.join(0.2)
        assert started.is_alive() and time.monotonic() - t0 < 5.0
    finally:
        proc.kill()
        started.join(30.0)
        started.close()
    assert started.exitcode == -9
