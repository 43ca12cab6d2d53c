"""Exec nodes on other hosts: network namespaces stand for machines; each host's agent
starts its programs as the supervisor starts local ones."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Topo
from hostnet import Network, host_network, hosts_block, hosts_emptied, requires_netns
from test_exec_run import WORKER

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net3() -> Iterator[Network]:
    with host_network(3) as net:
        yield net


def test_a_pyzmq_worker_pool_on_another_host(topo: Topo, net3: Network) -> None:
    worker = topo.tmp / "worker.py"
    # (over tcp the sink's endpoint is no file: the worker says False, and that is all)
    worker.write_text(WORKER.replace("{python}", sys.executable))
    worker.chmod(0o755)
    path = topo.file(f"""
        topology: xexec
        {hosts_block(net3)}
        nodes:
          vent: {{run: itnodes:vent, host: h1, args: {{tasks: 30}}, sockets: {{out: PUSH}}}}
          worker: {{exec: [./worker.py], host: h2, replicas: 2, sockets: {{in: PULL, out: PUSH}}}}
          sink: {{run: itnodes:collect, host: h3, args: {{tasks: 30}}, on_exit: stop, sockets: {{in: PULL}}}}
        links:
          - {{from: vent.out, to: worker.in, curve: false}}
          - {{from: worker.out, to: sink.in, curve: false}}
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 0, result.out + result.err
    assert len(re.findall(r"worker\.\d@h2 +\| sink bound before me", result.out)) == 2, result.out
    counts = re.search(r"counts worker\.0=(\d+) worker\.1=(\d+)", result.out)
    assert counts and int(counts[1]) + int(counts[2]) == 30, result.out
    assert int(counts[1]) > 0 and int(counts[2]) > 0, result.out  # the vent waited for both
    hosts_emptied(net3, 10)


PROGS = Path(__file__).parent / "execprogs"


def test_a_program_on_another_host_is_ready_by_notify_and_fails_by_its_watchdog(topo: Topo, net3: Network) -> None:
    """Its agent makes its NOTIFY_SOCKET on h2 and relays what it says: READY=1 makes it
    ready, a missing WATCHDOG=1 fails it and its restart policy applies."""
    path = topo.file(f"""
        topology: xdog
        {hosts_block(net3)}
        nodes:
          hung:
            exec: [{sys.executable}, {PROGS / 'watchdog_prog.py'}]
            host: h2
            ready: notify
            watchdog: 0.5
            restart: on-failure
            max_restarts: 1
            sockets: {{out: PUSH}}
          sink: {{run: "itnodes:block_forever", host: h1, sockets: {{in: PULL}}}}
        links:
          - {{from: hung.out, to: sink.in, curve: false}}
        """.replace("\n        ", "\n"))
    assert topo.run("check", path).code == 0  # no longer 'not yet' for another host
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 1, result.out + result.err
    assert re.search(r"hung@h2 +\| watchdog usec 500000", result.out), result.out
    assert "all 2 node(s) ready" in result.out  # its READY=1, relayed
    assert "hung failed (watchdog: no WATCHDOG=1 for 0.5s); restarting in" in result.out
    assert "hung ready again (restart 1)" in result.out
    hosts_emptied(net3, 10)


def test_a_program_on_another_host_waits_for_its_go(topo: Topo, net3: Network) -> None:
    """An exec PUB on h2 that sends once, after its go (given by the supervisor, written to
    its pipe by its agent): each of three slow Python SUBs on h3 gets it."""
    path = topo.file(f"""
        topology: xgo
        {hosts_block(net3)}
        nodes:
          pub: {{exec: [{sys.executable}, {PROGS / 'go_pub.py'}], host: h2, sockets: {{out: PUB}}}}
          sub: {{run: "goslow:receive_one", host: h3, replicas: 3, sockets: {{in: {{type: SUB, subscribe: t}}}}}}
        links:
          - {{from: pub.out, to: sub.in, curve: false}}
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 0, result.out + result.err
    assert sorted(re.findall(r"(sub\.\d)@h3 +\| got first", result.out)) == ["sub.0", "sub.1", "sub.2"], result.out
    hosts_emptied(net3, 10)


def test_a_program_on_another_host_gets_its_go_once_it_has_read_its_subscriptions(topo: Topo, net3: Network) -> None:
    """The go's writer is the program's agent: a receiver on h3 reports the program's tcp
    connection, the supervisor on h1 decides, and the agent on h2 writes the byte only once
    the program has read what came on it (the program exited 4, "go while the
    subscription is unread", before)."""
    path = topo.file(f"""
        topology: xread
        {hosts_block(net3)}
        nodes:
          pub: {{exec: [{sys.executable}, {PROGS / 'unread_pub.py'}], host: h2, sockets: {{out: PUB}}}}
          sub: {{run: "itnodes:receive_one", host: h3, sockets: {{in: {{type: SUB, subscribe: t}}}}}}
        links:
          - {{from: pub.out, to: sub.in, curve: false}}
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 0, result.out + result.err
    assert re.search(r"pub@h2 +\| subscription read", result.out), result.out
    assert re.search(r"sub@h3 +\| got first", result.out), result.out
    hosts_emptied(net3, 10)
