"""Exec nodes on other hosts: network namespaces stand for machines; each host's agent
starts its programs as the supervisor starts local ones."""

from __future__ import annotations

import re
import sys
from typing import Iterator

import pytest

from conftest import Topo, wait_until
from hostnet import Network, host_network, hosts_block, namespace_pids, requires_netns
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
    wait_until(lambda: namespace_pids(net3) == [], 10, "every process on the hosts to be gone")
