"""External endpoints in the plan: carried to the process that binds or connects them,
never in the endpoint table, shown by ``topo plan`` (table and JSON) and ``topo graph``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from topo.plan.graph import to_dot, to_mermaid
from topo.plan.planner import Plan, make_plan, share_of
from topo.plan.planview import plan_table
from topo.file.validate import load

SHOP = """\
topology: shop
hosts:
  local: {address: 127.0.0.1}
  edge: {address: 10.0.0.2, launch: [ssh, edge]}
nodes:
  api:
    run: shop.nodes:api
    sockets:
      requests: {type: REP, external: {bind: "tcp://0.0.0.0:5555"}}
      orders: PUSH
  worker:
    run: shop.nodes:worker
    host: edge
    replicas: 2
    sockets:
      orders: PULL
      events: {type: PUB, external: {connect: [tcp://broker:6000]}}
links:
  - api.orders -> worker.orders
"""


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    path = tmp_path / "shop.yaml"
    path.write_text(textwrap.dedent(SHOP))
    return make_plan(load(str(path)))


def test_the_plan_carries_them_per_instance_outside_the_endpoint_table(plan: Plan) -> None:
    api = plan.instances["api"].sockets[0]
    assert (api.name, api.external_binds, api.external_connects, api.binds, api.peers) == (
        "requests", ("tcp://0.0.0.0:5555",), (), (), ())
    for name in ("worker.0", "worker.1"):
        events = plan.instances[name].sockets[1]
        assert events.external_connects == ("tcp://broker:6000",) and events.external_binds == ()
    assert not any("5555" in e.address or "broker" in e.address for e in plan.endpoints.values())


def test_a_process_on_another_host_gets_them_in_its_share(plan: Plan) -> None:
    share = share_of(plan.for_host("edge"), "worker.1")
    events = share.instances["worker.1"].sockets[1]
    assert events.external_connects == ("tcp://broker:6000",)
    assert share_of(plan, "api").instances["api"].sockets[0].external_binds == ("tcp://0.0.0.0:5555",)


def test_json_shows_them_per_socket_as_plain(plan: Plan) -> None:
    nodes = {n["name"]: n for n in json.loads(json.dumps(plan.to_json()))["nodes"]}
    requests = nodes["api"]["sockets"][0]
    assert requests["external"] == {"bind": ["tcp://0.0.0.0:5555"], "connect": [], "secure": False}
    assert requests["bind"] == [] and requests["connect"] == []
    assert "external" not in nodes["api"]["sockets"][1]  # a socket without any: as before


def test_the_table_lists_them_plain_with_a_word_on_open_binds(plan: Plan) -> None:
    text = plan_table(plan)
    tail = text[text.index("EXTERNAL"):].splitlines()
    assert tail[0] == "EXTERNAL (peers topo does not start: not waited for, and plain: no CURVE)"
    assert tail[1].split() == ["SOCKET", "TYPE", "HOST", "ACTION", "ENDPOINT", "SECURITY"]
    assert tail[2].split() == ["api.requests", "REP", "local", "binds", "tcp://0.0.0.0:5555", "tcp,", "plain"]
    assert tail[3].split() == ["worker.0.events", "PUB", "edge", "connects", "tcp://broker:6000", "tcp,", "plain"]
    assert "every machine that reaches the port may connect, read and send, unauthenticated" in text


def test_a_loopback_bind_gets_no_word_on_the_network(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("topology: t\nnodes:\n  a: {run: m:f, sockets: {s: {type: REP, external: {bind: 'tcp://127.0.0.1:5555'}}}}\n")
    text = plan_table(make_plan(load(str(path))))
    assert "tcp://127.0.0.1:5555" in text and "unauthenticated" not in text


def test_a_plan_without_them_has_no_external_section(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("topology: t\nnodes:\n  a: {run: m:f, sockets: {o: PUSH}}\n  b: {run: m:f, sockets: {i: PULL}}\n"
                    "links: [a.o -> b.i]\n")
    assert "EXTERNAL" not in plan_table(make_plan(load(str(path))))


def test_mermaid_draws_them_as_hexagons_outside_the_hosts(plan: Plan) -> None:
    text = to_mermaid(plan)
    lines = text.splitlines()
    last_end = max(i for i, line in enumerate(lines) if line.strip() == "end")
    assert lines.index('  x_0{{"external tcp://0.0.0.0:5555 on host local"}}') > last_end
    assert '  x_0 ==>|"requests REP binds; tcp, plain"| n_api' in lines
    # one broker, dialled by both replicas: one node, two edges
    assert lines.count('  x_1{{"external tcp://broker:6000"}}') == 1
    assert '  n_worker_d0 ==>|"events PUB connects; tcp, plain"| x_1' in lines
    assert '  n_worker_d1 ==>|"events PUB connects; tcp, plain"| x_1' in lines


def test_dot_draws_them_as_dashed_hexagons(plan: Plan) -> None:
    text = to_dot(plan)
    assert '  x_0 [label="external tcp://0.0.0.0:5555 on host local", shape=hexagon, style=dashed];' in text
    assert '  n_worker_d1 -> x_1 [label="events PUB connects; tcp, plain", style=bold];' in text
    assert text.rstrip().endswith("}")
