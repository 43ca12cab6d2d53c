"""topo.plan.planview: the text of `topo check` and `topo plan`, on plans made from small files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from topo.plan.planner import Plan, make_plan
from topo.plan.planview import check_summary, pattern, plan_json, plan_table, socket_types, table
from topo.file.validate import load

WEATHER = """\
topology: weather
nodes:
  server:
    run: weather.nodes:server
    sockets: {updates: PUB}
  client:
    run: weather.nodes:client
    replicas: 2
    process: clients
    sockets:
      updates: {type: SUB, subscribe: ["100"]}
  display:
    run: weather.nodes:display
    process: clients
    sockets: {updates: SUB}
links:
  - server.updates -> client.updates
  - {from: server.updates, to: display.updates, transport: tcp}
"""

TWO_HOSTS = """\
topology: spread
hosts:
  local: {address: 127.0.0.1}
  edge: {address: 10.0.0.2, launch: [ssh, edge.example]}
nodes:
  front:
    run: app.nodes:front
    process: fe
    sockets: {req: REQ, inner: PAIR}
  helper:
    run: app.nodes:helper
    process: fe
    sockets: {inner: PAIR}
  back:
    run: app.nodes:back
    host: edge
    sockets: {rep: REP}
links:
  - front.req -> back.rep
  - front.inner -> helper.inner
"""


def plan_of(tmp_path: Path, text: str, name: str = "t.yaml") -> Plan:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return make_plan(load(str(path)))


def link_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("LINKS") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_table_aligns_columns_and_does_not_pad_the_last() -> None:
    lines = table([("A", "BB", "C"), ("long", "x", "last")], indent="")
    assert lines == ["A     BB  C", "long  x   last"]
    assert table([]) == []


def test_check_summary_counts_nodes_instances_and_links(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WEATHER)
    summary = check_summary("w.yaml", load(str(path)))
    # and its warning: one SUB of WEATHER subscribes to nothing
    assert summary == "w.yaml: ok: topology weather (3 nodes, 4 instances, 2 links) (1 warning)"


def test_check_summary_singular_and_hosts(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(TWO_HOSTS)
    summary = check_summary("h.yaml", load(str(path)))
    assert "3 nodes" in summary and "2 links" in summary and "2 hosts" in summary
    assert "instances" not in summary


def test_pattern_uses_the_socket_types_of_both_ends(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, WEATHER)
    types = socket_types(plan)
    assert pattern(types, "server.updates", "client.1.updates") == "PUB→SUB"


def test_plan_table_lists_processes_with_their_instances(tmp_path: Path) -> None:
    text = plan_table(plan_of(tmp_path, WEATHER))
    assert text.startswith("topology weather (")
    assert text.endswith("\n")
    lines = text.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["PROCESS", "HOST"])
    assert header.split() == ["PROCESS", "HOST", "NODE", "RUN"]
    clients = next(i for i, line in enumerate(lines) if line.split()[:1] == ["clients"])
    assert lines[clients].split() == ["clients", "local", "client.0", "weather.nodes:client"]
    # The other instances of the process follow, without repeating process and host.
    assert lines[clients + 1].split() == ["client.1", "weather.nodes:client"]
    assert lines[clients + 2].split() == ["display", "weather.nodes:display"]
    assert lines[clients + 1].index("client.1") == lines[clients].index("client.0")
    # One host, the default one: no hosts section.
    assert "HOSTS" not in lines


def test_plan_table_lists_every_instance_link_aligned(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, WEATHER)
    rows = link_lines(plan_table(plan))
    assert rows[0].split() == ["FROM", "TO", "PATTERN", "TRANSPORT", "BINDS", "ENDPOINT"]
    body = rows[1:]
    assert len(body) == len(plan.links) == 3
    for line, link in zip(body, plan.links):
        cells = line.split()
        assert cells == [
            link.src_instance, link.dst_instance, "PUB→SUB", link.transport.value + "+curve" * link.secure,
            link.bind_instance, link.endpoint,
        ]
    # Columns line up: every column starts at the header's offset.
    for column in ("TO", "PATTERN", "TRANSPORT", "BINDS", "ENDPOINT"):
        offset = rows[0].index(column)
        for line in body:
            assert line[offset - 2:offset] == "  " and line[offset] != " "
    transports = {line.split()[1]: line.split()[3] for line in body}
    assert transports == {"client.0.updates": "ipc", "client.1.updates": "ipc", "display.updates": "tcp+curve"}


def test_plan_table_explains_placeholders(tmp_path: Path) -> None:
    text = plan_table(plan_of(tmp_path, WEATHER))
    assert "{run_dir}:" in text and ":*:" in text


def test_plan_table_shows_hosts_when_there_are_several(tmp_path: Path) -> None:
    text = plan_table(plan_of(tmp_path, TWO_HOSTS))
    lines = text.splitlines()
    assert "HOSTS" in lines
    edge = next(line for line in lines if line.split()[:1] == ["edge"])
    assert edge.split() == ["edge", "10.0.0.2", "ssh", "edge.example"]
    body = {line.split()[0]: line.split() for line in link_lines(text)[1:]}
    assert body["front.req"][2:4] == ["REQ→REP", "tcp+curve"]
    assert body["front.inner"][2:4] == ["PAIR→PAIR", "inproc"]
    assert body["front.req"][5].startswith("tcp://10.0.0.2:")


def test_plan_table_without_links(tmp_path: Path) -> None:
    text = plan_table(plan_of(tmp_path, "topology: lone\nnodes:\n  a: {run: m:f}\n"))
    assert link_lines(text) == ["  (none)"]
    assert "{run_dir}" not in text


@pytest.mark.parametrize("text", [WEATHER, TWO_HOSTS])
def test_plan_json_is_the_plan(tmp_path: Path, text: str) -> None:
    plan = plan_of(tmp_path, text)
    data = json.loads(plan_json(plan))
    assert data == json.loads(json.dumps(plan.to_json()))
    for link in data["links"]:
        assert {"from", "to", "transport", "endpoint", "bind"} <= link.keys()
