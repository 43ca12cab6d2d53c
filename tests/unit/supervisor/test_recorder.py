"""``topo up --record``'s names and file, checked before anything starts: every socket or
those named, nearest names for a wrong one, other hosts' nodes recorded as the local ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import VALID_DOC, dump
from topo.errors import UsageError
from topo.file.validate import load
from topo.plan.planner import Plan, make_plan
from topo.supervisor.recorder import RunRecorder, recorded_sockets, split_targets


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    file = tmp_path / "t.yaml"
    file.write_text(dump(VALID_DOC))
    return make_plan(load(str(file)))


def test_record_only_is_repeatable_and_a_comma_list() -> None:
    assert split_targets(("a.x,b.y", " c.z ", "d.w,,")) == ["a.x", "b.y", "c.z", "d.w"]
    assert split_targets(()) == []


def test_every_socket_by_default_and_node_or_instance_names(plan: Plan) -> None:
    every = recorded_sockets(plan, [])
    assert ("worker.0", "tasks") in every and ("source", "news") in every and len(every) == 8
    assert recorded_sockets(plan, ["worker.tasks", "worker.1.tasks", "sink.results"]) == [
        ("worker.0", "tasks"), ("worker.1", "tasks"), ("sink", "results")]


@pytest.mark.parametrize("name, says", [
    ("sink.result", "--record-only sink.result: no socket 'result' on sink in demo; did you mean sink.results?"),
    ("wroker.tasks", "--record-only wroker.tasks: no node 'wroker' in demo; did you mean worker.tasks?"),
    ("nodot", "--record-only nodot: expected NODE.SOCKET, got 'nodot'"),
])
def test_a_wrong_name_is_one_line_with_the_nearest(plan: Plan, name: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        recorded_sockets(plan, [name])
    assert str(err.value) == says and err.value.exit_code == 2


def test_other_hosts_nodes_are_recorded_too(plan: Plan, tmp_path: Path) -> None:
    rec = RunRecorder(plan, str(tmp_path / "r.mcap"))
    try:
        assert plan.instances["reader"].host != plan.local_host and any(i == "reader" for i, _ in rec.pairs)
        spec = rec.prepare("/run/x")
        assert spec.endpoint == "ipc:///run/x/rec"
        assert spec.sockets["worker.1"] == ("tasks", "results") and "reader" in spec.sockets
        assert rec.notes() == [f"recording 8 socket(s) to {tmp_path / 'r.mcap'}"]
    finally:
        rec.kill()


def test_a_file_that_cannot_be_written_is_a_usage_error(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--record .*/no/r\.mcap: No such file or directory$"):
        RunRecorder(plan, str(tmp_path / "no" / "r.mcap"))
