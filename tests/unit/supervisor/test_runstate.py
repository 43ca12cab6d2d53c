"""The supervisor's words for a node late at the deadline, the rows of `topo ps`, its answers
to control requests and its next deadline."""

from __future__ import annotations

import time

from topo.process.control import Kind, Message
from topo.supervisor.runstate import NodeState, ProcState, answer, next_deadline, snapshot, why_late

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


def test_control_requests_are_answered_and_malformed_ones_ignored(plan) -> None:
    p = plan(FILE)
    nodes, procs = states(p, pub="running", sub="running")
    reply, stop = answer(b'{"cmd": "ps"}', nodes, procs, "local")
    assert reply is not None and not stop and {r["name"] for r in reply["nodes"]} == {"pub", "sub"}
    assert answer(b'{"cmd": "down"}', nodes, procs, "local") == ({"ok": True}, True)
    assert answer(b'{"cmd": "dance"}', nodes, procs, "local") == (
        {"ok": False, "error": "unknown command 'dance'"}, False)
    for junk in (b"", b"[1]", b'{"command": "down"}', b"\xff"):
        assert answer(junk, nodes, procs, "local") == (None, False)


def test_the_next_deadline_is_the_soonest_future_one(plan) -> None:
    p = plan(FILE)
    _, procs = states(p)
    now = time.monotonic()
    assert next_deadline(procs, now + 5, None, now - 1, now + 3) == now + 3  # past ones do not count
    procs["sub"].term_sent = now - 0.5  # SIGKILL due half a second from now
    assert next_deadline(procs, now + 5) == now + 0.5
    procs["sub"].ended = True
    procs["sub"].restart_at = now + 0.25
    assert next_deadline(procs, now + 5) == now + 0.25
    assert now + 0.9 < next_deadline({}, None) < time.monotonic() + 1.1  # nothing due: look again in a second


def test_a_report_for_several_nodes_splits_into_one_per_node() -> None:
    m = Message(Kind.READY, {"instances": ["a", "b"], "gen": 2})
    assert m.split() == [Message(Kind.READY, {"instance": "a", "gen": 2}),
                         Message(Kind.READY, {"instance": "b", "gen": 2})]
