"""`topo logs` against real runs (--tail, --since, --timestamps, the only run, a node that
has not printed), and every command against a reader that has gone (`| head`): an end by
SIGPIPE, as `cat`'s, without a word."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, Topo

#: How a process ended by SIGPIPE shows in subprocess (a shell shows 141).
BY_SIGPIPE = -signal.SIGPIPE

LIVE = """
topology: live
nodes:
  talker: {run: "lognodes:count_then_idle", args: {lines: 5}}
  worker: {run: "lognodes:count_then_idle", replicas: 2, args: {lines: 2}}
  mute: {run: "lognodes:silent"}
"""

QUICK = """
topology: quick
nodes:
  a: {run: "lognodes:count", args: {lines: 3}}
  b: {run: "lognodes:count", args: {lines: 3}}
  mute: {run: "lognodes:count", args: {lines: 0}}
"""

VALID = """
topology: shapes
nodes:
  src: {run: "itnodes:idle", sockets: {out: PUSH}}
  dst: {run: "itnodes:idle", replicas: 3, sockets: {in: PULL}}
links:
  - src.out -> dst.in
"""


def gone_reader(topo: Topo, *args: str, stream: str = "stdout", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``topo ARGS`` whose stdout (or stderr) is a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    other = "stderr" if stream == "stdout" else "stdout"
    try:
        return subprocess.run([sys.executable, "-m", "topo", *args], env=topo.env, cwd=str(ROOT),
                              stdin=subprocess.DEVNULL, text=True, timeout=timeout,
                              **{stream: write, other: subprocess.PIPE})  # type: ignore[call-overload]
    finally:
        os.close(write)


def plain(text: str) -> list[str]:
    """Lines with the prefix padding squeezed: ``name | text``."""
    return [re.sub(r"^(\S+)\s+\|", r"\1 |", line) for line in text.splitlines()]


def quick_run(topo: Topo) -> None:
    done = topo.run("up", "--no-color", topo.file(QUICK))
    assert done.code == 0, done.out + done.err


# -- a reader that has gone --------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["schema"], ["plan", "FILE"], ["plan", "--json", "FILE"], ["graph", "FILE"],
    ["graph", "--format", "dot", "FILE"], ["check", "FILE"], ["ps"], ["down"],
    ["--help"], ["--version"], ["logs", "--help"],
])
def test_every_command_ends_by_sigpipe_without_a_word(topo: Topo, args: list[str]) -> None:
    path = topo.file(VALID)
    done = gone_reader(topo, *[path if a == "FILE" else a for a in args])
    assert done.returncode == BY_SIGPIPE, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("args", [["check", "missing.yaml"], ["no-such-command"], ["logs", "nothing"]])
def test_an_error_to_a_gone_stderr_ends_by_sigpipe_too(topo: Topo, args: list[str]) -> None:
    done = gone_reader(topo, *args, stream="stderr")
    assert done.returncode == BY_SIGPIPE
    assert done.stdout == ""


def test_logs_of_a_finished_run_to_a_gone_reader(topo: Topo) -> None:
    quick_run(topo)
    done = gone_reader(topo, "logs", "quick")
    assert (done.returncode, done.stderr) == (BY_SIGPIPE, "")


def test_up_with_a_gone_reader_runs_to_its_end(topo: Topo) -> None:
    done = gone_reader(topo, "up", topo.file(QUICK))
    assert (done.returncode, done.stderr) == (0, "")  # the run's status: its display ended, not it
    logs = topo.run("logs", "quick", "--no-color")
    assert "b | b line 2" in plain(logs.out) and "topo | stopped: every node returned after" in logs.out


def test_following_a_quiet_run_ends_once_its_reader_has_gone(topo: Topo) -> None:
    up = topo.start("up", topo.file(LIVE))
    topo.wait_for_line(up, "ready in")
    follower = topo.start("logs", "-f", "--tail", "1", "--no-color")
    assert follower.stdout is not None
    assert follower.stdout.readline()
    follower.stdout.close()  # as `| head -1` does; no line comes after: the run is quiet
    started = time.monotonic()
    assert follower.wait(timeout=10) == BY_SIGPIPE
    assert time.monotonic() - started < 5
    assert follower.stderr is not None and follower.stderr.read() == ""


# -- topo logs ---------------------------------------------------------------------------


def test_logs_options_on_a_live_run(topo: Topo) -> None:
    up = topo.start("up", topo.file(LIVE))
    topo.wait_for_lines(up, ["talker line 4", "worker.0 line 1", "worker.1 line 1", "ready in"])

    everything = topo.run("logs", "--no-color")  # the only run: no TOPOLOGY needed
    assert everything.code == 0, everything.err
    lines = plain(everything.out)
    assert "talker | talker line 4" in lines and "worker.1 | worker.1 line 1" in lines
    assert plain(topo.run("logs", "live", "talker", "--tail", "2", "--no-color").out) == [
        "talker | talker line 3", "talker | talker line 4"]
    assert plain(topo.run("logs", "talker", "-n", "1", "--no-color").out) == ["talker | talker line 4"]
    workers = plain(topo.run("logs", "worker", "--no-color").out)  # both instances
    assert sorted(workers) == [f"worker.{i} | worker.{i} line {n}" for i in (0, 1) for n in (0, 1)]
    assert len(plain(topo.run("logs", "--tail", "3").out)) == 3

    stamped = topo.run("logs", "talker", "--timestamps", "--no-color").out.splitlines()
    assert len(stamped) == 5
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
    assert all(re.fullmatch(rf"talker \| {stamp} talker line \d", line) for line in stamped), stamped
    third = stamped[2].split()[2]
    since = topo.run("logs", "talker", "--since", third, "--no-color")
    assert plain(since.out) == [f"talker | talker line {n}" for n in (2, 3, 4)]
    assert len(plain(topo.run("logs", "talker", "--since", "1h").out)) == 5
    assert topo.run("logs", "talker", "--since", "2099-01-01T00:00:00").out == ""
    wrong = topo.run("logs", "--since", "yesterday")
    assert wrong.code == 2 and "neither a duration" in wrong.err

    mute = topo.run("logs", "mute", "--no-color")
    assert (mute.code, mute.out, mute.err) == (0, "", "topo: mute has no output yet\n")
    typo = topo.run("logs", "live", "wroker")
    assert typo.code == 2
    assert re.search(r"no node 'wroker' in live/\S+; did you mean 'worker'\? its nodes: talker, "
                     r"worker\.0, worker\.1, mute", typo.err), typo.err
    assert topo.run("down").code == 0
    assert up.wait(timeout=20) == 0

    after = topo.run("logs", "mute")
    assert (after.code, after.err) == (0, "topo: mute printed nothing\n")


def test_logs_without_a_topology_when_there_are_several(topo: Topo) -> None:
    quick_run(topo)
    up = topo.start("up", topo.file(LIVE))
    topo.wait_for_line(up, "ready in")
    running = topo.run("logs", "--no-color")  # the run going on
    assert "talker | talker line 0" in plain(running.out), running.out
    assert topo.run("down").code == 0
    assert up.wait(timeout=20) == 0
    several = topo.run("logs")
    assert several.code == 2
    assert re.search(r"logs of 2 topologies: live \(last run \S+\), quick \(last run \S+\); "
                     r"name one: topo logs TOPOLOGY", several.err), several.err
    assert "a | a line 2" in plain(topo.run("logs", "quick", "--no-color").out)
