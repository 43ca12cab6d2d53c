"""``topo up FILE --record OUT.mcap`` with nodes on other hosts (network namespaces stand
for machines): their copies go from the node to its agent, over the run's CURVE channel
to the supervisor and on to the recorder, from the first message, none lost: a recorder
behind makes the remote nodes wait, as it does the local ones."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from conftest import Topo, wait_until
from test_up_record import chunked
from hostnet import Network, host_network, hosts_block, hosts_emptied, namespace_pids, requires_netns
from topo.observe.recorded import messages, summarize

pytestmark = [requires_netns, pytest.mark.slow]

PIPELINE = """\
topology: rpipeline
{hosts}
nodes:
  ventilator:
    run: examples.pipeline:ventilator
    args: {{tasks: 12}}
    sockets: {{tasks: PUSH}}
  worker:
    run: examples.pipeline:worker
    host: h1
    replicas: 3
    sockets: {{tasks: PULL, results: PUSH}}
  sink:
    run: examples.pipeline:sink
    host: h2
    args: {{tasks: 12}}
    on_exit: stop
    sockets: {{results: PULL}}
links:
  - ventilator.tasks -> worker.tasks
  - worker.results -> sink.results
"""

FLOOD = """\
topology: rflood
{hosts}
nodes:
  source:
    run: uprecnodes:flood
    host: h1
    args: {{count: {count}}}
    sockets: {{out: PUSH}}
  sink:
    run: uprecnodes:count
    host: h2
    on_exit: stop
    sockets: {{in: PULL}}
links:
  - source.out -> sink.in
"""


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    with host_network(2) as network:
        yield network


def channels(path: Path) -> dict[str, int]:
    return {c.topic: c.messages for c in summarize(str(path)).channels}


def test_a_pipeline_across_hosts_is_recorded_from_its_first_message(topo: Topo, net: Network,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "pipeline.mcap"
    result = topo.run("up", topo.file(PIPELINE.format(hosts=hosts_block(net))), "--record", str(out),
                      "--ready-timeout", "30")
    assert result.code == 0, result.out + result.err
    assert "sink: 12/12 results" in result.out and "not recorded" not in result.out
    assert re.search(r"topo\s+\| recording 8 socket\(s\) to .*pipeline\.mcap", result.out), result.out
    assert re.search(r"topo\s+\| recorded 48 message\(s\) to .*pipeline\.mcap", result.out), result.out
    summary = summarize(str(out))
    assert summary.complete and all(c.missed == 0 for c in summary.channels)
    counts = channels(out)
    assert counts["ventilator/tasks/out"] == 12
    assert sum(n for t, n in counts.items() if t.endswith("/tasks/in")) == 12  # on h1
    assert sum(n for t, n in counts.items() if t.endswith("/results/out")) == 12
    assert counts["sink/results/in"] == 12  # on h2: every result the sink counted
    recorded = list(messages(str(out)))
    got = sorted(int(f[0]) for t, _, f, _ in recorded if t.endswith("/tasks/in"))
    assert got == list(range(12))  # from task 0: the workers' first message is there
    results = [frames for topic, _, frames, _ in recorded if topic == "sink/results/in"]
    assert sum(int(r[2]) for r in results) == 506 and "sum of squares = 506" in result.out
    assert namespace_pids(net) == []


def test_record_only_names_a_remote_socket(topo: Topo, net: Network, tmp_path: Path) -> None:
    out = tmp_path / "some.mcap"
    result = topo.run("up", topo.file(PIPELINE.format(hosts=hosts_block(net))), "--record", str(out),
                      "--record-only", "worker.1.tasks,sink.results", "--ready-timeout", "30")
    assert result.code == 0, result.out + result.err
    assert re.search(r"topo\s+\| recording 2 socket\(s\)", result.out), result.out
    assert channels(out) == {"worker.1/tasks/in": 4, "sink/results/in": 12}


def test_a_remote_flood_is_recorded_whole(topo: Topo, net: Network, tmp_path: Path) -> None:
    count = 50_000
    out = tmp_path / "flood.mcap"
    path = topo.file(FLOOD.format(hosts=hosts_block(net), count=count))
    started = time.monotonic()
    result = topo.run("up", path, "--record", str(out), "--record-only", "source.out", "--ready-timeout", "30",
                      timeout=120)
    took = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert f"counted {count}" in result.out
    summary = summarize(str(out))
    assert summary.complete and [(c.topic, c.messages, c.missed) for c in summary.channels] == [
        ("source/out/out", count + 1, 0)], result.out
    recorded = [(frames, seq) for _, _, frames, seq in messages(str(out))]
    assert [seq for _, seq in recorded] == list(range(1, count + 2))  # no gap: no copy dropped
    assert recorded[0][0] == [b"0"] and recorded[-2][0] == [b"%d" % (count - 1)] and recorded[-1][0] == [b"end"]
    print(f"remote flood: {count} messages recorded in {took:.1f}s (whole run)")
    hosts_emptied(net, 15)


def test_a_host_lost_while_recorded_leaves_a_finished_file_within_a_bound(topo: Topo, net: Network,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "lost.mcap"
    text = FLOOD.format(hosts=hosts_block(net), count=0).replace("uprecnodes:flood", "uprecnodes:forever") \
        .replace("uprecnodes:count", "uprecnodes:drain")
    up = topo.start("up", topo.file(text), "--record", str(out), "--record-only", "source.out",
                    "--ready-timeout", "30")
    topo.wait_for_line(up, r"all 2 node\(s\) ready")
    wait_until(lambda: chunked(out), 20, "a chunk written to the recording")
    agents = [p for p in map(psutil.Process, _pids_in(net, 0)) if "topo.hosts.agent" in " ".join(p.cmdline())]
    assert len(agents) == 1
    agents[0].kill()  # h1's agent, and with it the recorded node
    lost = time.monotonic()
    rest, err = up.communicate(timeout=60)
    took = time.monotonic() - lost
    assert up.returncode == 1, rest + err
    assert re.search(r"source failed: its host h1 was lost", rest), rest
    assert re.search(r"recorded \d+ message\(s\) to .*lost\.mcap", rest), rest
    assert "no last word from source" in rest, rest
    summary = summarize(str(out))
    assert summary.complete and summary.messages > 0
    assert took < 20, f"the run's end took {took:.1f}s after the host was lost"
    hosts_emptied(net, 15)


def _pids_in(net: Network, index: int) -> set[int]:
    found = subprocess.run(["ip", "netns", "pids", net.hosts[index].name], capture_output=True, text=True,
                           check=True)
    return {int(p) for p in found.stdout.split()}
