"""``topo apply`` lowering ``replicas`` of workers on another host while work flows: the
feed here deals to them over tcp with CURVE (the run's channel between hosts), the removed
worker's process, on its host, drains what was dealt to it and returns
(topo.process.handover), and every task arrives exactly once."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from conftest import Topo
from hostnet import Network, host_network, hosts_block, requires_netns
from test_apply_hosts import stop
from test_edit import pids, tell

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net1() -> Iterator[Network]:
    with host_network(1) as net:
        yield net


def paced(net: Network, ctl: str, replicas: int) -> str:
    """feed (here) → ``replicas`` paced workers (on h1) → census (here); small queues and
    kernel buffers on the feed's link, so that it is still dealing when the apply lands."""
    return f"""
topology: xscale
{hosts_block(net)}
nodes:
  feed:
    run: editnodes:feed
    sockets:
      ctl: {{type: PULL, external: {{bind: "ipc://{ctl}"}}}}
      out: {{type: PUSH, options: {{sndhwm: 100, sndbuf: 16384}}}}
  worker:
    run: editnodes:relay
    host: h1
    replicas: {replicas}
    args: {{pause: 0.0003}}
    sockets: {{in: {{type: PULL, options: {{rcvhwm: 100, rcvbuf: 16384}}}}, out: PUSH}}
  tally: {{run: editnodes:census, sockets: {{in: PULL}}}}
links: [feed.out -> worker.in, worker.out -> tally.in]
"""


def test_workers_on_another_host_scaled_down_while_tasks_flow_lose_nothing(topo: Topo, net1: Network) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(paced(net1, ctl, 3)), "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    plan = topo.run("plan", topo.file(paced(net1, ctl, 3)))
    assert re.search(r"feed\.out +worker\.2\.in +PUSH→PULL +tcp\+curve ", plan.out), plan.out
    before = pids(topo, "xscale")
    tell(ctl, "1 20000")
    result = topo.run("apply", topo.file(paced(net1, ctl, 2), "two.yaml"), timeout=90)
    assert result.code == 0, result.out + result.err
    assert "- process worker.2" in result.out and "↻" not in result.out, result.out
    assert pids(topo, "xscale") == {n: before[n] for n in ("feed", "worker.0", "worker.1", "tally")}

    tell(ctl, "2 3000")
    seen = topo.wait_for_line(proc, r"tally\S* +\| batch 2 has 3000 dup 0 ")
    last = [ln for ln in seen if "batch 1 has" in ln][-1]
    assert "batch 1 has 20000 dup 0 " in last, "".join(seen)
    by = dict(pair.split(":") for pair in last.split(" by ")[1].split())
    share = int(by.get(str(before["worker.2"][0]), "0"))
    kept = [int(by[str(before[w][0])]) for w in ("worker.0", "worker.1")]
    assert 0 < share < 0.9 * min(kept), last  # it had a share, and left while the batch flowed
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    assert any("feed.out bound again, by a new socket" in ln for ln in seen), "".join(seen)
    assert not any("what was in flight to it is lost" in ln for ln in seen), "".join(seen)
    print(f"scale-down 3 -> 2 on another host under 20,000 tasks: {last}")
    stop(proc, net1)
