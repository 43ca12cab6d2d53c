"""``topo up`` end to end: real processes, real sockets, the installed command."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, Topo, processes_with_home, wait_until

TOPOLOGIES = sorted(glob.glob(str(ROOT / "topologies" / "*.yaml")))


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: Path(p).stem)
def test_every_shipped_topology_runs_to_the_end(topo: Topo, path: str) -> None:
    result = topo.run("up", path, "--ready-timeout", "30")
    assert result.code == 0, result.out + result.err
    assert "ready in" in result.out, result.out
    assert "Traceback" not in result.out + result.err
    assert topo.socket_files() == []
    assert topo.run_dirs() == []


def test_output_of_two_nodes_in_one_process_is_attributed(topo: Topo) -> None:
    path = topo.file("""
        topology: talk
        nodes:
          alpha: {run: "itnodes:talk", process: shared, sockets: {out: PUSH}}
          beta: {run: "itnodes:talk", process: shared, sockets: {in: PULL}}
        links: [alpha.out -> beta.in]
    """)
    result = topo.run("up", path, "--no-color")
    assert result.code == 0, result.out + result.err
    for name in ("alpha", "beta"):
        for i in range(3):
            assert re.search(rf"^{name}\s+\| {name} line {i}$", result.out, re.M), result.out
            assert re.search(rf"^{name}\s+\| {name} err {i}$", result.out, re.M), result.out
            assert re.search(rf"^{name}\s+\| INFO {name} log {i}$", result.out, re.M), result.out
    logs = list((topo.home / "logs" / "talk").glob("*/alpha.log"))
    assert logs and "alpha line 2" in logs[0].read_text()


def test_a_raising_node_fails_the_run_with_its_traceback(topo: Topo) -> None:
    path = topo.file("""
        topology: raising
        nodes:
          bad: {run: "itnodes:boom", sockets: {out: PUSH}}
          other: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [bad.out -> other.in]
    """)
    result = topo.run("up", path)
    assert result.code == 1, result.out + result.err
    assert re.search(r"^bad\s+\| .*RuntimeError: boom from bad", result.out, re.M), result.out
    assert "bad failed" in result.out
    assert "did not stop" not in result.out, result.out
    assert topo.socket_files() == []


def test_an_import_failure_fails_at_once(topo: Topo) -> None:
    path = topo.file("""
        topology: noimport
        nodes:
          bad: {run: "no_such_module_xyz:main", sockets: {out: PUSH}}
          other: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [bad.out -> other.in]
    """)
    # at run time: `topo up` without --no-run-check refuses the file (test_cli_runcheck)
    result = topo.run("up", "--no-run-check", path, "--ready-timeout", "60")
    assert result.code == 1, result.out + result.err
    assert "No module named 'no_such_module_xyz'" in result.out
    assert "ready in" not in result.out


def test_a_node_not_ready_by_the_deadline_is_named_with_its_peer(topo: Topo) -> None:
    path = topo.file("""
        topology: hang
        nodes:
          pub: {run: "itnodes:publish_once", sockets: {out: PUB}}
          stuck: {run: "hangmod:receive_one", sockets: {in: {type: SUB, subscribe: [""]}}}
        links: [pub.out -> stuck.in]
    """)
    result = topo.run("up", path, "--ready-timeout", "4")
    assert result.code == 1, result.out + result.err
    # stuck's sockets were wired while its module loaded: pub's gate opened, and what it
    # sent waited in stuck's queue; stuck itself is named with what it still waits for
    assert re.search(r"stuck failed: not ready within 4s\n.*waiting: stuck: its code \(hangmod\) "
                     r"is still being imported", result.out), result.out
    assert "pub returned" in result.out, result.out
    assert topo.socket_files() == []


GATE_TIMEOUT = """
topology: gatehang
nodes:
  pub: {run: "itnodes:publish_once", sockets: {out: PUB}}
  sub:
    run: "itnodes:receive_one"
    sockets: {in: {type: SUB, subscribe: ["x"]}}
links:
  - {from: pub.out, to: sub.in, transport: tcp}
hosts:
  local: {address: 127.0.0.1}
"""


def test_a_gate_that_cannot_open_names_the_socket_and_what_it_waits_for(topo: Topo) -> None:
    # the subscriber's socket drops every subscription (a zero receive-side filter is not
    # available, so an absurdly small max message size stands for a broken peer instead)
    path = topo.file(GATE_TIMEOUT.replace('subscribe: ["x"]', 'subscribe: ["x"], options: {maxmsgsize: 0}')
                     .replace("sockets: {out: PUB}", "sockets: {out: {type: PUB, options: {maxmsgsize: 0}}}"))
    result = topo.run("up", path, "--ready-timeout", "2")
    assert result.code == 1, result.out + result.err
    assert "not ready within 2s" in result.out, result.out
    assert "did not stop" not in result.out, result.out  # a failed gate lingers on nothing
    assert re.search(r"waiting: pub: socket 'out': subscriptions 'x' not seen yet \(from sub.in\)", result.out), result.out


BLOCKED = """
topology: blocked
nodes:
  blocker: {run: "itnodes:block_forever", sockets: {in: PULL}}
  async_blocker: {run: "itnodes:async_block", sockets: {in: PULL}}
  feeder: {run: "itnodes:serve", sockets: {out: PUSH, out2: PUSH, rep: REP}}
  client: {run: "itnodes:block_forever", sockets: {in: PULL, req: REQ}}
links:
  - feeder.out -> blocker.in
  - feeder.out2 -> async_blocker.in
  - client.req -> feeder.rep
  - feeder.out -> client.in
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_blocked_nodes_cleanly(topo: Topo, sig: signal.Signals, code: int) -> None:
    proc = topo.start("up", topo.file(BLOCKED), "--grace", "5")
    topo.wait_for_line(proc, "ready in")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == code, out + err
    assert "SIGTERM" not in out.split("stopped:")[0] or sig == signal.SIGTERM
    assert "did not stop" not in out, out
    assert topo.socket_files() == [] and topo.run_dirs() == []
    assert processes_with_home(topo.home) == []


def test_a_node_that_returns_because_the_run_stops_is_stopped_not_returned(topo: Topo) -> None:
    """``while node.sleep(...)`` ends when the stop comes: the stop ended it, and the final
    table and outcome.json say ``stopped`` (it once said ``returned``/``exited``)."""
    proc = topo.start("up", topo.file("""
topology: paced
nodes:
  pacer: {run: "itnodes:pace", sockets: {out: PUSH}}
  sink: {run: "itnodes:block_forever", sockets: {in: PULL}}
links: [pacer.out -> sink.in]
"""))
    topo.wait_for_line(proc, "ready in")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert "pacer returned" not in out, out
    assert re.search(r"pacer +stopped", out), out
    [path] = (topo.home / "logs" / "paced").glob("*/outcome.json")
    assert json.loads(path.read_text())["nodes"]["pacer"] == "stopped", path.read_text()


def test_a_node_ignoring_the_stop_is_killed_after_the_grace_period(topo: Topo) -> None:
    path = topo.file("""
        topology: stubborn
        nodes:
          stubborn: {run: "itnodes:ignore_stop", sockets: {out: PUSH}}
          other: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [stubborn.out -> other.in]
    """)
    proc = topo.start("up", path, "--grace", "0.5")
    topo.wait_for_line(proc, "ignoring")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert topo.socket_files() == [] and topo.run_dirs() == []
    assert processes_with_home(topo.home) == []


def test_killing_the_supervisor_leaves_no_orphan_and_no_socket_file(topo: Topo) -> None:
    proc = topo.start("up", topo.file(BLOCKED))
    topo.wait_for_line(proc, "ready in")
    nodes = [p for p in processes_with_home(topo.home) if p.pid != proc.pid]
    assert len(nodes) >= 4
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until(lambda: not any(_alive(p) for p in nodes), 2.0, "node processes to exit")
    wait_until(lambda: topo.socket_files() == [], 2.0, "ipc files to be removed")
    # the next run cleans the directory of the dead one
    again = topo.run("up", topo.file("""
        topology: after
        nodes:
          a: {run: "itnodes:publish_once", sockets: {out: PUB}}
          b: {run: "itnodes:receive_one", sockets: {in: {type: SUB, subscribe: [""]}}}
        links: [a.out -> b.in]
    """, "after.yaml"))
    assert again.code == 0, again.out + again.err
    assert topo.run_dirs() == []


def test_a_node_process_stuck_at_its_end_still_ends_with_a_killed_supervisor(topo: Topo) -> None:
    """The death signal only asks the process's own code to end it; when that code cannot
    (here a thread holds the output lock its end needs), the run's keeper ends the process's
    group after the grace period. Before, the process ran on after topo up's SIGKILL, for
    good."""
    proc = topo.start("up", topo.file("""
        topology: stuckend
        nodes:
          n: {run: "itnodes:stuck_at_its_end"}
    """), "--grace", "1")
    topo.wait_for_line(proc, r"n +\| running")
    nodes = [p for p in processes_with_home(topo.home) if p.pid != proc.pid]
    assert nodes
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # the keeper's SIGTERM, then its SIGKILL after the grace period (1 s)
    wait_until(lambda: not any(_alive(p) for p in nodes), 10.0, "the node's process to end")


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_process_dying_is_reported_as_its_nodes_failing(topo: Topo) -> None:
    path = topo.file("""
        topology: dies
        nodes:
          dier: {run: "itnodes:die_hard", sockets: {out: PUSH}}
          other: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [dier.out -> other.in]
    """)
    result = topo.run("up", path)
    assert result.code == 1, result.out + result.err
    assert "dier failed: its process dier exited with status 3" in result.out, result.out
    assert os.path.isdir(str(topo.home / "logs" / "dies"))


def test_remote_hosts_without_a_local_one_are_refused_before_anything_starts(topo: Topo) -> None:
    """The agents must dial the supervisor somewhere: without a `local` host there is no
    address for it (addresses below are never contacted: the run stops before)."""
    path = topo.file("""\
        topology: nolocal
        hosts:
          a: {address: 192.0.2.1, launch: [ssh, a]}
          b: {address: 192.0.2.2, launch: [ssh, b]}
        nodes:
          x: {run: itnodes:vent, host: a, sockets: {out: PUSH}}
          y: {run: itnodes:collect, host: b, sockets: {in: PULL}}
        links: [x.out -> y.in]
        """)
    result = topo.run("up", path)
    assert result.code == 2, result.out + result.err
    assert "needs a host named 'local'" in result.err
    assert "Traceback" not in result.err + result.out
    assert topo.run_dirs() == []


def test_a_hub_dialled_by_many_listens_with_room_for_all(topo: Topo) -> None:
    """libzmq listens with a backlog of 100: 120 peers dialling one ipc endpoint at once
    would see some turned away and retrying only after the 100 ms reconnect interval."""
    path = topo.file("""
        topology: hub
        nodes:
          hub: {run: itnodes:say_backlog, sockets: {in: PULL}}
          many: {run: itnodes:idle, process: many, replicas: 120, sockets: {out: PUSH}}
          few: {run: itnodes:say_backlog, sockets: {in: {type: PULL, options: {backlog: 7}}}}
          one: {run: itnodes:idle, sockets: {out: PUSH}}
        links: [many.out -> hub.in, one.out -> few.in]
    """)
    result = topo.run("up", path, timeout=120)
    assert result.code == 0, result.out + result.err
    assert re.search(r"^hub +\| backlog 136$", result.out, re.M), result.out
    assert re.search(r"^few +\| backlog 7$", result.out, re.M), result.out  # the user's own wins
