"""What an edit does to the run's hosts (topo apply): the agents it launches, stops or
launches again, and the running CURVE servers that admit a new host in place."""

from __future__ import annotations

from typing import Callable

import pytest

from topo.file.model import Topology
from topo.plan.diff import PlanDiff, diff
from topo.plan.diffview import diff_text
from topo.plan.facts import facts_of, kept_binds
from topo.plan.planner import make_plan

HOSTS = """\
hosts:
  local: {address: 10.0.0.1}
  h1: {address: 10.0.0.2, launch: [ssh, a]}
  h2: {address: 10.0.0.3, launch: [ssh, b]}
"""
BASE = HOSTS + """\
topology: far
nodes:
  feed: {run: m:feed, sockets: {out: PUSH}}
  worker: {run: m:work, host: h1, sockets: {in: PULL, out: PUSH}}
  tally: {run: m:tally, sockets: {in: PULL}}
links: [feed.out -> worker.in, worker.out -> tally.in]
"""

Applied = Callable[[str, str], PlanDiff]


@pytest.fixture
def applied(topology: Callable[[str], Topology]) -> Applied:
    def compare(old: str, new: str) -> PlanDiff:
        running = facts_of(make_plan(topology(old)))
        return diff(running, facts_of(make_plan(topology(new), keep_binds=kept_binds(running))),
                    link_restarts=True)
    return compare


def test_a_host_new_to_the_run_is_said_and_its_dialer_s_curve_server_admits_it_in_place(applied: Applied) -> None:
    new = BASE.replace("links: [", "  more: {run: m:work, host: h2, sockets: {in: PULL}}\nlinks: [feed.out -> more.in, ")
    d = applied(BASE, new)
    assert "host h2 added: its agent is launched" in d.notes
    # feed binds the CURVE endpoint h2 dials: given h2's key in place, it goes on
    assert {p.name for p in d.processes} == {"more"} and "feed" in d.untouched
    assert "process feed admits new host h2 in place (its CURVE server is given the key)" in d.notes
    assert "+ process more" in diff_text(d)


def test_a_curve_server_a_new_host_dials_on_an_existing_endpoint_admits_its_key_in_place(applied: Applied) -> None:
    base = BASE.replace("worker: {run: m:work, host: h1,", "worker: {run: m:work, host: h1, replicas: 2,")
    new = base.replace("worker: {run: m:work, host: h1, replicas: 2,", "worker: {run: m:work, host: h2, replicas: 2,")
    d = applied(base, new)
    assert {p.name for p in d.processes} == {"worker.0", "worker.1"}  # moved: restarted on h2
    # the links are the same (tcp, feed and tally bind): their binders admit h2 in place
    assert d.links == () and {"feed", "tally"} <= set(d.untouched)
    text = diff_text(d)
    assert "! process feed admits new host h2 in place (its CURVE server is given the key)" in text, text
    assert "! process tally admits new host h2 in place (its CURVE server is given the key)" in text, text
    assert "! host h2 added: its agent is launched" in text
    assert "! host h1 no longer used: its agent is stopped once its processes have ended" in text


def test_a_node_that_only_binds_for_known_hosts_is_not_restarted(applied: Applied) -> None:
    new = BASE.replace("worker: {run: m:work, host: h1,", "worker: {run: m:work, host: h1, args: {v: 2},")
    d = applied(BASE, new)
    assert [p.name for p in d.processes] == ["worker"]
    assert d.notes == ()


def test_a_changed_host_definition_restarts_its_processes_under_a_new_agent(applied: Applied) -> None:
    d = applied(BASE, BASE.replace("launch: [ssh, a]", "launch: [ssh, -p, '2222', a]"))
    assert d.notes == ("host h1 changed (launch): its processes restart under a new agent",)
    assert [(p.kind, p.name, p.why) for p in d.processes] == [("↻", "worker", ("host h1 changed",))]
    # a host no node uses changes nothing
    assert applied(BASE, BASE.replace("launch: [ssh, b]", "launch: [ssh, c]")).empty


def test_moving_nodes_off_a_host_and_back_adds_and_removes_it(applied: Applied) -> None:
    here = BASE.replace("host: h1, ", "")
    there = applied(here, BASE)
    assert there.notes == ("host h1 added: its agent is launched",)
    assert ("↻", "worker") in {(p.kind, p.name) for p in there.processes}
    back = applied(BASE, here)
    assert back.notes == ("host h1 no longer used: its agent is stopped once its processes have ended",)
