"""The supervisor's words for a node late at the deadline, the rows of `topo ps`, its answers
to control requests and its next deadline."""

from __future__ import annotations

import os
import time
from typing import Any, cast

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
LOCAL = """\
topology: l
nodes:
  a: {run: m:f, restart: on-failure}
  b: {run: m:f}
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



def test_a_deadline_that_came_due_since_the_loop_acted_is_not_dropped(plan) -> None:
    """A restart due 0.1 s after its process's end, come due while the loop was between
    acting on its deadlines and waiting (a loaded machine): before, it was dropped as past
    and the loop slept until the ready deadline ('restarting in 0.1s', then nothing for
    30 s; test_children's restart test failed so, now and then)."""
    p = plan(LOCAL)
    _, procs = states(p)
    now = time.monotonic()
    acted = now - 1.0
    procs["a"].ended = True
    procs["a"].restart_at = acted + 0.5  # due since half a second, not acted on yet
    assert next_deadline(procs, now + 30, acted=acted) == acted + 0.5  # the loop does not wait
    assert next_deadline(procs, now + 30, acted=acted + 0.5) == now + 30  # acted on: past


def test_the_supervisor_waits_for_what_came_due_since_it_acted(plan) -> None:
    from topo.supervisor.supervise import Supervisor

    class Silent:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    sup = Supervisor(plan(LOCAL), cast(Any, Silent()), ready_timeout=30.0)
    try:
        sup._act()  # nothing due: nothing to start
        proc = sup.procs["a"]
        proc.ended, proc.restart_at = True, time.monotonic() + 1e-6  # due right after the loop acted
        while time.monotonic() <= proc.restart_at:  # the clock passes it (a microsecond)
            pass
        assert sup._next_deadline() == proc.restart_at
    finally:
        os.close(sup._wake_r)
        os.close(sup._wake_w)

def test_a_report_for_several_nodes_splits_into_one_per_node() -> None:
    m = Message(Kind.READY, {"instances": ["a", "b"], "gen": 2})
    assert m.split() == [Message(Kind.READY, {"instance": "a", "gen": 2}),
                         Message(Kind.READY, {"instance": "b", "gen": 2})]
