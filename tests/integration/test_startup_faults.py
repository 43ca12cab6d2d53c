"""The first second of a run (issue 13): a stop at any moment of the start-up ends the run
promptly, with the status of what stopped it and nothing left behind.

Signals go to ``topo up``'s process group, as a terminal sends them (the command runs in
a session of its own). Where the moment matters it is a race, so each scenario runs
several times; the waits are on real signals (the command's exit, a line, a file) with a
deadline, never a sleep.
"""

from __future__ import annotations

import json
import re
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import HERE, ROOT, Topo, processes_with_home, wait_until
from described import describe

GRACE = 2.0
#: From SIGTERM to SIGKILL after the grace period (topo.supervisor.runstate.KILL_AFTER).
KILL_AFTER = 1.0
#: What a loaded two-CPU machine adds to a stop's own bound.
SLACK = 4.0

TWO = """
    topology: twostart
    nodes:
      a: {run: "startnodes:announce"}
      b: {run: "startnodes:announce"}
"""


def many(count: int, name: str = "manystart") -> str:
    return f"""
    topology: {name}
    nodes:
      t: {{run: "startnodes:idle", replicas: {count}}}
    """


def stop_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def ended(topo: Topo, proc: subprocess.Popen[str], within: float) -> tuple[str, float]:
    """The command's whole output once it has exited, and how long that took; a command
    still running after ``within`` seconds fails the test (and is killed by the fixture)."""
    since = time.monotonic()
    try:
        out, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        try:
            tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = [proc.pid]
        doing = "\n".join(describe(pid) for pid in tree)
        said = _said_before_kill(proc)
        raise AssertionError(f"topo up still running {within:g}s after the signal:\n{doing}\n"
                             f"what it printed:\n{said}") from None
    return out + err, time.monotonic() - since


def _said_before_kill(proc: subprocess.Popen[str]) -> str:
    """The output of a ``topo up`` that did not end: it is killed (its group too) and what
    it printed is read to its end (whether it said it was stopping tells where the signal
    went)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # a child still holds the pipes: what is there is lost
        return "(its pipes are held open by another process)"
    return (out + err)[-3000:]


def assert_nothing_left(topo: Topo) -> None:
    """No process of the run (the resource tracker ends when its last user has), no run
    directory, no ipc file."""
    wait_until(lambda: not processes_with_home(topo.home), 10, "every process of the run to be gone")
    assert topo.run_dirs() == []
    assert topo.socket_files() == []


def assert_no_child_traceback(text: str) -> None:
    for sign in ("Traceback", "KeyboardInterrupt", "Fatal Python error", "killed by SIG"):
        assert sign not in text, text


def spawning(proc: subprocess.Popen[str]) -> bool:
    """``topo up`` has started its first process (or has ended)."""
    try:
        return bool(psutil.Process(proc.pid).children()) or proc.poll() is not None
    except psutil.Error:
        return True


def wait_spawning(proc: subprocess.Popen[str]) -> None:
    wait_until(lambda: spawning(proc), 30, "topo up to start its first process")


def test_ctrl_c_while_many_processes_are_spawned_ends_the_run(topo: Topo) -> None:
    """Before: ``interrupted``, then ``topo up`` joined forever a process it had started
    but not recorded; the run directory and the process stayed."""
    path = topo.file(many(60))
    for _ in range(3):
        proc = topo.start("up", path, "--grace", str(GRACE))
        wait_spawning(proc)
        # the spawning of 60 processes takes seconds: this lands in the middle of it
        time.sleep(random.uniform(0.0, 0.5))  # a random moment, not a wait for a condition
        stop_group(proc, signal.SIGINT)
        text, took = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
        assert proc.returncode == 130, text
        assert "interrupted" not in text, text
        assert took < GRACE + KILL_AFTER + SLACK, (took, text)
        assert_no_child_traceback(text)
        assert_nothing_left(topo)


def test_no_process_dies_of_an_early_ctrl_c(topo: Topo) -> None:
    """Before: the first process was spawned with SIGINT unblocked (multiprocessing's
    resource tracker, started by the first spawn, unblocks it) and died of the Ctrl-C
    with a KeyboardInterrupt traceback, or ``Fatal Python error: init_import_site``."""
    path = topo.file(many(4, "fourstart"))
    for _ in range(10):
        proc = topo.start("up", path, "--grace", str(GRACE))
        wait_spawning(proc)
        time.sleep(random.uniform(0.0, 0.3))  # the moment: while the children start
        stop_group(proc, signal.SIGINT)
        text, _ = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
        assert proc.returncode == 130, text
        assert_no_child_traceback(text)
        assert_nothing_left(topo)


def _pending(pid: int, sig: signal.Signals) -> bool:
    """Whether ``sig`` waits for delivery to the (stopped) process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (sig - 1)) for mask in masks)


def test_ps_shows_and_down_stops_a_run_that_is_still_starting(topo: Topo) -> None:
    """Before: both said ``no running topology`` while the run was spawning, and it went
    on. Held in its start-up deterministically: SIGSTOP as soon as its first process is started."""
    proc = topo.start("up", topo.file(many(40, "slowstart")), "--grace", str(GRACE))
    try:
        wait_spawning(proc)
        os.kill(proc.pid, signal.SIGSTOP)  # the supervisor alone; its children go on starting
        ps = topo.run("ps")
        assert ps.code == 0, ps.err
        assert "slowstart/" in ps.out and "starting" in ps.out, ps.out
        [entry] = json.loads(topo.run("ps", "--json").out)
        assert entry["starting"] is True and entry["pid"] == proc.pid
        down = topo.start("down", "slowstart")
        wait_until(lambda: _pending(proc.pid, signal.SIGUSR1) or down.poll() is not None, 30,
                   "topo down to have asked the run to stop")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, err = down.communicate(timeout=GRACE + KILL_AFTER + SLACK + 10)
    assert down.returncode == 0, out + err
    assert "stopped by topo down (exit 0)" in out, out + err
    text, _ = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
    assert proc.returncode == 0, text
    assert "stopped: stopped by topo down" in text, text
    assert_nothing_left(topo)


def test_sighup_stops_the_run_with_the_stop_sequence(topo: Topo) -> None:
    """A closed terminal: SIGHUP to the whole group. Before: every process died of it at
    once, no stop sequence, no ``outcome.json``."""
    proc = topo.start("up", topo.file(TWO), "--grace", str(GRACE))
    topo.wait_for_lines(proc, [r"a function called", r"b function called"])
    stop_group(proc, signal.SIGHUP)
    text, took = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
    assert proc.returncode == 129, text
    assert "stopped: SIGHUP" in text, text
    assert "did not stop" not in text and "failed" not in text, text
    assert_nothing_left(topo)
    [outcome] = (topo.home / "logs" / "twostart").glob("*/outcome.json")
    assert json.loads(outcome.read_text())["code"] == 129


def test_a_real_terminal_that_hangs_up_stops_the_run(topo: Topo) -> None:
    """The terminal itself goes away (an ssh session dropped, a window closed): ``topo up``
    runs on a pseudo-terminal as its controlling terminal, and the master side is closed.
    The kernel sends SIGHUP to the session, and every later write to the terminal fails
    (EIO): the run stops with the stop sequence, status 129, ``outcome.json`` written,
    nothing left behind -- with no reader for its last lines."""
    import fcntl
    import pty
    import select
    import sys
    import termios

    master, slave = pty.openpty()

    def own_terminal() -> None:  # in the child: a session whose controlling terminal it is
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen([sys.executable, "-m", "topo", "up", topo.file(TWO), "--grace", str(GRACE)],
                                env=topo.env, cwd=str(ROOT), stdin=slave, stdout=slave, stderr=slave,
                                preexec_fn=own_terminal)
    finally:
        os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while not (b"a function called" in seen and b"b function called" in seen):
            left = deadline - time.monotonic()
            assert left > 0, f"the nodes did not start within 30s: {seen!r}"
            if select.select([master], [], [], left)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
    finally:
        os.close(master)  # the hang-up
    try:
        code = proc.wait(GRACE + KILL_AFTER + SLACK + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"topo up did not end after its terminal hung up: {seen!r}") from None
    assert code == 129, seen
    assert_nothing_left(topo)
    [outcome] = (topo.home / "logs" / "twostart").glob("*/outcome.json")
    data = json.loads(outcome.read_text())
    # (a node that returns once told to stop has "exited"; none failed, none was killed)
    assert data["code"] == 129 and set(data["nodes"].values()) <= {"exited", "stopped"}, data


def test_a_process_never_sent_its_table_ends_at_the_ready_deadline() -> None:
    """The child side of the hang: a process whose supervisor never sends the endpoint
    table waited for it with no deadline (and its parent joined it forever)."""
    from topo.file.validate import load
    from topo.plan.planner import make_plan, share_of
    from topo.process.boot import Boot
    from topo.supervisor import spawn

    plan = make_plan(load(str(ROOT / "topologies" / "pipeline.yaml")))
    nowhere = Path("/tmp") / f"tp-none-{os.getpid()}"
    nowhere.mkdir(exist_ok=True)
    ready_in, grace = 1.0, 0.5
    boot = Boot(share_of(plan, plan.processes[0].name), f"ipc://{nowhere}/ev", f"ipc://{nowhere}/cmd",
                str(nowhere), time.time() + ready_in, grace, os.getpid(), (str(HERE), str(ROOT)))
    proc = spawn.start(boot)
    try:
        proc.join(ready_in + grace + 1 + SLACK + 10)  # its ready deadline, then its exit
        assert proc.exitcode is not None, "the process still waits for its table"
    finally:
        spawn.signal_tree(proc.pid, signal.SIGKILL)
        proc.join(5)
        for leftover in nowhere.iterdir():
            leftover.unlink()
        nowhere.rmdir()


@pytest.mark.slow
def test_ctrl_c_at_a_random_moment_of_the_first_second(topo: Topo) -> None:
    """The issue's experiment: SIGINT at a random time in the first second, many runs;
    every one ends within grace + 1 s with exit 130 and nothing left.

    Only the interpreter's own first milliseconds (before any code of topo runs) are out
    of topo's hands: a SIGINT there ends Python as an unhandled SIGINT does (the shell's 130 too),
    or during its ``site`` import with Python's fatal error, and nothing exists yet."""
    path = topo.file(TWO)
    outcomes: dict[str, int] = {}
    for _ in range(20):
        proc = topo.start("up", path, "--grace", str(GRACE))
        time.sleep(random.uniform(0.0, 1.0))  # the random moment itself, not a wait
        stop_group(proc, signal.SIGINT)
        text, took = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
        before_topo = proc.returncode == -signal.SIGINT or (
            proc.returncode == 1 and "Fatal Python error" in text and "topo |" not in text)
        kind = "interpreter" if before_topo else str(proc.returncode)
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if not before_topo:
            assert proc.returncode == 130, text
            assert_no_child_traceback(text)
        assert took < GRACE + 1 + SLACK, (took, text)
        assert_nothing_left(topo)
    assert outcomes.get("130", 0) >= 10, outcomes


HOLD = '''
import os
hold = os.environ.get("TOPO_TEST_HOLD_START")
if hold and b"spawn_main" in open("/proc/self/cmdline", "rb").read():
    open(hold).read()  # a FIFO nobody writes to: this process stays in its start-up
'''


def test_a_stop_ends_a_process_still_starting_at_once_and_its_node_is_stopped(topo: Topo, tmp_path: Path) -> None:
    """Before: a process that had not said hello when the stop began could not be told to
    stop; it was sent SIGTERM only after the grace period, and its node reported
    ``failed: its process ... killed by SIGTERM`` (a loaded machine starting 60
    interpreters got there on every Ctrl-C). Held in its start-up deterministically: its
    interpreter waits on a FIFO in sitecustomize, before topo's code runs."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOLD)
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    topo.env["PYTHONPATH"] = os.pathsep.join([str(site), topo.env["PYTHONPATH"]])
    topo.env["TOPO_TEST_HOLD_START"] = str(fifo)
    grace = 10.0
    proc = topo.start("up", topo.file(TWO), "--grace", str(grace))
    wait_until(lambda: len(psutil.Process(proc.pid).children()) >= 2 or proc.poll() is not None, 30,
               "topo up to start both processes")
    stop_group(proc, signal.SIGINT)
    text, took = ended(topo, proc, grace + KILL_AFTER + SLACK + 10)
    assert proc.returncode == 130, text
    assert took < grace, (took, text)  # not the grace period: nothing was running
    assert "killed by" not in text and "did not stop" not in text, text
    assert re.search(r"^topo +\| a +stopped ", text, re.M) and re.search(r"^topo +\| b +stopped ", text, re.M), text
    assert_nothing_left(topo)


SWALLOW = '''
import os, sys
cmd = open("/proc/self/cmdline", "rb").read().split(b"\\0")
if cmd[1:4] == [b"-m", b"topo", b"up"]:
    class Finalized:
        def __del__(self):
            open(os.environ["TOPO_TEST_IN_FINALIZER"], "w").close()
            open(os.environ["TOPO_TEST_HOLD"]).read()  # a FIFO nobody writes to

    class OnLaunch:
        """Where Python ignores what is raised (a finalizer) just as topo up imports its
        launcher, which may hold it a moment there: a Ctrl-C that lands now."""
        def find_spec(self, name, path=None, target=None):
            if name == "topo.cli.launch":
                sys.meta_path.remove(self)
                Finalized()
            return None

    sys.meta_path.insert(0, OnLaunch())
'''


def test_ctrl_c_where_python_ignores_exceptions_still_stops_topo_up(topo: Topo, tmp_path: Path) -> None:
    """From the command's choice to its own handlers, topo up had Python's: a Ctrl-C raised
    KeyboardInterrupt wherever the main thread was, and Python only prints one raised in a
    finalizer (or a weakref callback), which the collector may run at any moment: the
    Ctrl-C was lost and the run went on (one such hang in a full suite's run of the
    random-moment test above; here it ran on until the test's bound). Now the early
    handler stays until topo up's own take over: exit 130, nothing started."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SWALLOW)
    fifo, marker = tmp_path / "hold", tmp_path / "in-finalizer"
    os.mkfifo(fifo)
    topo.env["PYTHONPATH"] = os.pathsep.join([str(site), topo.env["PYTHONPATH"]])
    topo.env.update(TOPO_TEST_HOLD=str(fifo), TOPO_TEST_IN_FINALIZER=str(marker))
    proc = topo.start("up", topo.file(TWO), "--grace", str(GRACE))
    wait_until(lambda: marker.exists() or proc.poll() is not None, 30, "topo up to import its launcher")
    stop_group(proc, signal.SIGINT)
    text, _ = ended(topo, proc, GRACE + KILL_AFTER + SLACK + 10)
    assert proc.returncode == 130, text
    assert "interrupted" in text and "topo |" not in text, text
    assert_nothing_left(topo)
