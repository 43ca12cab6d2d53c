"""``topo apply`` and ``topo restart`` across hosts: network namespaces stand for machines,
agents are launched with ``ip netns exec`` (as in test_hosts), and the counting pipeline
of test_edit runs through each change: feed (here, told through an external PULL) →
workers → tally, which prints each batch once all of it came, with the workers' pids.

What is promised, and checked: a batch sent once an apply has returned arrives whole,
through the processes the new plan says, on the hosts it says; a batch in flight through
processes an apply does not touch arrives whole too; every process of a host the plan no
longer uses has ended, and its agent with them, when the apply returns. A batch in flight
through a process that an apply restarts (moves) is not promised: what its queues held
dies with it, as for ``topo restart``."""

from __future__ import annotations

import re
import signal
import subprocess
from typing import Iterator

import psutil
import pytest

from conftest import Topo
from hostnet import Network, host_network, hosts_block, hosts_emptied, requires_netns
from test_edit import pids, tell

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net2() -> Iterator[Network]:
    with host_network(2) as net:
        yield net


def pipeline(net: Network, ctl: str, *, workers: str = "h1", extra: str = "",
             launch: dict[str, list[str]] | None = None) -> str:
    """feed (here) → 2 workers (on ``workers``; "local": here) → tally (here)."""
    return f"""
topology: xedit
{hosts_block(net, launch)}
nodes:
  feed:
    run: editnodes:feed
    sockets:
      ctl: {{type: PULL, external: {{bind: "ipc://{ctl}"}}}}
      out: PUSH
  worker: {{run: editnodes:relay, host: {workers}, replicas: 2, sockets: {{in: PULL, out: PUSH}}}}
  tally: {{run: editnodes:tally, sockets: {{in: PULL}}}}
{extra}
links: [feed.out -> worker.in, worker.out -> tally.in]
"""


def in_namespace(net: Network, index: int) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", net.hosts[index].name], capture_output=True, text=True, check=True)
    return {int(p) for p in out.stdout.split()}


def agent_of(net: Network, index: int) -> int | None:
    """The agent running in one namespace, if any."""
    for pid in in_namespace(net, index):
        try:
            if "topo.hosts.agent" in " ".join(psutil.Process(pid).cmdline()):
                return pid
        except psutil.Error:
            continue
    return None


def applied(topo: Topo, path: str) -> str:
    result = topo.run("apply", path, timeout=90)
    assert result.code == 0, result.out + result.err
    assert re.search(r"^xedit/\S+: applied in \d+\.\d\ds$", result.out, re.M), result.out
    return result.out


def batch(topo: Topo, proc: "subprocess.Popen[str]", ctl: str, number: int, count: int) -> set[int]:
    """Sends a batch and waits for all of it at the tally: the pids it came through."""
    tell(ctl, f"{number} {count}")
    lines = topo.wait_for_line(proc, rf"tally\S* +\| batch {number} complete {count}")
    assert not [ln for ln in lines if DISTRUST in ln], "".join(lines)
    return {int(p) for p in lines[-1].split(" from ")[1].split()}


#: What the supervisor says of an agent that speaks for another host: never of a node that
#: an apply moved or removed, whose old process has its last words.
DISTRUST = "sent an event about a node or process of another host"


def stop(proc: "subprocess.Popen[str]", net: Network) -> None:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and DISTRUST not in out, out
    hosts_emptied(net, 10)


def test_a_host_added_gets_its_agent_and_nodes_and_a_host_removed_is_left_empty_the_pipeline_untouched(
        topo: Topo, net2: Network) -> None:
    ctl = str(topo.home / "ctl")
    text = pipeline(net2, ctl)
    proc = topo.start("up", topo.file(text), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "xedit")
    assert agent_of(net2, 1) is None  # h2 runs nothing: no agent
    h1_agent = agent_of(net2, 0)

    # two nodes on h2, of their own: the pipeline's processes and links are not touched
    pair = """  ping: {run: editnodes:once, host: h2, args: {batch: 9}, sockets: {out: PUSH}}
  pong: {run: editnodes:hold, host: h2, sockets: {in: PULL}}"""
    added = pipeline(net2, ctl, extra=pair).replace("links: [", "links: [ping.out -> pong.in, ")
    tell(ctl, "1 5000")  # in flight through the remote workers while h2 comes up
    out = applied(topo, topo.file(added, "added.yaml"))
    assert "! host h2 added: its agent is launched" in out, out
    assert "+ process ping" in out and "+ process pong" in out and "↻" not in out, out
    topo.wait_for_line(proc, r"tally\S* +\| batch 1 complete 5000")
    assert batch(topo, proc, ctl, 2, 30)
    after = pids(topo, "xedit")
    assert {n: after[n] for n in before} == before
    h2_agent = agent_of(net2, 1)
    assert h2_agent is not None and {after["ping"][0], after["pong"][0]} <= in_namespace(net2, 1)
    assert agent_of(net2, 0) == h1_agent

    # back: h2's processes stop, then its agent; nothing is left there when apply returns
    out = applied(topo, topo.file(text, "back.yaml"))
    assert "! host h2 no longer used: its agent is stopped once its processes have ended" in out, out
    assert "- process ping" in out and "- process pong" in out, out
    assert in_namespace(net2, 1) == set() and not psutil.pid_exists(h2_agent)
    assert agent_of(net2, 0) == h1_agent
    assert {n: pids(topo, "xedit")[n] for n in before} == before
    assert batch(topo, proc, ctl, 3, 30)
    stop(proc, net2)


def test_nodes_on_a_host_in_use_restart_start_and_stop_through_its_agent_and_topo_restart_them(
        topo: Topo, net2: Network) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(net2, ctl)), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "xedit")
    agent = agent_of(net2, 0)

    # topo restart of a node on h1: a new process there, the rest untouched
    result = topo.run("restart", "worker.1")
    assert result.code == 0, result.out + result.err
    assert re.search(r"^restarted worker\.1 \(process worker\.1 on h1, pid \d+\)$", result.out, re.M), result.out
    now = pids(topo, "xedit")
    assert now["worker.1"][0] != before["worker.1"][0] and now["worker.1"][0] in in_namespace(net2, 0)
    assert {n: now[n] for n in ("feed", "worker.0", "tally")} == {n: before[n] for n in ("feed", "worker.0", "tally")}
    assert batch(topo, proc, ctl, 1, 300) == {now["worker.0"][0], now["worker.1"][0]}

    # args changed: both workers restart on h1 through the same agent, with the new args
    args = pipeline(net2, ctl).replace("run: editnodes:relay,", "run: editnodes:relay, args: {v: 2},")
    out = applied(topo, topo.file(args, "args.yaml"))
    assert "↻ process worker.0 (worker: args)" in out and "↻ process worker.1 (worker: args)" in out, out
    now = pids(topo, "xedit")
    assert {now["worker.0"][0], now["worker.1"][0]} <= in_namespace(net2, 0)
    assert now["worker.0"][0] != before["worker.0"][0] and now["feed"] == before["feed"]
    assert batch(topo, proc, ctl, 2, 300) == {now["worker.0"][0], now["worker.1"][0]}

    # a third worker: started there by the agent, from the share it was sent
    three = args.replace("replicas: 2", "replicas: 3")
    out = applied(topo, topo.file(three, "three.yaml"))
    assert "+ process worker.2" in out, out
    now = pids(topo, "xedit")
    assert now["worker.2"][0] in in_namespace(net2, 0)
    assert batch(topo, proc, ctl, 3, 3) == {now[f"worker.{i}"][0] for i in range(3)}

    # and removed again: its process ends, the agent stays for the others
    out = applied(topo, topo.file(args, "two.yaml"))
    assert "- process worker.2" in out, out
    assert not psutil.pid_exists(now["worker.2"][0])
    assert agent_of(net2, 0) == agent and "worker.2" not in pids(topo, "xedit")
    assert batch(topo, proc, ctl, 4, 300) == {now["worker.0"][0], now["worker.1"][0]}

    # the supervisor's own address cannot change under its agents: refused, nothing changed
    kept = pids(topo, "xedit")
    moved = args.replace(f"local: {{address: {net2.local_address}}}", "local: {address: 10.213.255.254}")
    result = topo.run("apply", topo.file(moved, "local.yaml"))
    assert result.code == 2 and "the local host's address changed" in result.err, result.out + result.err
    assert pids(topo, "xedit") == kept
    stop(proc, net2)


def test_nodes_moved_to_another_host_and_back_restart_there_and_the_host_is_left_empty(
        topo: Topo, net2: Network) -> None:
    ctl = str(topo.home / "ctl")
    here = pipeline(net2, ctl, workers="local")
    proc = topo.start("up", topo.file(here), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    assert batch(topo, proc, ctl, 1, 300)
    assert agent_of(net2, 0) is None

    out = applied(topo, topo.file(pipeline(net2, ctl, workers="h1"), "moved.yaml"))
    assert "↻ process worker.0 (worker: host; " in out and "! host h1 added: its agent is launched" in out, out
    assert "~ link feed.out -> worker.0.in (tcp; transport ipc → tcp, secure False → True)" in out, out
    now = pids(topo, "xedit")
    workers = {now["worker.0"][0], now["worker.1"][0]}
    assert workers <= in_namespace(net2, 0)
    assert batch(topo, proc, ctl, 2, 300) == workers

    out = applied(topo, topo.file(here, "back.yaml"))
    assert "! host h1 no longer used" in out, out
    assert in_namespace(net2, 0) == set()
    now = pids(topo, "xedit")
    assert not {now["worker.0"][0], now["worker.1"][0]} & workers
    assert batch(topo, proc, ctl, 3, 300) == {now["worker.0"][0], now["worker.1"][0]}
    stop(proc, net2)


def test_a_changed_host_definition_restarts_its_nodes_under_a_new_agent(topo: Topo, net2: Network) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(net2, ctl)), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "xedit")
    agent = agent_of(net2, 0)

    launch = {"h1": ["env", "TOPO_TEST_RELAUNCHED=1", *net2.hosts[0].launch()]}
    out = applied(topo, topo.file(pipeline(net2, ctl, launch=launch), "launch.yaml"))
    assert "! host h1 changed (launch): its processes restart under a new agent" in out, out
    assert "↻ process worker.0 (host h1 changed)" in out, out
    assert "↻ process feed" not in out and "↻ process tally" not in out, out
    new_agent = agent_of(net2, 0)
    assert new_agent is not None and new_agent != agent and not psutil.pid_exists(agent or 0)
    assert psutil.Process(new_agent).environ().get("TOPO_TEST_RELAUNCHED") == "1"
    now = pids(topo, "xedit")
    assert {now["worker.0"][0], now["worker.1"][0]} <= in_namespace(net2, 0)
    assert now["feed"] == before["feed"] and now["tally"] == before["tally"]
    assert batch(topo, proc, ctl, 1, 300) == {now["worker.0"][0], now["worker.1"][0]}
    stop(proc, net2)


def test_a_link_in_place_for_a_process_on_another_host_restarts_it_instead_and_the_link_carries(
        topo: Topo, net2: Network) -> None:
    """Links are made in place by processes of this host only: a remote worker whose PUSH
    gains a peer is restarted with its new share (said so), not refused."""
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(net2, ctl)), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "xedit")
    audit = "  audit: {run: editnodes:count, host: h1, sockets: {in: {type: PULL, bind: true}}}"
    edited = pipeline(net2, ctl, extra=audit).replace("links: [", "links: [worker.out -> audit.in, ")
    out = applied(topo, topo.file(edited, "audit.yaml"))
    assert "+ process audit" in out, out
    assert re.search(r"↻ process worker\.0 \(link worker\.0\.out -> audit\.in: not in place, process worker\.0 "
                     r"runs on host h1\)", out), out
    after = pids(topo, "xedit")
    assert after["worker.0"] != before["worker.0"] and after["feed"] == before["feed"]
    assert after["audit"][0] in in_namespace(net2, 0)
    tell(ctl, "1 40")
    topo.wait_for_line(proc, r"audit\S* +\| batch 1 has [1-9]\d* dup 0")  # the new link carries
    stop(proc, net2)


def test_a_curve_server_admits_a_new_host_in_place_its_process_untouched(topo: Topo, net2: Network) -> None:
    """The workers move from h1 to h2, a host new to the run: feed and tally, which bind the
    CURVE endpoints h2's workers dial, are given h2's key in place (they were restarted
    for it, their state and connections lost); what flows reaches them through h2."""
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(net2, ctl)), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "xedit")
    assert batch(topo, proc, ctl, 1, 300)

    out = applied(topo, topo.file(pipeline(net2, ctl, workers="h2"), "h2.yaml"))
    assert "! process feed admits new host h2 in place (its CURVE server is given the key)" in out, out
    assert "! process tally admits new host h2 in place (its CURVE server is given the key)" in out, out
    assert "↻ process feed" not in out and "↻ process tally" not in out, out
    now = pids(topo, "xedit")
    assert now["feed"] == before["feed"] and now["tally"] == before["tally"]
    workers = {now["worker.0"][0], now["worker.1"][0]}
    assert workers <= in_namespace(net2, 1)
    assert batch(topo, proc, ctl, 2, 300) == workers
    stop(proc, net2)
