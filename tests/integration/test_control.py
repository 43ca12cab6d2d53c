"""``topo ps``, ``topo down`` and ``topo logs`` against real runs, from other processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import psutil

from conftest import Topo, processes_with_home, wait_until

LONG = """
topology: longrun
nodes:
  blocker: {run: "itnodes:block_forever", sockets: {in: PULL}}
  feeder: {run: "itnodes:block_forever", replicas: 2, sockets: {out: PUSH, in: PULL}}
  src: {run: "itnodes:block_forever", sockets: {in: PULL, out: PUSH}}
links:
  - feeder.out -> blocker.in
  - src.out -> feeder.in
  - feeder.out -> src.in
"""


def test_ps_shows_real_pids_and_states_and_down_stops_the_run(topo: Topo) -> None:
    proc = topo.start("up", topo.file(LONG))
    topo.wait_for_line(proc, "ready in")
    ps = topo.run("ps", "longrun", "--json")
    assert ps.code == 0, ps.err
    [entry] = json.loads(ps.out)
    nodes = {n["name"]: n for n in entry["nodes"]}
    assert sorted(nodes) == ["blocker", "feeder.0", "feeder.1", "src"]
    for node in nodes.values():
        assert node["state"] == "running"
        assert psutil.Process(node["pid"]).ppid() == proc.pid  # a real node process of this run
        assert node["rss"] > 0
    table = topo.run("ps")
    assert re.search(r"feeder\.1\s+feeder\.1\s+\d+\s+running\s+0", table.out), table.out

    down = topo.run("down", "longrun")
    assert down.code == 0, down.err
    assert "stopped by topo down (exit 0)" in down.out
    assert proc.wait(timeout=10) == 0  # `topo up` reports a stop by `topo down` as success
    assert topo.run("ps").out.strip() == "no running topology"
    assert topo.socket_files() == []


def test_two_runs_of_one_topology_get_separate_identities(topo: Topo) -> None:
    path = topo.file(LONG)
    first, second = topo.start("up", path), topo.start("up", path)
    topo.wait_for_line(first, "ready in")
    topo.wait_for_line(second, "ready in")
    entries = json.loads(topo.run("ps", "--json").out)
    assert len({e["run"] for e in entries}) == 2
    ambiguous = topo.run("down", "longrun")
    assert ambiguous.code == 2 and "2 runs match" in ambiguous.err
    for entry in entries:
        assert topo.run("down", entry["run"]).code == 0
    assert first.wait(timeout=10) == 0 and second.wait(timeout=10) == 0


def test_logs_of_a_finished_run_and_following_a_live_one(topo: Topo) -> None:
    proc = topo.start("up", topo.file(LONG))
    topo.wait_for_line(proc, "ready in")
    follower = topo.start("logs", "longrun", "feeder", "-f", "--no-color")
    lines = topo.wait_for_line(follower, "blocking")
    assert re.match(r"feeder\.\d \| blocking", lines[-1]), lines
    topo.run("down", "longrun")
    out, _ = follower.communicate(timeout=10)  # -f ends by itself when the run has ended
    assert follower.returncode == 0
    everything = topo.run("logs", "longrun", "--no-color")
    assert re.search(r"^blocker\s+\| blocking$", everything.out, re.M), everything.out
    assert re.search(r"^topo\s+\| stopped: stopped by topo down", everything.out, re.M), everything.out
    only = topo.run("logs", "longrun", "src", "--no-color")
    assert [re.sub(r"\s+\|", " |", line) for line in only.out.splitlines()] == ["src | blocking"], only.out


def test_a_run_whose_supervisor_died_is_shown_dead_and_cleaned(topo: Topo) -> None:
    proc = topo.start("up", topo.file(LONG))
    topo.wait_for_line(proc, "ready in")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    try:
        wait_until(lambda: topo.socket_files() == [], 5.0, "node processes to clean up")
    except AssertionError:
        raise AssertionError(f"left: {topo.socket_files()}; processes: "
                             f"{[(p.pid, p.cmdline()[-1:]) for p in processes_with_home(topo.home)]}") from None
    ps = topo.run("ps")
    assert re.search(r"longrun/\S+: dead", ps.out), ps.out
    assert topo.run_dirs() == []
    assert topo.run("ps").out.strip() == "no running topology"


#: A stand-in supervisor: its run.json says it is the run 'mute', it reads one request on
#: its control socket and ends without answering, as a supervisor does that receives a
#: request in its last moments (its control socket is closed with what it had not read).
MUTE_SUPERVISOR = """
import json, os, sys, psutil, zmq
run_dir = sys.argv[1]
ctx = zmq.Context()
control = ctx.socket(zmq.ROUTER)
control.bind(f"ipc://{run_dir}/control")
info = {"topology": "mute", "run_id": "20261203-000000-aaaaaa", "pid": os.getpid(),
        "started": psutil.Process().create_time(), "control": f"ipc://{run_dir}/control",
        "log_dir": run_dir, "sockets": run_dir}
with open(f"{run_dir}/run.json.tmp", "w") as f:
    json.dump(info, f)
os.replace(f"{run_dir}/run.json.tmp", f"{run_dir}/run.json")
print("listening", flush=True)
if control.poll(30_000):
    control.recv_multipart()
    print("read a request", flush=True)
os._exit(0)
"""


def test_a_supervisor_that_ends_without_answering_is_said_at_once(topo: Topo) -> None:
    """A command asking a run that ends before it answers says so when it ends, instead
    of waiting its whole timeout (topo restart waits up to 120 s: it hung in CI on a run
    stopping at that moment)."""
    run_dir = topo.home / "runs" / "mute-aaaaaa@local"
    run_dir.mkdir(parents=True, mode=0o700)
    topo.home.joinpath("runs").chmod(0o700)
    fake = subprocess.Popen([sys.executable, "-c", MUTE_SUPERVISOR, str(run_dir)], env=topo.env,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    topo.procs.append(fake)
    topo.wait_for_line(fake, "listening")
    result = topo.run("restart", "c", "--timeout", "100", timeout=30)
    assert result.code == 1, result.out + result.err
    assert "run mute/20261203-000000-aaaaaa ended before it answered" in result.err, result.err
    assert fake.wait(timeout=10) == 0
    assert topo.run("down", "mute").code == 0  # nothing left to stop is not an error
