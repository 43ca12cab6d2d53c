"""The supervisor's side of taps: requests are hostile until checked, names are resolved
against the plan (with the nearest ones suggested), and a tap goes only to the processes
that own the sockets (other hosts' through their agents)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import VALID_DOC, dump
from topo.file.validate import load
from topo.plan.planner import Plan, make_plan
from topo.process.control import Kind, Message
from topo.supervisor import observing
from topo.supervisor.runstate import NodeState, ProcState

DIR = "/run/topo-x"


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    file = tmp_path / "t.yaml"
    file.write_text(dump(VALID_DOC))
    return make_plan(load(str(file)))


def _ask(plan: Plan, **request: Any) -> tuple[dict[str, Any], list[tuple[str, Message]]]:
    sent: list[tuple[str, Message]] = []
    procs = {p.name: ProcState(p.name, p.instances, remote=p.host if p.host != plan.local_host else None)
             for p in plan.processes}
    nodes = {n: NodeState(n, i.process) for n, i in plan.instances.items()}
    reply = observing.answer(json.dumps(request).encode(), plan, nodes, procs, {}, DIR,
                             lambda proc, message: sent.append((proc.name, message)))
    return reply, sent


def test_a_node_tap_goes_to_each_instance_process(plan: Plan) -> None:
    reply, sent = _ask(plan, cmd="tap", tap="t1", target="worker.tasks", endpoint=f"ipc://{DIR}/tap-1")
    assert reply == {"ok": True, "instances": ["worker.0", "worker.1"]}
    assert [(proc, m.kind, m["instance"], m["socket"]) for proc, m in sent] == [
        ("worker.0", Kind.TAP, "worker.0", "tasks"), ("worker.1", Kind.TAP, "worker.1", "tasks")]
    reply, sent = _ask(plan, cmd="untap", tap="t1", target="worker.1.tasks")
    assert reply == {"ok": True} and [(p, m.kind) for p, m in sent] == [("worker.1", Kind.UNTAP)]


def test_a_remote_nodes_tap_goes_to_its_process_and_send_learns_the_relay(plan: Plan) -> None:
    reply, sent = _ask(plan, cmd="tap", tap="t2", target="reader.news", endpoint=f"ipc://{DIR}/tap-2")
    assert reply == {"ok": True, "instances": ["reader"]}
    assert [(proc, m.kind, m["endpoint"]) for proc, m in sent] == [("reader", Kind.TAP, f"ipc://{DIR}/tap-2")]
    reply, _ = _ask(plan, cmd="target", target="reader.news")
    assert reply["sockets"][0]["remote"] == "edge" and reply["sockets"][0]["relay"] == f"ipc://{DIR}/inject"
    reply, _ = _ask(plan, cmd="target", target="worker.0.tasks")
    assert "relay" not in reply["sockets"][0]


@pytest.mark.parametrize("target, error", [
    ("wroker.tasks", "no node 'wroker' in demo; did you mean worker.tasks?"),
    ("worker.task", "no socket 'task' on worker in demo; did you mean worker.tasks?"),
    ("worker.9.tasks", "no node 'worker.9'"),
    ("worker", "expected NODE.SOCKET, got 'worker'"),
    (3, "expected NODE.SOCKET, got 3"),
])
def test_a_bad_target_is_a_usage_error(plan: Plan, target: Any, error: str) -> None:
    reply, sent = _ask(plan, cmd="tap", tap="t1", target=target, endpoint=f"ipc://{DIR}/tap-1")
    assert reply["ok"] is False and reply["usage"] is True and error in reply["error"], reply
    assert sent == []


@pytest.mark.parametrize("change", [
    {"endpoint": "ipc:///elsewhere/tap"}, {"endpoint": f"ipc://{DIR}/../../home/x"}, {"endpoint": "tcp://1.2.3.4:5"}, {"directions": ["sideways"]},
    {"tap": ""}, {"tap": ["x"]},
])
def test_a_tap_must_come_to_the_runs_own_directory(plan: Plan, change: dict[str, Any]) -> None:
    request = {"cmd": "tap", "tap": "t1", "target": "worker.tasks", "endpoint": f"ipc://{DIR}/tap-1", **change}
    reply, sent = _ask(plan, **request)
    assert reply["ok"] is False and sent == []


@pytest.mark.parametrize("target, directions", [("source.tasks", ["in"]), ("worker.tasks", ["out"]),
                                                ("source.news", ["in"])])
def test_a_direction_a_socket_never_has_is_refused(plan: Plan, target: str, directions: list[str]) -> None:
    reply, sent = _ask(plan, cmd="tap", tap="t1", target=target, endpoint=f"ipc://{DIR}/tap-1",
                       directions=directions)
    assert reply["usage"] is True and "nothing to show" in reply["error"] and sent == []


def test_malformed_requests_are_refused_not_raised(plan: Plan) -> None:
    for raw in (b"[", b'{"cmd": "tap"}', b'{"cmd": "tap", "tap": "x", "target": {}}', b"[" * 100_000):
        assert observing.command_of(raw) in ("tap", None)
        if observing.command_of(raw):
            reply = observing.answer(raw, plan, {}, {}, {}, DIR, lambda *a: None)
            assert reply["ok"] is False


def test_sockets_lists_every_declared_socket(plan: Plan) -> None:
    reply, _ = _ask(plan, cmd="sockets")
    listed = {(e["instance"], e["socket"]): e for e in reply["sockets"]}
    assert set(listed) == {(n, s.name) for n, i in plan.instances.items() for s in i.sockets}
    assert listed[("reader", "news")]["remote"] is True and listed[("reader", "news")]["transports"] == ["tcp"]
    assert listed[("source", "tasks")]["peers"] == ["worker.0.tasks", "worker.1.tasks"]
