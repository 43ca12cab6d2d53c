"""The supervisor's side of topo restart: names checked and resolved, requests recognised,
and a restart's bookkeeping (states, counts, generations) as a policy restart leaves it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from topo.plan.planner import Plan
from topo.supervisor.editing import BadNames, Edits, command_of, resolve
from topo.supervisor.runstate import NodeState, ProcState

FILE = """\
topology: shop
nodes:
  front: {run: m:f, sockets: {out: PUSH}}
  worker: {run: m:w, replicas: 2, sockets: {in: PULL, out: PUSH}}
  back: {run: m:b, process: rear, sockets: {in: PULL}}
  audit: {run: m:a, process: rear, sockets: {in: PULL}}
links: [front.out -> worker.in, worker.out -> back.in, front.out -> audit.in]
"""


class FakeStopping:
    def __init__(self) -> None:
        self.replaced: list[tuple[str, int]] = []

    def replace(self, proc: ProcState, reason: str) -> None:
        self.replaced.append((proc.name, proc.generation))


def supervisor(plan: Plan, external: frozenset[str] = frozenset()) -> Any:
    said: list[str] = []
    return SimpleNamespace(
        plan=plan, external=external, code=None, said=said, stopping=FakeStopping(),
        reporter=SimpleNamespace(system=said.append),
        nodes={n: NodeState(n, i.process, state="running", started=0.0) for n, i in plan.instances.items()},
        procs={p.name: ProcState(p.name, p.instances, pid=100 + k) for k, p in enumerate(plan.processes)},
    )


@pytest.fixture
def shop(plan: Callable[[str], Plan]) -> Plan:
    return plan(FILE)


def test_a_node_names_every_instance_and_an_instance_itself(shop: Plan) -> None:
    sup = supervisor(shop)
    assert resolve(["worker"], sup) == ("worker.0", "worker.1")
    assert resolve(["worker.1", "front", "worker"], sup) == ("worker.1", "front", "worker.0")


@pytest.mark.parametrize("names, message", [
    (["wroker"], "no node 'wroker' in shop; did you mean worker"),
    (["nothing-like-it"], "no node 'nothing-like-it' in shop; its nodes: audit, back, front, worker"),
    ([], "name one or more nodes"),
    ("worker", "name one or more nodes"),
    ([3], "name one or more nodes"),
])
def test_names_the_run_has_not_are_refused_with_the_nearest(shop: Plan, names: Any, message: str) -> None:
    with pytest.raises(BadNames, match=message.replace("(", r"\(")):
        resolve(names, supervisor(shop))


def test_a_probe_of_a_test_is_not_restarted(shop: Plan) -> None:
    with pytest.raises(BadNames, match="a process topo did not start"):
        resolve(["back"], supervisor(shop, external=frozenset({"rear"})))


def test_the_requests_answered_here() -> None:
    assert command_of(b'{"cmd": "restart", "nodes": ["a"]}') == "restart"
    assert command_of(b'{"cmd": "facts"}') == "facts"
    assert command_of(b'{"cmd": "ps"}') is None
    assert command_of(b"[[[") is None and command_of(b"[1]") is None


def test_a_restart_moves_each_process_once_to_its_next_generation(shop: Plan) -> None:
    sup = supervisor(shop)
    edits = Edits(sup)
    assert edits.restart(("back", "audit", "worker.1")) == ("rear", "worker.1")
    assert sup.stopping.replaced == [("rear", 0), ("worker.1", 0)]  # told to stop before the move
    assert (sup.procs["rear"].generation, sup.procs["worker.1"].generation, sup.procs["front"].generation) == (1, 1, 0)
    assert {n: (s.state, s.restarts) for n, s in sup.nodes.items()} == {
        "front": ("running", 0), "worker.0": ("running", 0), "worker.1": ("restarting", 1),
        "back": ("restarting", 1), "audit": ("restarting", 1)}
    assert sup.procs["rear"].restart_at is not None
    assert sup.said == ["restarting process rear (back, audit): asked by topo restart",
                        "restarting process worker.1 (worker.1): asked by topo restart"]
    # asked again while it restarts: the restart under way is the one waited for
    assert edits.restart(("back",)) == ("rear",) and sup.procs["rear"].generation == 1


class FakeControl:
    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


def test_the_reply_waits_until_the_nodes_are_ready_again(shop: Plan) -> None:
    sup = supervisor(shop)
    edits, control = Edits(sup), FakeControl()
    edits.answer([b"id", b"", json.dumps({"cmd": "restart", "nodes": ["worker.0"]}).encode()], control)  # type: ignore[arg-type]
    edits.settle()
    assert control.sent == []
    node = sup.nodes["worker.0"]
    node.state = "starting"
    edits.settle()
    assert control.sent == []
    node.state, node.started = "running", float("inf")  # ready, after the request
    edits.settle()
    (frames,) = control.sent
    reply = json.loads(frames[-1])
    assert frames[:2] == [b"id", b""] and reply["ok"] is True
    assert reply["processes"] == [{"name": "worker.0", "instances": ["worker.0"], "pid": sup.procs["worker.0"].pid,
                                   "host": "local"}]


def test_a_node_that_fails_to_come_back_or_a_stopping_run_ends_the_wait(shop: Plan) -> None:
    sup = supervisor(shop)
    edits, control = Edits(sup), FakeControl()
    for names in (["front"], ["back"]):
        edits.answer([b"id", b"", json.dumps({"cmd": "restart", "nodes": names}).encode()], control)  # type: ignore[arg-type]
    sup.nodes["front"].state = "failed"
    edits.settle()
    assert [json.loads(f[-1])["error"] for f in control.sent] == ["front failed"]
    sup.code = 130
    edits.settle()
    assert [json.loads(f[-1])["error"] for f in control.sent] == ["front failed", "the run is stopping"]
    edits.answer([b"id", b"", b'{"cmd": "restart", "nodes": ["back"]}'], control)  # type: ignore[arg-type]
    assert json.loads(control.sent[-1][-1]) == {"ok": False, "error": "the run is stopping"}


def test_bad_requests_are_answered_at_once(shop: Plan) -> None:
    edits, control = Edits(supervisor(shop)), FakeControl()
    edits.answer([b"id", b"", b'{"cmd": "restart", "nodes": ["nope"]}'], control)  # type: ignore[arg-type]
    edits.answer([b"id", b"", b'{"cmd": "restart"}'], control)  # type: ignore[arg-type]
    edits.answer([b"id", b"", b'{"cmd": "facts"}'], control)  # type: ignore[arg-type]
    replies = [json.loads(f[-1]) for f in control.sent]
    assert replies[0]["usage"] is True and "no node 'nope'" in replies[0]["error"]
    assert replies[1]["usage"] is True
    assert replies[2]["ok"] is True and replies[2]["facts"]["topology"] == "shop"
