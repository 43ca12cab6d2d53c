"""The pure parts of ``topo apply``'s supervisor side: link changes turned into restarts,
new ipc endpoints kept off files the run has bound, the import path after an edit, and a
request's files read as hostile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.unit.plan.test_diff import BASE, edited
from topo.plan.diff import diff
from topo.plan.diffview import diff_json, diff_text
from topo.plan.facts import facts_of, kept_binds
from topo.plan.planner import Plan, make_plan
from topo.supervisor.applying import Refused, import_path, read, unique_ipc


def test_a_link_a_live_pub_would_connect_restarts_that_socket_s_process(plan: Callable[[str], Plan]) -> None:
    new = edited(("nodes:\n", "nodes:\n  hub: {run: m:hub, sockets: {in: {type: SUB, bind: true}}}\n"),
                 ("links: [", "links: [source.news -> hub.in, "))
    old_facts, new_facts = facts_of(plan(BASE)), facts_of(plan(new))
    assert "source" not in diff(old_facts, new_facts).restarted()  # as the sockets go: in place
    d = diff(old_facts, new_facts, link_restarts=True)  # as topo apply does it: a PUB restarts
    assert d.restarted() == ("source",) and "source" not in d.untouched
    assert "↻ process source (link source.news -> hub.in: source.news is a PUB)" in diff_text(d)
    assert "+ link source.news -> hub.in (ipc): ↻ restarted (process source)" in diff_text(d)
    assert diff_json(d)["links"][0]["how"] == "restart"


def test_a_link_a_live_push_connects_is_linked_in_place(topology: Callable[[str], Any]) -> None:
    def applied(old: str, new: str) -> Any:  # planned as topo apply plans: binding ends kept
        running = facts_of(make_plan(topology(old)))
        return diff(running, facts_of(make_plan(topology(new), keep_binds=kept_binds(running))), link_restarts=True)

    new = edited(("nodes:\n", "nodes:\n  audit: {run: m:a, sockets: {in: {type: PULL, bind: true}}}\n"),
                 ("links: [", "links: [worker.out -> audit.in, "))
    d = applied(BASE, new)
    assert d.restarted() == () and {"worker.0", "worker.1", "sink"} <= set(d.untouched)
    text = diff_text(d)
    assert "+ link worker.0.out -> audit.in (ipc): linked in place (worker.0.out connects)" in text
    assert "+ link worker.1.out -> audit.in (ipc): linked in place (worker.1.out connects)" in text
    assert {ln["how"] for ln in diff_json(d)["links"]} == {"in place"}
    # removed again: each worker disconnects in place, audit's process stops
    back = applied(new, BASE)
    assert back.restarted() == ()
    assert "- link worker.0.out -> audit.in (ipc): unlinked in place (worker.0.out disconnects)" in diff_text(back)


def test_a_link_over_inproc_or_one_a_socket_must_bind_restarts() -> None:
    from topo.plan.diff import Action, not_in_place

    facts = {"instances": {"a": {"sockets": {"out": {"type": "PUSH"}}}}}
    link = {"transport": "ipc", "secure": False}
    assert not_in_place(facts, link, Action("a.out", "connect", True)) == ""
    assert not_in_place(facts, link, Action("a.out", "bind", True)) == "a.out would bind"
    assert not_in_place(facts, {**link, "transport": "inproc"}, Action("a.out", "connect", True)) == "inproc link"
    assert not_in_place(facts, {**link, "secure": True}, Action("a.out", "disconnect", True)) == "CURVE link"


def test_a_new_worker_dialling_a_bound_push_restarts_nothing(plan: Callable[[str], Plan]) -> None:
    d = diff(facts_of(plan(BASE)), facts_of(plan(edited(("replicas: 2", "replicas: 3")))), link_restarts=True)
    assert d.restarted() == () and {p.name for p in d.processes if p.kind == "+"} == {"worker.2"}


def test_new_ipc_endpoints_never_name_a_file_the_run_has_bound(plan: Callable[[str], Plan]) -> None:
    old = plan(BASE)
    # a node met first renumbers every ipc file after it: its files are the old ones' names
    new = plan(edited(("nodes:\n", "nodes:\n  first: {run: m:f, sockets: {out: {type: PUSH, bind: true}}}\n"),
                      ("links: [", "links: [first.out -> sink.in, ")))
    bound = {k: e.address.replace("{run_dir}", "/run") for k, e in old.endpoints.items()}
    assert unique_ipc(new, old, bound) is new  # no name taken: the plan as it is
    # a name the planner can give again (a long name cut to fit): the file a running socket binds
    (key,) = [k for k in new.endpoints if k not in old.endpoints]
    taken_name = old.endpoints["sink.in/ipc"].address
    new = replace(new, endpoints={**new.endpoints, key: replace(new.endpoints[key], address=taken_name)})
    fixed = unique_ipc(new, old, bound)
    taken = {a.rpartition("/")[2] for a in bound.values()}
    added = [k for k in fixed.endpoints if k not in old.endpoints]
    assert added and all(fixed.endpoints[k].address.rpartition("/")[2] not in taken for k in added)
    assert all(fixed.endpoints[k] == new.endpoints[k] for k in fixed.endpoints if k in old.endpoints)
    assert len({e.address for e in fixed.endpoints.values()}) == len(fixed.endpoints)


def test_the_import_path_takes_the_new_python_path(tmp_path: Path, plan: Callable[[str], Plan]) -> None:
    old, new = plan(BASE), plan(BASE)
    old, new = replace(old, python_path=("/old",)), replace(new, python_path=("/new",))
    assert import_path(("/old", "/cwd", "/files"), old, new)[:3] == ("/new", "/cwd", "/files")


@pytest.mark.parametrize("request_", [
    {"files": "a.yaml"}, {"files": [1]}, {"files": []}, {"files": ["a.yaml"], "sets": [{}]},
    {"files": ["a.yaml"], "strict": "yes"}, {"files": ["x"] * 5000},
])
def test_a_malformed_request_is_refused(request_: dict[str, Any], plan: Callable[[str], Plan]) -> None:
    with pytest.raises(Exception) as err:
        read(request_, plan(BASE))
    assert isinstance(err.value, Refused) or getattr(err.value, "exit_code", 0) == 2
