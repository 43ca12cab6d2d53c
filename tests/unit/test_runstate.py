"""The supervisor's words for a node late at the deadline, and the rows of `topo ps`."""

from __future__ import annotations

from topo.runstate import NodeState, ProcState, snapshot, why_late

FILE = """\
topology: t
hosts:
  local: {address: 10.0.0.1}
  edge: {address: 10.0.0.2}
nodes:
  pub: {run: m:f, sockets: {out: PUB}}
  sub: {run: m:f, host: edge, sockets: {in: {type: SUB, subscribe: [""]}}}
links: [pub.out -> sub.in]
"""


def states(plan, **state: str) -> tuple[dict[str, NodeState], dict[str, ProcState]]:
    nodes = {n: NodeState(n, plan.instances[n].process, state=state.get(n, "starting")) for n in plan.instances}
    procs = {p.name: ProcState(p.name, p.instances, remote=None if p.host == "local" else p.host)
             for p in plan.processes}
    return nodes, procs


def test_a_node_that_never_bound_and_its_waiting_peer(plan) -> None:
    p = plan(FILE)
    nodes, procs = states(p, pub="bound")
    assert why_late(nodes["sub"], p, nodes, procs).startswith("it never bound its sockets")
    assert why_late(nodes["pub"], p, nodes, procs) == (
        "waiting for peers that never bound their sockets: sub.in (for socket 'out')")


def test_a_node_whose_hosts_agent_never_came_up(plan) -> None:
    p = plan(FILE)
    nodes, procs = states(p)
    procs["sub"].pending = True
    assert why_late(nodes["sub"], p, nodes, procs) == "the agent of its host edge never said it was up"


def test_ps_rows_name_the_host_and_take_remote_figures_from_the_agent(plan) -> None:
    p = plan(FILE)
    nodes, procs = states(p, pub="running", sub="running")
    procs["sub"].stats = {"pid": 7, "cpu": 12.5, "rss": 1 << 20}
    rows = {r["name"]: r for r in snapshot(nodes, procs, "local")}
    assert rows["pub"]["host"] == "local" and "cpu" not in rows["pub"]
    assert rows["sub"]["host"] == "edge" and rows["sub"]["cpu"] == 12.5 and rows["sub"]["rss"] == 1 << 20
