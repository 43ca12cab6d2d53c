"""`topo up -d`, `topo attach` and what `topo ps` says of detached runs, driven through the
real command with real files. Every run a test starts is stopped by `topo down` at its end
(and whatever is left killed by the `topo` fixture)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from conftest import ROOT, RUN_IDENTITY, Topo, processes_with_home, wait_until

IDENTITY = RUN_IDENTITY

LIVE = """
topology: live
nodes:
  talker: {run: "lognodes:count_then_idle", args: {lines: 3}}
  worker: {run: "lognodes:count_then_idle", replicas: 2, args: {lines: 1}}
"""

MIXED = """
topology: mixed
nodes:
  quick: {run: "lognodes:count", args: {lines: 1}}
  stay: {run: "lognodes:count_then_idle", args: {lines: 1}}
"""


@pytest.fixture
def detached(topo: Topo) -> Iterator[Topo]:
    """The `topo` fixture, with every run still going at the end stopped by `topo down`."""
    try:
        yield topo
    finally:
        for entry in ps_json(topo):
            if not entry.get("dead"):
                topo.run("down", entry["run"], "--timeout", "20", timeout=30)


def ps_json(topo: Topo, cwd: Path = ROOT) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "topo", "ps", "--json"], env=topo.env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def up_d(topo: Topo, text: str, *args: str, name: str = "topo.yaml") -> tuple[Any, str]:
    return topo.up_detached(text, *args, name=name)


def none_left(topo: Topo) -> bool:
    """No process of the test's home is left once those ending now have ended (multiprocessing's
    resource tracker ends moments after the supervisor whose pipe it reads)."""
    _, alive = psutil.wait_procs(processes_with_home(topo.home), timeout=5)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]
    return True


def supervisor_of(topo: Topo, identity: str) -> psutil.Process:
    [entry] = [e for e in ps_json(topo) if e["run"] == identity]
    return psutil.Process(entry["pid"])


def test_up_d_returns_once_every_node_is_ready(detached: Topo) -> None:
    result, identity = up_d(detached, LIVE)
    # what the foreground shows up to readiness (the nodes print once ready: maybe later)
    assert re.search(r"(?m)^topo +\| started 3 process\(es\).*\n(.*\n)*topo +\| all 3 node\(s\) ready in",
                     result.out), result.out
    assert f"topo down {identity}" in result.err and f"topo attach {identity}" in result.err
    # returned after readiness, not before: the run says every node is running right now
    [entry] = ps_json(detached)
    assert entry["run"] == identity
    assert [n["state"] for n in entry["nodes"]] == ["running"] * 3
    daemon = psutil.Process(entry["pid"])
    assert os.getsid(daemon.pid) == daemon.pid  # a session of its own: no terminal's SIGHUP
    for fd, target in ((0, os.devnull), (1, os.devnull), (2, os.devnull)):
        assert os.readlink(f"/proc/{daemon.pid}/fd/{fd}") == target
    family = [daemon, *daemon.children(recursive=True)]
    assert len(family) >= 4  # the supervisor and its 3 node processes (and multiprocessing's helper)
    # its nodes' output goes on to the log files, as a foreground run's
    wait_until(lambda: bool(re.search(r"talker +\| talker line 2", detached.run("logs", identity).out)),
               10, "the talker's last line in the run's log")

    down = detached.run("down", identity, "--timeout", "20")
    assert down.code == 0 and "stopped by topo down (exit 0)" in down.out
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"left behind: {alive}"
    assert not detached.run_dirs() and not detached.socket_files()


def test_up_d_of_a_node_that_fails_before_ready_exits_1_with_the_foreground_messages(detached: Topo) -> None:
    text = """
    topology: broken
    nodes:
      good: {run: "lognodes:count_then_idle", args: {lines: 1}}
      bad: {run: "brokenmod:run"}
    """
    result = detached.run("up", "-d", detached.file(text))
    assert result.code == 1, result.out + result.err
    assert "bad failed:" in result.out and "brokenmod cannot be imported" in result.out
    assert "stopped: bad failed" in result.out and "(exit 1)" in result.out
    assert not IDENTITY.match(result.out.splitlines()[-1])  # no run id: it is not running
    assert ps_json(detached) == []
    assert none_left(detached)


def test_up_d_of_a_node_not_ready_in_time_exits_1(detached: Topo) -> None:
    text = """
    topology: slow
    nodes:
      a: {run: "hangmod:receive_one"}
    """
    result = detached.run("up", "-d", "--ready-timeout", "1", "--grace", "1", detached.file(text))
    assert result.code == 1, result.out + result.err
    assert "a failed: not ready within 1s" in result.out
    assert ps_json(detached) == [] and none_left(detached)


def test_up_d_of_an_invalid_file_exits_2_and_starts_nothing(detached: Topo) -> None:
    result = detached.run("up", "-d", detached.file("topology: x\nnodes:\n  a: {run: m:f, colour: red}\n"))
    assert result.code == 2
    assert re.search(r"topo\.yaml:3:\d+: .*colour", result.err), result.err
    assert none_left(detached)


def test_ctrl_c_on_up_d_before_ready_stops_the_starting_run(detached: Topo) -> None:
    text = """
    topology: hang
    nodes:
      a: {run: "hangmod:receive_one"}
      b: {run: "lognodes:count_then_idle"}
    """
    proc = detached.start("up", "-d", detached.file(text))
    detached.wait_for_line(proc, r"started 2 process\(es\)")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "stopped: Ctrl-C" in out
    none_left(detached)  # the daemon and its nodes
    assert not detached.run_dirs()


def test_a_detached_run_outlives_the_session_that_started_it(detached: Topo) -> None:
    # a terminal's session: a shell that ran `topo up -d` and is still there, then is hung up on
    script = f'"{sys.executable}" -m topo up -d "$1" && exec cat'
    shell = subprocess.Popen(["sh", "-c", script, "sh", detached.file(LIVE)], env=detached.env, cwd=str(ROOT),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, start_new_session=True)
    detached.procs.append(shell)  # type: ignore[arg-type]
    lines = detached.wait_for_line(shell, r"^live/")  # type: ignore[arg-type]
    identity = lines[-1].strip()
    os.killpg(shell.pid, signal.SIGHUP)
    os.killpg(shell.pid, signal.SIGKILL)
    shell.wait(timeout=10)
    daemon = supervisor_of(detached, identity)
    assert os.getsid(daemon.pid) != shell.pid
    [entry] = ps_json(detached)
    assert entry["run"] == identity and [n["state"] for n in entry["nodes"]] == ["running"] * 3


def test_attach_follows_the_run_and_exits_with_its_status(detached: Topo, tmp_path: Path) -> None:
    trigger = tmp_path / "fail-now"
    text = f"""
    topology: doomed
    nodes:
      steady: {{run: "lognodes:count_then_idle", args: {{lines: 1}}}}
      victim: {{run: "detachnodes:fail_when_told", args: {{trigger: "{trigger}"}}}}
    """
    _, identity = up_d(detached, text)
    attach = detached.start("attach", "doomed", "--tail", "1", "--no-color")
    detached.wait_for_line(attach, r"\|")  # the last line so far: it follows from here
    trigger.touch()
    out, err = attach.communicate(timeout=30)
    assert attach.returncode == 1, out + err
    assert "victim | victim told to fail" in out
    assert "stopped: victim failed" in out and "(exit 1)" in out
    assert ps_json(detached) == []


def test_ctrl_c_on_attach_stops_the_run_unless_no_stop(detached: Topo) -> None:
    _, identity = up_d(detached, LIVE)
    quiet = detached.start("attach", "--no-stop", "--tail", "1")
    detached.wait_for_line(quiet, r"\|")
    quiet.send_signal(signal.SIGINT)
    quiet.communicate(timeout=30)
    assert quiet.returncode == 130
    assert [e["run"] for e in ps_json(detached)] == [identity]  # only detached from it

    attach = detached.start("attach", identity, "--tail", "1")
    detached.wait_for_line(attach, r"\|")
    attach.send_signal(signal.SIGINT)
    out, err = attach.communicate(timeout=30)
    assert attach.returncode == 130, out + err
    assert "stopped: Ctrl-C" in out and "passed on" in err
    assert ps_json(detached) == []


def test_attach_without_a_running_run_exits_2(detached: Topo) -> None:
    result = detached.run("attach")
    assert result.code == 2 and "no running topology" in result.err


def test_ps_shows_how_and_when_a_finished_node_ended(detached: Topo) -> None:
    _, identity = up_d(detached, MIXED)
    [entry] = ps_json(detached)
    quick, stay = entry["nodes"]
    assert (quick["state"], quick["exit"]) == ("exited", 0)
    assert time.time() - 30 < quick["ended"] <= time.time()
    assert (stay["state"], stay["exit"], stay["ended"]) == ("running", None, None)
    table = detached.run("ps").out
    assert re.search(r"quick\s+quick\s+\d+\s+exited \(0\) [0-9.]+s ago", table), table


def test_ps_lists_the_runs_of_the_current_project_first(detached: Topo, tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    _, first = up_d(detached, LIVE.replace("topology: live", "topology: aaa"), name="alpha/topo.yaml")
    _, second = up_d(detached, LIVE.replace("topology: live", "topology: zzz"), name="beta/topo.yaml")
    entries = ps_json(detached, cwd=tmp_path / "beta")
    assert [(e["run"], e["current_project"]) for e in entries] == [(second, True), (first, False)]
    table = subprocess.run([sys.executable, "-m", "topo", "ps"], env=detached.env, cwd=str(tmp_path / "beta"),
                           capture_output=True, text=True, timeout=30).stdout
    heads = [line for line in table.splitlines() if IDENTITY.match(line.split()[0] if line.split() else "")]
    assert heads[0].startswith(second) and "[other project]" not in heads[0]
    assert heads[1].startswith(first) and heads[1].endswith("[other project]")


def test_a_daemon_that_never_answers_is_stopped_then_killed_at_its_deadlines(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from topo.cli import detach

    monkeypatch.setattr(detach, "LOAD_LIMIT", 0.3)
    # stands for a daemon stuck before it loaded the file: it ignores SIGTERM, says so, and
    # waits on a stdin nobody writes to
    hung = subprocess.Popen([sys.executable, "-c", "import os, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             "os.write(1, b'hello\\n'); os.read(0, 1)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    status_r, status_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        assert hung.stdout is not None
        assert os.read(hung.stdout.fileno(), 100) == b"hello\n"  # its SIGTERM is ignored from here
        with detach._Forward() as forward:
            forward.start(hung.pid)
            started = time.monotonic()
            code = detach._follow(hung, forward, status_r, hung.stdout.fileno(), err_r, run_limit=5, stop_limit=0.3)
        assert code == 1 and time.monotonic() - started < 5
        assert hung.poll() == -signal.SIGKILL
        err = capfd.readouterr().err
        assert "timed out waiting for the file to be loaded and its processes started; stopping the run" in err
        assert "killed the run: it had not ended 0.3s after it was told to stop" in err
    finally:
        hung.kill()
        hung.wait()
        if hung.stdin is not None:
            hung.stdin.close()
        for fd in (status_r, status_w, err_r, err_w):
            os.close(fd)


def test_up_d_runs_the_topology_its_overlays_sets_and_profiles_make(detached: Topo) -> None:
    overlay = detached.file("nodes:\n  worker: {replicas: 3}\n  extra: {run: 'lognodes:count_then_idle', profiles: [more]}\n",
                            "-overlay.yaml")  # a name with a leading dash reaches the run as a file
    _, identity = up_d(detached, LIVE, "-f", overlay, "--set", "talker.args.lines=2", "--profile", "more")
    [entry] = [e for e in ps_json(detached) if e["run"] == identity]
    assert sorted(n["name"] for n in entry["nodes"]) == ["extra", "talker", "worker.0", "worker.1", "worker.2"]
    stopped = detached.run("down", identity, "--timeout", "20", timeout=30)
    assert stopped.code == 0, stopped.err
    talker = detached.run("logs", identity, "talker", "--no-color")
    assert talker.out.splitlines() == ["talker | talker line 0", "talker | talker line 1"], talker.out
