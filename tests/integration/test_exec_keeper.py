"""The keeper of a run's programs (topo.supervisor.keeper): a shell loop while its owner
lives, Python only to end the groups its owner left, however it died."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import psutil

from conftest import wait_until
from topo.supervisor.keeper import Keeper


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_keeper_waits_as_a_shell_holding_only_its_pipe_and_exits_at_close() -> None:
    go_read, go_write = os.pipe()  # as a program's go pipe: its end of file must not wait for the keeper
    keeper = Keeper(grace=1.0)
    try:
        keeper.add(999_999)  # (a group that does not exist: the keeper only notes it)
        pid = keeper.pid
        assert pid is not None
        # (Popen returns as the exec replaces the child's memory, before the kernel has set
        # its arguments: /proc shows none for a moment)
        wait_until(lambda: psutil.Process(pid).cmdline() != [], 10, "the keeper's exec to complete")
        assert psutil.Process(pid).cmdline()[:2] == ["/bin/sh", "-c"]  # no interpreter started for it
        # nothing but its pipe, /dev/null and stderr, once the shell runs (while it starts,
        # its loader opens its libraries for a moment)
        wait_until(lambda: {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")} == {0, 1, 2}, 10,
                   "the keeper to hold only fds 0, 1 and 2")
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")
        assert os.getsid(pid) == pid  # a session of its own: a terminal's Ctrl-C does not reach it
        os.close(go_write)
        assert os.read(go_read, 1) == b""  # nobody else holds the write end
        keeper.remove(999_999)
    finally:
        keeper.close(timeout=10.0)
        os.close(go_read)
    assert keeper.pid is None
    wait_until(lambda: not psutil.pid_exists(pid), 10, "the keeper to exit and be reaped")


OWNER = textwrap.dedent("""\
    import os, signal, subprocess, sys
    from topo.supervisor.keeper import Keeper

    keeper = Keeper(grace=float(sys.argv[1]))
    progs = [subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True)
             for script in sys.argv[2:]]
    for prog in progs:
        keeper.add(prog.pid)
    print(" ".join(f"{p.pid} {p.stdout.readline().decode().strip()}" for p in progs), flush=True)
    keeper.remove(progs[0].pid)  # ended, as far as the keeper knows: left alone
    os.kill(os.getpid(), signal.SIGKILL)
    """)


def _owner_dies(grace: float, *scripts: str) -> list[int]:
    """An owner that starts its keeper and ``sh -c SCRIPT`` for each script (each in a group
    of its own), tells the keeper the first has ended, and is SIGKILLed: each program's pid
    and the pid its script printed."""
    owner = subprocess.run([sys.executable, "-c", OWNER, str(grace), *scripts], stdout=subprocess.PIPE, text=True,
                           timeout=30)
    assert owner.returncode == -9, owner.stdout
    return [int(word) for word in owner.stdout.split()]


def test_the_groups_left_end_when_their_owner_is_killed() -> None:
    removed, removed_child, leader, child = _owner_dies(5.0, "sleep 1000 & echo $!; wait", "sleep 1000 & echo $!; wait")
    try:
        wait_until(lambda: _gone(leader) and _gone(child), 10, "the program and what it forked to end")
        assert not _gone(removed) and not _gone(removed_child)  # a group said to have ended is not touched
    finally:
        for pid in (removed_child, removed):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    _removed, _child, leader, child = _owner_dies(0.5, "echo 0", "trap '' TERM; sleep 1000 & echo $!; wait")
    wait_until(lambda: _gone(leader) and _gone(child), 10, "the program that ignores SIGTERM to be killed")
