"""topo.plan.graph: Mermaid and dot drawings of plans made from small files."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topo.plan.graph import node_id, to_dot, to_mermaid
from topo.plan.planner import Plan, make_plan
from topo.file.validate import load

MIXED = """\
topology: mixed
hosts:
  local: {address: 127.0.0.1}
  edge: {address: 10.0.0.2, launch: [ssh, edge.example]}
nodes:
  server:
    run: app.nodes:server
    sockets: {updates: PUB}
  client:
    run: app.nodes:client
    replicas: 2
    process: clients
    sockets: {updates: {type: SUB, subscribe: [weather, "a \\"b\\""]}}
  client_0:
    run: app.nodes:client
    process: clients
    sockets: {updates: {type: SUB, subscribe: ""}}
  end:
    run: app.nodes:end
    process: clients
    sockets: {in: PULL}
  far-away:
    run: app.nodes:far
    host: edge
    sockets: {out: PUSH, updates: SUB}
links:
  - server.updates -> client.updates
  - server.updates -> client_0.updates
  - server.updates -> far-away.updates
  - far-away.out -> end.in
"""

ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def plan_of(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text))
    return make_plan(load(str(path)))


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return plan_of(tmp_path, MIXED)


# -- ids ---------------------------------------------------------------------------------

def test_ids_are_plain_and_keep_lookalike_names_apart() -> None:
    names = ["client.0", "client_0", "client-0", "client_d0", "client__0", "client_h0"]
    ids = [node_id("n", name) for name in names]
    assert len(set(ids)) == len(ids)
    assert all(ID.match(i) for i in ids)
    assert node_id("n", "end") != "end" and node_id("p", "x") != node_id("n", "x")


@given(st.text(alphabet="ab_.-0é", max_size=8), st.text(alphabet="ab_.-0é", max_size=8))
def test_ids_are_injective(a: str, b: str) -> None:
    assert (node_id("n", a) == node_id("n", b)) == (a == b)
    assert ID.match(node_id("n", a))


# -- mermaid -----------------------------------------------------------------------------

def mermaid_tree(text: str) -> dict[str, list[str]]:
    """For each subgraph id, the ids declared directly inside it ("" is the top level)."""
    stack = [""]
    inside: dict[str, list[str]] = {"": []}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["subgraph"]:
            inside[stack[-1]].append(words[1])
            inside[words[1]] = []
            stack.append(words[1])
        elif words == ["end"]:
            stack.pop()
        elif (m := re.match(r"^\s*(n_\w+)\(", line)) is not None:
            inside[stack[-1]].append(m[1])
    assert stack == [""], "every subgraph is closed"
    return inside


def test_mermaid_header(plan: Plan) -> None:
    text = to_mermaid(plan)
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "topology mixed"', "---", "flowchart LR"]
    assert text.endswith("\n")


def test_mermaid_nests_instances_in_processes_in_hosts(plan: Plan) -> None:
    tree = mermaid_tree(to_mermaid(plan))
    assert tree[""] == ["h_local", "h_edge"]
    assert set(tree["h_local"]) == {"p_clients", "p_server"}
    assert tree["p_clients"] == ["n_client_d0", "n_client_d1", "n_client__0", "n_end"]
    assert tree["p_server"] == ["n_server"]
    assert tree["h_edge"] == ["p_far_haway"]
    assert tree["p_far_haway"] == ["n_far_haway"]


def test_mermaid_labels_keep_the_real_names(plan: Plan) -> None:
    text = to_mermaid(plan)
    assert 'n_client_d1("client.1")' in text
    assert 'n_far_haway("far-away")' in text
    assert 'subgraph h_edge ["host edge (10.0.0.2)"]' in text
    assert 'subgraph p_clients ["process clients"]' in text


def test_mermaid_edges_carry_types_and_transport(plan: Plan) -> None:
    edges = [line.strip() for line in to_mermaid(plan).splitlines() if "|" in line]
    assert edges == [
        'n_server -.->|"updates→updates PUB→SUB ipc; topics: #quot;weather#quot;, #quot;a \\#quot;b\\#quot;#quot;"| n_client_d0',
        'n_server -.->|"updates→updates PUB→SUB ipc; topics: #quot;weather#quot;, #quot;a \\#quot;b\\#quot;#quot;"| n_client_d1',
        'n_server -.->|"updates→updates PUB→SUB ipc; topics: all"| n_client__0',
        'n_server ==>|"updates→updates PUB→SUB tcp+curve; topics: none"| n_far_haway',
        'n_far_haway ==>|"out→in PUSH→PULL tcp+curve"| n_end',
    ]
    assert len(edges) == len(plan.links)


def test_mermaid_inproc_edges_are_plain_arrows(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        topology: one
        nodes:
          a: {run: m:a, process: p, sockets: {o: PUSH}}
          b: {run: m:b, process: p, sockets: {i: PULL}}
        links: [a.o -> b.i]
        """)
    assert '  n_a -->|"o→i PUSH→PULL inproc"| n_b\n' in to_mermaid(plan)


# -- dot ---------------------------------------------------------------------------------

def dot_tree(text: str) -> dict[str, list[str]]:
    stack = [""]
    inside: dict[str, list[str]] = {"": []}
    for line in text.splitlines()[1:-1]:
        words = line.split()
        if words[:1] == ["subgraph"]:
            inside[stack[-1]].append(words[1])
            inside[words[1]] = []
            stack.append(words[1])
        elif words == ["}"]:
            stack.pop()
        elif (m := re.match(r"^\s*(n_\w+) \[label=", line)) is not None:
            inside[stack[-1]].append(m[1])
    assert stack == [""], "every cluster is closed"
    return inside


def test_dot_nests_clusters(plan: Plan) -> None:
    text = to_dot(plan)
    assert text.startswith('digraph "mixed" {\n') and text.endswith("}\n")
    tree = dot_tree(text)
    assert tree[""] == ["cluster_h_local", "cluster_h_edge"]
    assert set(tree["cluster_h_local"]) == {"cluster_p_clients", "cluster_p_server"}
    assert tree["cluster_p_clients"] == ["n_client_d0", "n_client_d1", "n_client__0", "n_end"]
    assert tree["cluster_h_edge"] == ["cluster_p_far_haway"]
    assert 'n_client_d0 [label="client.0"];' in text
    assert 'label="host edge (10.0.0.2)";' in text


def test_dot_edges_carry_types_and_transport(plan: Plan) -> None:
    edges = [line.strip() for line in to_dot(plan).splitlines() if " -> " in line]
    assert edges == [
        'n_server -> n_client_d0 [label="updates→updates PUB→SUB ipc; topics: \\"weather\\", \\"a \\\\\\"b\\\\\\"\\"", style=dashed];',
        'n_server -> n_client_d1 [label="updates→updates PUB→SUB ipc; topics: \\"weather\\", \\"a \\\\\\"b\\\\\\"\\"", style=dashed];',
        'n_server -> n_client__0 [label="updates→updates PUB→SUB ipc; topics: all", style=dashed];',
        'n_server -> n_far_haway [label="updates→updates PUB→SUB tcp+curve; topics: none", style=bold];',
        'n_far_haway -> n_end [label="out→in PUSH→PULL tcp+curve", style=bold];',
    ]


@pytest.mark.filterwarnings("ignore")  # pydot's own deprecation warnings
def test_dot_parses_when_pydot_is_there(plan: Plan) -> None:
    pydot = pytest.importorskip("pydot")
    graphs = pydot.graph_from_dot_data(to_dot(plan))
    assert graphs is not None and len(graphs) == 1
    assert len(graphs[0].get_edges()) == len(plan.links)


def test_drawings_are_pure(plan: Plan) -> None:
    assert to_mermaid(plan) == to_mermaid(plan)
    assert to_dot(plan) == to_dot(plan)
