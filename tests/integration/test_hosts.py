"""Runs across hosts: network namespaces stand for machines, the real ``topo`` command runs
the file, and agents are launched with ``ip netns exec`` (or ssh, in one test)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import zmq

from conftest import HERE, ROOT, Topo, wait_until
from hostnet import Network, host_network, hosts_block, hosts_emptied, namespace_pids, requires_netns, sshd_in_namespace

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net3() -> Iterator[Network]:
    with host_network(3) as net:
        yield net


def agent_pid(net: Network, index: int) -> int:
    """The agent process inside one namespace."""
    out = subprocess.run(["ip", "netns", "pids", net.hosts[index].name], capture_output=True, text=True, check=True)
    for pid in map(int, out.stdout.split()):
        try:
            if "topo.hosts.agent" in " ".join(psutil.Process(pid).cmdline()):
                return pid
        except psutil.Error:
            continue
    raise AssertionError(f"no agent in {net.hosts[index].name}")


def pipeline(net: Network) -> str:
    return f"""
        topology: xpipe
        {hosts_block(net)}
        nodes:
          vent: {{run: itnodes:vent, host: h1, args: {{tasks: 30}}, sockets: {{out: PUSH}}}}
          worker: {{run: itnodes:work, host: h2, replicas: 3, sockets: {{in: PULL, out: PUSH}}}}
          sink: {{run: itnodes:collect, host: h3, args: {{tasks: 30}}, on_exit: stop, sockets: {{in: PULL}}}}
        links:
          - vent.out -> worker.in
          - worker.out -> sink.in
        """


def test_a_pipeline_over_three_hosts_runs_fair_encrypted_and_leaves_nothing(topo: Topo, net3: Network) -> None:
    path = topo.file(pipeline(net3).replace("\n        ", "\n"))
    plan = json.loads(topo.run("plan", path, "--json").out)
    assert {ln["transport"] for ln in plan["links"]} == {"tcp"}
    assert all(ln["secure"] for ln in plan["links"])
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 0, result.out + result.err
    counts = re.search(r"sink@h3 +\| counts (.*)", result.out)
    assert counts, result.out
    # the gate held the vent until all three workers were connected: a fair share each
    assert counts.group(1).split() == ["worker.0=10", "worker.1=10", "worker.2=10"]
    assert "all 5 node(s) ready" in result.out
    assert topo.socket_files() == [] and topo.run_dirs() == []
    hosts_emptied(net3, 10)


def test_the_first_message_crosses_hosts_to_slow_subscribers(topo: Topo, net3: Network) -> None:
    path = topo.file(f"""
        topology: xpub
        {hosts_block(net3)}
        nodes:
          pub: {{run: itnodes:publish_once, host: h1, sockets: {{out: PUB}}}}
          sub: {{run: slowmod:receive_one, host: h2, replicas: 2, sockets: {{in: {{type: SUB, subscribe: [t]}}}}}}
          near: {{run: slowmod:receive_one, sockets: {{in: {{type: SUB, subscribe: [t]}}}}}}
        links:
          - pub.out -> sub.in
          - pub.out -> near.in
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 0, result.out + result.err
    for name in ("sub.0@h2", "sub.1@h2", "near@local"):
        assert re.search(rf"^{re.escape(name)} +\| got pub$", result.out, re.M), result.out


def test_ps_logs_and_down_cover_remote_nodes(topo: Topo, net3: Network) -> None:
    path = topo.file(f"""
        topology: xps
        {hosts_block(net3)}
        nodes:
          pub: {{run: itnodes:publish_forever, host: h1, sockets: {{out: PUB}}}}
          show: {{run: itnodes:print_received, host: h2, sockets: {{in: {{type: SUB, subscribe: [""]}}}}}}
        links:
          - pub.out -> show.in
        """.replace("\n        ", "\n"))
    proc = topo.start("up", path, "--ready-timeout", "30")
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    ps = json.loads(topo.run("ps", "xps", "--json").out)
    nodes = {n["name"]: n for n in ps[0]["nodes"]}
    assert nodes["pub"]["host"] == "h1" and nodes["show"]["host"] == "h2"
    assert nodes["show"]["state"] == "running" and nodes["show"]["pid"]
    assert psutil.Process(nodes["show"]["pid"]).cmdline()  # the agent's pid for it is real
    table = topo.run("ps", "xps").out
    assert "HOST" in table and " h2 " in table
    logs = topo.run("logs", "xps", "show").out
    assert "received tick" in logs
    assert topo.run("down", "xps").code == 0
    assert proc.wait(timeout=30) == 0
    hosts_emptied(net3, 10)


def restarting_pair(net: Network, restart: str) -> str:
    return f"""
        topology: xlost
        {hosts_block(net)}
        nodes:
          pub: {{run: itnodes:publish_forever, host: h1, sockets: {{out: PUB}}}}
          show: {{run: itnodes:print_received, host: h2, restart: {restart}, sockets: {{in: {{type: SUB, subscribe: [""]}}}}}}
        links:
          - pub.out -> show.in
        """.replace("\n        ", "\n")


def test_a_killed_agent_fails_its_nodes_and_they_restart_when_the_host_is_back(topo: Topo, net3: Network) -> None:
    proc = topo.start("up", topo.file(restarting_pair(net3, "on-failure")), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    old_agent = agent_pid(net3, 1)
    psutil.Process(old_agent).kill()
    lines = topo.wait_for_line(proc, r"show ready again \(restart 1\)")
    text = "".join(lines)
    assert re.search(r"host h2 lost: its agent .* exited with status -9", text), text
    assert "restarting in" in text
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    assert agent_pid(net3, 1) != old_agent
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    hosts_emptied(net3, 10)


def test_a_killed_agent_without_restart_fails_the_run(topo: Topo, net3: Network) -> None:
    proc = topo.start("up", topo.file(restarting_pair(net3, "no")), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    psutil.Process(agent_pid(net3, 1)).kill()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert re.search(r"show failed: its host h2 was lost", out), out
    hosts_emptied(net3, 10)


def test_a_node_process_stuck_at_its_end_still_ends_with_its_killed_agent(topo: Topo, net3: Network) -> None:
    """Its death signal only asks its own code to end it, which cannot (a thread holds the
    output lock its end needs): the agent's keeper ends its group after the grace period.
    Before, it ran on inside the host after the agent's SIGKILL, for good."""
    text = f"""
        topology: stuckremote
        {hosts_block(net3)}
        nodes:
          n: {{run: itnodes:stuck_at_its_end, host: h2}}
        """.replace("\n        ", "\n")
    proc = topo.start("up", topo.file(text), "--ready-timeout", "30", "--grace", "1")
    topo.wait_for_line(proc, r"^n(@h2)? +\| running")
    psutil.Process(agent_pid(net3, 1)).kill()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    hosts_emptied(net3, 10)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP])
def test_agents_stop_their_nodes_when_the_supervisor_is_gone(topo: Topo, net3: Network, how: signal.Signals) -> None:
    """SIGKILL: the agents see their standard input close. SIGSTOP: the supervisor is still
    there but silent, as behind a broken network: the agents' heartbeat notices."""
    proc = topo.start("up", topo.file(restarting_pair(net3, "no")), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    assert namespace_pids(net3)
    proc.send_signal(how)
    try:
        started = time.monotonic()
        hosts_emptied(net3, 15)
        took = time.monotonic() - started
        assert took < (4 if how is signal.SIGKILL else 12), took
    finally:
        proc.send_signal(signal.SIGCONT)


HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL \
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH


def wait_refused(monitor: zmq.Socket[bytes], what: str, timeout: float = 10) -> None:
    """Until ``monitor`` (a stranger's socket's) reports a failed handshake: the stranger
    reached the endpoint and was turned away, so that nothing arriving means something."""
    from zmq.utils.monitor import recv_monitor_message

    deadline = time.monotonic() + timeout
    seen: list[int] = []
    while monitor.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        event = recv_monitor_message(monitor)["event"]
        seen.append(event)
        assert event != zmq.EVENT_HANDSHAKE_SUCCEEDED, f"{what}: a stranger completed a handshake"
        if event & HANDSHAKE_FAILED:
            return
        if time.monotonic() >= deadline:
            break
    raise AssertionError(f"{what}: no failed handshake within {timeout}s (events {seen})")


def test_a_stranger_without_the_keys_gets_nothing_and_injects_nothing(topo: Topo, net3: Network) -> None:
    path = topo.file(f"""
        topology: xkeys
        {hosts_block(net3)}
        nodes:
          pub: {{run: itnodes:publish_forever, host: h1, sockets: {{out: PUB}}}}
          sink: {{run: itnodes:say_endpoint_and_print, host: h2, sockets: {{in: {{type: SUB, subscribe: [""], bind: true}}}}}}
          box: {{run: itnodes:say_endpoint_and_print, host: h2, sockets: {{in: {{type: PULL, bind: true}}}}}}
          feed: {{run: itnodes:send_numbers, host: h3, sockets: {{out: PUSH}}}}
        links:
          - pub.out -> sink.in
          - feed.out -> box.in
        """.replace("\n        ", "\n"))
    proc = topo.start("up", path, "--ready-timeout", "30")
    # each node's lines in order, but pub's (relayed by h1's agent) and sink's (by h2's) in
    # no fixed order: sink may say what it received before pub's endpoint line is in
    text = "".join(topo.wait_for_lines(proc, [r"pub@h1 +\| endpoint tcp://", r"box@h2 +\| endpoint tcp://",
                                              r"box@h2 +\| received \d", r"sink@h2 +\| received tick"]))
    pub_at = re.search(r"pub@h1 +\| endpoint (tcp://\S+)", text)
    box_at = re.search(r"box@h2 +\| endpoint (tcp://\S+)", text)
    assert pub_at and box_at, text
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        listeners, monitors = [], []
        # no keys at all, and a CURVE key pair of its own (with a made-up server key)
        for keyed in (False, True):
            sub = ctx.socket(zmq.SUB)
            if keyed:
                public, secret = zmq.curve_keypair()
                sub.curve_serverkey, sub.curve_publickey, sub.curve_secretkey = zmq.curve_keypair()[0], public, secret
            sub.subscribe(b"")
            monitors.append((sub.get_monitor_socket(), f"SUB keyed={keyed}"))
            sub.connect(pub_at.group(1))
            listeners.append(sub)
        push = ctx.socket(zmq.PUSH)
        push.sndhwm = 10
        monitors.append((push.get_monitor_socket(), "PUSH"))
        push.connect(box_at.group(1))
        for i in range(5):
            try:
                push.send_string(f"INJECTED {i}", zmq.NOBLOCK)
            except zmq.Again:
                pass  # no connection will ever take it: that is the point
        for monitor, what in monitors:
            wait_refused(monitor, what)
        # meanwhile the run's own subscriber goes on receiving
        more = topo.wait_for_lines(proc, [r"sink@h2 +\| received tick", r"box@h2 +\| received \d"], timeout=10)
        for sub in listeners:
            assert not sub.poll(1500), "a stranger received a message"  # refused: a short look will do
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert "INJECTED" not in "".join(more) + out
        assert proc.returncode == 130
    finally:
        ctx.destroy(linger=0)


def test_a_host_launched_through_ssh(topo: Topo, tmp_path: Path) -> None:
    with host_network(1) as net, sshd_in_namespace(net.hosts[0], tmp_path / "ssh") as sshd:
        # ssh starts the agent with the remote account's environment: what it needs is named
        remote_env = ["env", shlex.quote(f"PYTHONPATH={HERE}:{ROOT}"), shlex.quote(f"TOPO_HOME={topo.home}")]
        path = topo.file(f"""
            topology: xssh
            {hosts_block(net, {"h1": [*sshd.launch(), *remote_env]})}
            nodes:
              pub: {{run: itnodes:publish_once, sockets: {{out: PUB}}}}
              far: {{run: slowmod:receive_one, host: h1, sockets: {{in: {{type: SUB, subscribe: [t]}}}}}}
            links:
              - pub.out -> far.in
            """.replace("\n            ", "\n"))
        result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
        assert result.code == 0, result.out + result.err
        assert re.search(r"host h1: starting its agent: ssh ", result.out), result.out
        assert re.search(r"^far@h1 +\| got pub$", result.out, re.M), result.out
        wait_until(lambda: not [p for p in namespace_pids(net) if "topo" in " ".join(_cmdline(p))],
                   10, "the agent and its processes to be gone")


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def test_the_harness_probes_a_node_on_another_host(net3: Network, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    """Probes live in the test's process, on the local host: their links to a remote node
    are CURVE like any other crossing hosts."""
    from topo.testing import Probe, up

    monkeypatch.setenv("PYTHONPATH", f"{HERE}:{ROOT}")  # what the agents' Python imports
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    source = {
        "topology": "xprobe",
        "hosts": {"local": {"address": net3.local_address},
                  "h1": {"address": net3.hosts[0].address, "launch": net3.hosts[0].launch(),
                         "python": sys.executable}},
        "nodes": {"relay": {"run": "itnodes:relay_forever", "host": "h1",
                            "sockets": {"in": "PULL", "out": "PUSH"}}},
    }
    with up(source, probes={"feed": Probe("PUSH", "relay.in"), "back": Probe("PULL", "relay.out")},
            ready_timeout=30) as run:
        run.probes["feed"].send_string("hello")
        assert run.probes["back"].poll(10_000), "nothing came back through the remote relay"
        assert run.probes["back"].recv_string().startswith("hello via ")
    hosts_emptied(net3, 10)


def test_a_host_that_stays_unreachable_exhausts_the_restarts(topo: Topo, net3: Network, tmp_path: Path) -> None:
    """The host is lost, and launching its agent again fails (as ssh would with the host
    down): every attempt counts as a failure until the restart policy gives up."""
    down = tmp_path / "h2-is-down"
    gated = ["sh", "-c", f'test ! -e {shlex.quote(str(down))} && exec "$@"', "sh", *net3.hosts[1].launch()]
    text = restarting_pair(net3, "on-failure").replace(
        json.dumps(net3.hosts[1].launch()), json.dumps(gated))
    text = text.replace("restart: on-failure,", "restart: on-failure, max_restarts: 2,")
    proc = topo.start("up", topo.file(text), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"show@h2 +\| received tick")
    down.touch()
    psutil.Process(agent_pid(net3, 1)).kill()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert out.count("host h2: starting its agent") == 2, out + err  # after the first: two restarts
    assert re.search(r"show failed: .*giving up; last error: its host h2 was lost", out), out
    hosts_emptied(net3, 10)


def test_an_agent_sees_a_killed_node_process_with_a_forked_child_end(topo: Topo, net3: Network) -> None:
    """Issue 13, items 5 and 6, on another host: the agent watches a pidfd, not the
    sentinel the forked child holds, and the process's group ends with it."""
    path = topo.file(f"""
        topology: xforks
        {hosts_block(net3)}
        nodes:
          sp: {{run: "childnodes:fork_child", host: h1, restart: on-failure}}
          other: {{run: "childnodes:idle", host: h2}}
        """.replace("\n        ", "\n"))
    proc = topo.start("up", path, "--ready-timeout", "30")
    lines = topo.wait_for_line(proc, r"^sp@h1 +\| pids ")
    node_pid, child_pid = (int(p) for p in re.findall(r"^sp@h1 +\| pids (\d+) (\d+)$", "".join(lines), re.M)[-1])
    psutil.Process(node_pid).kill()
    topo.wait_for_lines(proc, [r"sp failed \(its process sp killed by SIGKILL\); restarting",
                               r"sp ready again \(restart 1\)"], timeout=30)
    wait_until(lambda: not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE,
               30, "the killed node process's child to end")
    assert topo.run("down", "xforks", timeout=60).code == 0
    assert proc.wait(timeout=30) == 0
    hosts_emptied(net3, 10)
