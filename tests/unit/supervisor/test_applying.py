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
from topo.plan.diffview import diff_text
from topo.plan.facts import facts_of
from topo.plan.planner import Plan
from topo.supervisor.applying import Refused, import_path, read, unique_ipc


def test_a_link_a_live_socket_would_connect_restarts_that_socket_s_process(plan: Callable[[str], Plan]) -> None:
    new = edited(("nodes:\n", "nodes:\n  hub: {run: m:hub, sockets: {in: {type: SUB, bind: true}}}\n"),
                 ("links: [", "links: [source.news -> hub.in, "))
    old_facts, new_facts = facts_of(plan(BASE)), facts_of(plan(new))
    assert "source" not in diff(old_facts, new_facts).restarted()  # the dry run: in place
    d = diff(old_facts, new_facts, link_restarts=True)
    assert d.restarted() == ("source",) and "source" not in d.untouched
    assert "↻ process source (link source.news -> hub.in)" in diff_text(d)
    assert "+ link source.news -> hub.in (ipc): with the processes that start or restart" in diff_text(d)


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
