"""Output faults of issue 13, from the outside: real ``topo up`` runs whose nodes print what
no encoder takes, print fast, print until stopped, die right after printing; and a
``topo up`` whose stdout nobody reads."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import HERE, ROOT, Topo, processes_with_home, wait_until
from topo.file.validate import load
from topo.plan.planner import make_plan
from topo.supervisor.runstate import NodeState
from topo.supervisor.supervise import Supervisor

#: What a node process printing without end may hold: its interpreter, zmq and the
#: bounded outbox, with room to spare; unbounded, it passed 200 MB within 5 s.
MEMORY_BOUND = 120 << 20


def _outcome(topo: Topo, topology: str) -> dict[str, object]:
    [path] = (topo.home / "logs" / topology).glob("*/outcome.json")
    return json.loads(path.read_text())


def _up_into_file(topo: Topo, file: str) -> tuple[Path, subprocess.Popen[str]]:
    """``topo up FILE`` with its stdout in a file (read back by the test, never a pipe that
    could fill), stderr piped; cleaned up by the fixture."""
    out_path = topo.tmp / "out.txt"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "topo", "up", file, "--grace", "2"], env=topo.env,
                                cwd=str(ROOT), stdout=out, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    topo.procs.append(proc)  # type: ignore[arg-type]
    return out_path, proc


def _log(topo: Topo, topology: str, node: str) -> str:
    [path] = (topo.home / "logs" / topology).glob(f"*/{node}.log")
    return path.read_text(encoding="utf-8")


def test_a_lone_surrogate_is_shown_replaced_and_the_run_goes_on(topo: Topo) -> None:
    f = topo.file("""
        topology: surr
        nodes:
          s: {run: outnodes:surrogate, on_exit: stop}
          other: {run: outnodes:idle}
    """)
    r = topo.run("up", f, "--grace", "5")
    assert r.code == 0, r.out + r.err
    assert "internal error" not in r.err
    lines = r.out.splitlines()
    assert any(line.endswith("| before") for line in lines), r.out
    assert any(line.endswith("| value: \ufffd") for line in lines), r.out
    assert any(line.endswith("| after") for line in lines), r.out
    assert "other" in r.out and "SIGKILL" not in r.out
    outcome = _outcome(topo, "surr")
    assert outcome["code"] == 0
    assert outcome["nodes"]["s"] == "exited"  # type: ignore[index]
    assert "value: \ufffd" in _log(topo, "surr", "s")


class _Broken:
    """A reporter with a bug: it raises on the first line of output."""

    def output(self, name: str, line: str, err: bool) -> None:
        raise RuntimeError("reporter bug")

    def changed(self, node: NodeState) -> None:
        pass

    def system(self, text: str) -> None:
        pass


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="to-", dir="/tmp"))  # short: ipc paths fit
    monkeypatch.setenv("TOPO_HOME", str(path))
    try:
        yield path
    finally:
        for proc in processes_with_home(path):
            proc.kill()
        shutil.rmtree(path, ignore_errors=True)


def test_outcome_json_records_an_internal_error_as_such(home: Path) -> None:
    """A bug in the supervisor's loop is exit 70 in outcome.json too, never 0."""
    (home / "f.yaml").write_text("topology: bug\nnodes:\n  s: {run: outnodes:surrogate}\n")
    plan = make_plan(load(str(home / "f.yaml")))
    supervisor = Supervisor(plan, _Broken(), ready_timeout=30, grace=2, sys_path=(str(HERE), str(ROOT)))
    with pytest.raises(RuntimeError, match="reporter bug"):
        supervisor.run()
    [path] = (home / "logs" / "bug").glob("*/outcome.json")
    outcome = json.loads(path.read_text())
    assert outcome["code"] == 70
    assert "reporter bug" in outcome["reason"]


class _Anything:
    """A reporter that keeps the lines and answers any other name with a function that does
    nothing (as bench/exec.py's does)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def output(self, name: str, line: str, err: bool) -> None:
        self.lines.append(f"{name} | {line}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def test_a_reporter_that_answers_any_name_is_not_taken_for_one_that_batches(home: Path) -> None:
    """Before: its ``batch`` (a function returning None) was used as a context manager at
    the first read of a pipe: a TypeError ended the run as an internal error."""
    (home / "f.yaml").write_text("topology: any\nnodes:\n  s: {run: outnodes:bigout, args: {lines: 3}}\n")
    plan = make_plan(load(str(home / "f.yaml")))
    reporter = _Anything()
    outcome = Supervisor(plan, reporter, ready_timeout=30, grace=2,
                         sys_path=(str(HERE), str(ROOT))).run()
    assert outcome.code == 0, outcome.reason
    assert reporter.lines[-1] == "s | LAST LINE" and len(reporter.lines) == 4, reporter.lines


def test_half_a_million_lines_are_all_shown_and_the_node_returned(topo: Topo) -> None:
    """50 MB printed as fast as a node can: every line reaches the terminal, in order, and
    the node is reported returned (its output being slow to go out is no failure)."""
    f = topo.file("""
        topology: big
        nodes:
          big: {run: outnodes:bigout, on_exit: stop}
    """)
    out_path, proc = _up_into_file(topo, f)
    _, err = proc.communicate(timeout=300)
    text = out_path.read_text()
    lines = [line for line in text.splitlines() if line.startswith("big  | ")]
    assert proc.returncode == 0, text[-2000:] + err
    assert len(lines) == 500_001
    assert lines[-1] == "big  | LAST LINE"
    assert lines[123_456] == "big  | 00123456 " + "x" * 90
    assert "big returned" in text and "failed" not in text
    assert _outcome(topo, "big")["nodes"] == {"big": "exited"}


def test_a_node_printing_until_stopped_keeps_its_memory(topo: Topo) -> None:
    """Its lines wait within a bound, and the node waits for room as on a pipe to a
    terminal: the process's memory stays bounded however long it prints."""
    f = topo.file("""
        topology: flood
        nodes:
          flood: {run: outnodes:flood}
    """)
    out_path, proc = _up_into_file(topo, f)
    wait_until(lambda: "node(s) ready" in out_path.read_text(), 60, "the node ready")
    [node] = [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    peak = 0
    end = time.monotonic() + 5
    while time.monotonic() < end and peak < MEMORY_BOUND:
        peak = max(peak, node.memory_info().rss)
        time.sleep(0.1)  # a sampling interval over a fixed window, not a wait for a condition
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert peak < MEMORY_BOUND, f"node process at {peak >> 20} MB"
    assert proc.returncode == 143, err
    assert "flood failed" not in out_path.read_text()


@pytest.mark.parametrize("stop", ["topo down", "SIGINT"])
def test_a_blocked_reader_of_topo_up_does_not_block_supervision(topo: Topo, stop: str) -> None:
    """``topo up | (a reader that never reads)``: ``topo down`` is answered, or Ctrl-C
    obeyed, and the run stops within a bound; the log file still has the lines the
    terminal could not take."""
    f = topo.file("""
        topology: blocked
        nodes:
          flood: {run: outnodes:flood}
    """)
    proc = topo.start("up", f, "--grace", "2")  # its stdout: a pipe this test never reads
    wait_until(lambda: any((topo.home / "logs" / "blocked").glob("*/flood.log")), 60, "the node's log")
    [log] = (topo.home / "logs" / "blocked").glob("*/flood.log")
    wait_until(lambda: log.stat().st_size > 1 << 20, 60, "more output than a pipe holds")
    if stop == "SIGINT":
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert _outcome(topo, "blocked")["reason"] == "Ctrl-C"
        return
    down = topo.run("down", "blocked", timeout=30)
    assert down.code == 0, down.out + down.err
    assert "stopped by topo down" in down.out
    assert proc.wait(timeout=30) == 0
    assert _outcome(topo, "blocked")["reason"] == "stopped by topo down"


def test_the_last_words_before_os_exit_are_all_shown_and_logged(topo: Topo) -> None:
    """Five prints, a raw write to fd 2, ``os._exit(3)``: all six lines reach the terminal
    and the log file, before the failure is reported."""
    f = topo.file("""
        topology: lastw
        nodes:
          lw: {run: outnodes:last_words}
          other: {run: outnodes:idle}
    """)
    r = topo.run("up", f, "--grace", "5")
    assert r.code == 1, r.out + r.err
    words = [f"line {i} before crash" for i in range(5)] + ["fd2: last words"]
    shown = [line.split("| ", 1)[1] for line in r.out.splitlines() if line.startswith("lw ")]
    assert shown == words, r.out
    failed = r.out.index("lw failed: its process lw exited with status 3")
    assert r.out.index("fd2: last words") < failed
    log = _log(topo, "lastw", "lw")
    assert all(word in log for word in words)
    assert " err fd2: last words" in log
