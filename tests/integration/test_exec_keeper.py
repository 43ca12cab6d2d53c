"""The keeper of a run's programs (topo.supervisor.keeper): a shell loop while its owner
lives, Python only to end the groups its owner left, however it died."""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import wait_until
from topo.file.validate import load
from topo.plan.planner import make_plan
from topo.supervisor.keeper import READ_EVERY, Keeper
from topo.supervisor.supervise import Supervisor


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
        # nothing but its two pipes (life, groups) and stderr, once the shell runs (while it
        # starts, its loader opens its libraries for a moment)
        wait_until(lambda: {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")} == {0, 1, 2}, 10,
                   "the keeper to hold only fds 0, 1 and 2")
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")
        assert os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
        assert os.readlink(f"/proc/{pid}/fd/0") != os.readlink(f"/proc/{pid}/fd/1")
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
    from topo.supervisor.keeper import READ_EVERY, Keeper

    keeper = Keeper(grace=float(sys.argv[1]))
    progs = [subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True)
             for script in sys.argv[3:]]
    for prog in progs:
        keeper.add(prog.pid)
    for fake in range(int(sys.argv[2])):  # groups told and ended after them: more lines than it reads at once
        keeper.add(4_000_000 + fake)
        keeper.remove(4_000_000 + fake)
    print(" ".join(f"{p.pid} {p.stdout.readline().decode().strip()}" for p in progs), flush=True)
    keeper.remove(progs[0].pid)  # ended, as far as the keeper knows: left alone
    os.kill(os.getpid(), signal.SIGKILL)
    """)


def _owner_dies(grace: float, *scripts: str, noise: int = 0) -> list[int]:
    """An owner that starts its keeper and ``sh -c SCRIPT`` for each script (each in a group
    of its own), tells the keeper of ``noise`` more groups started and ended, tells it the
    first program has ended, and is SIGKILLed: each program's pid and the pid its script
    printed."""
    owner = subprocess.run([sys.executable, "-c", OWNER, str(grace), str(noise), *scripts], stdout=subprocess.PIPE,
                           text=True, timeout=30)
    assert owner.returncode == -9, owner.stdout
    return [int(word) for word in owner.stdout.split()]


@pytest.mark.parametrize("noise", [0, 700])
def test_the_groups_left_end_when_their_owner_is_killed(noise: int) -> None:
    """noise: groups told of (and ended) after the programs' own: the keeper reads its
    groups pipe when told to (every READ_EVERY lines) and at its end; groups it read in a
    batch long before, and lines it had not read yet, both count."""
    assert not noise or (2 * noise > 2 * READ_EVERY and 2 * noise % READ_EVERY)  # batches read, and a rest
    removed, removed_child, leader, child = _owner_dies(5.0, "sleep 1000 & echo $!; wait", "sleep 1000 & echo $!; wait",
                                                       noise=noise)
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


def _unread(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])


def test_the_keeper_sleeps_while_it_is_told_of_groups_and_reads_them_when_told_to() -> None:
    """A program's start costs its supervisor a write, and its keeper nothing: woken at each
    line, the shell took a fifth of a short run's time on the cores the programs start on."""
    keeper = Keeper(grace=1.0)
    try:
        keeper.add(999_999)
        pid = keeper.pid
        assert pid is not None and keeper._pipe is not None
        for group in range(100):
            keeper.add(3_000_000 + group)
        written = len(b"+999999\n") + 100 * len(b"+3000000\n")
        # asleep on its life pipe (its stdin), every line still in its groups pipe
        wait_until(lambda: psutil.Process(pid).status() == psutil.STATUS_SLEEPING
                   and os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")
                   and psutil.Process(pid).cmdline()[:2] == ["/bin/sh", "-c"], 10, "the keeper's shell to wait")
        assert _unread(keeper._pipe) == written
        for group in range(READ_EVERY - 101):
            keeper.add(3_100_000 + group)
        wait_until(lambda: keeper._pipe is not None and _unread(keeper._pipe) == 0, 10,
                   f"the keeper to read its {READ_EVERY} lines once told to")
    finally:
        keeper.close(timeout=10.0)
    wait_until(lambda: not psutil.pid_exists(pid), 10, "the keeper to exit and be reaped")



HELD = """\
topology: held
nodes:
  sink: {run: heldsink:receive, env: {HOLD_FIFO: "@FIFO@"}, sockets: {in: PULL}}
  src: {exec: [sh, -c, "exit 0"], sockets: {out: PUSH}}
links:
  - src.out -> sink.in
"""

#: A receiver whose import waits until the test lets it go (it opens the fifo's other end).
HELD_SINK = """\
import os
with open(os.environ["HOLD_FIFO"]) as fifo:
    fifo.read()
def receive(node):
    pass
"""


def test_the_keeper_runs_from_the_runs_start_before_any_program_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started at the first program's start, the keeper's shell started beside the programs
    and took some 0.8 ms of their CPU (bench/exec.py); it is now started before the run's
    own set-up. Here the program is held (its receiver is still importing, until the test
    lets it go), so before, no keeper ran once the run was listening."""
    home = Path(tempfile.mkdtemp(prefix="tk-", dir="/tmp"))  # short: ipc paths fit
    monkeypatch.setenv("TOPO_HOME", str(home))
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    (tmp_path / "heldsink.py").write_text(HELD_SINK)
    (tmp_path / "held.yaml").write_text(HELD.replace("@FIFO@", str(fifo)))
    plan = make_plan(load(str(tmp_path / "held.yaml")))
    supervisor = Supervisor(plan, _Quiet(), ready_timeout=30, grace=2, sys_path=(str(tmp_path),))
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(supervisor.run()), daemon=True)
    runner.start()
    keeper = None
    try:
        assert supervisor.listening.wait(20), "the run never listened"
        keeper = supervisor.processes.keeper.pid
        assert keeper is not None, "no keeper while the run listens"
        assert psutil.Process(keeper).ppid() == os.getpid()
        assert supervisor.procs[plan.instances["src"].process].pid is None  # not started: its receiver imports
    finally:
        _let_go(fifo, supervisor)
        runner.join(30)
        shutil.rmtree(home, ignore_errors=True)
    assert outcome and outcome[0].code == 0, outcome and outcome[0].reason
    wait_until(lambda: _gone(keeper), 10, "the keeper to exit once the run is over")


def _let_go(fifo: Path, supervisor: Supervisor) -> None:
    """The receiver's import goes on once the fifo has a writer: opened as soon as the
    import has the other end (or the run is stopped if it never gets there)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.02)  # polling a condition with a deadline
    supervisor.request_stop(1, "the receiver never imported")


class _Quiet:
    """A reporter that says nothing (any call)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None
