"""Which removed instances a scale-down drains instead of stopping (topo.supervisor.scaledown):
those a running, untouched PUSH binding an ipc or tcp endpoint deals to, on any host,
whose processes hold nothing else."""

from __future__ import annotations

from typing import Any, Callable

from tests.unit.plan.test_diff import BASE, edited
from topo.plan.diff import diff
from topo.plan.facts import facts_of
from topo.plan.planner import Plan
from topo.supervisor.scaledown import Handover, handovers, retiring


def _handed(plan: Callable[[str], Plan], old_text: str, new_text: str) -> tuple[Plan, list[Handover]]:
    old, new = plan(old_text), plan(new_text)
    bound = {k: e.address.replace("{run_dir}", "/run") for k, e in old.endpoints.items()}
    return old, handovers(diff(facts_of(old), facts_of(new), link_restarts=True), old, new, bound, "t")


def test_a_worker_removed_from_a_bound_push_drains(plan: Callable[[str], Plan]) -> None:
    three = edited(("replicas: 2", "replicas: 3"))
    _, hs = _handed(plan, three, BASE)
    (h,) = hs
    assert (h.feeder, h.instance, h.socket, h.key) == ("source", "source", "out", "source.out/ipc")
    assert [(w.process, w.instance, w.socket) for w in h.workers] == [("worker.2", "worker.2", "in")]
    assert retiring(hs) == {"worker.2"}
    # the workers kept restarting with it changes nothing: they reconnect to the same address
    assert retiring(_handed(plan, three, BASE.replace("run: m:work", "run: m:work2"))[1]) == {"worker.2"}


def test_no_drain_where_the_feeder_restarts_or_a_worker_is_added(plan: Callable[[str], Plan]) -> None:
    three = edited(("replicas: 2", "replicas: 3"))
    # the feeder's args changed: its process restarts anyway, with its queue
    assert _handed(plan, three, BASE.replace("rate: 10", "rate: 20"))[1] == []
    # a worker added is no scale-down
    assert _handed(plan, BASE, three)[1] == []


def test_a_worker_removed_from_a_push_bound_over_tcp_drains_too(plan: Callable[[str], Plan]) -> None:
    three = edited(("replicas: 2", "replicas: 3"))
    for curve in ("false", "true"):
        tcp = three.replace("source.out -> worker.in",
                            f"{{from: source.out, to: worker.in, transport: tcp, curve: {curve}}}")
        assert tcp != three
        (h,) = _handed(plan, tcp, tcp.replace("replicas: 3", "replicas: 2"))[1]
        assert h.key == "source.out/tcp" and [w.instance for w in h.workers] == ["worker.2"]


class _Sup:
    """What scaledown.step uses of the supervisor: its processes, their commands, its log."""

    def __init__(self, procs: list[str]) -> None:
        from topo.supervisor.runstate import ProcState

        self.procs = {name: ProcState(name, (name,), hello=True) for name in procs}
        self.bound = {"source.out/ipc": "ipc:///run/0-source.out.sock"}
        self.grace = 1.0
        self.sent: list[tuple[str, str]] = []
        self.said: list[str] = []
        self.stopped: list[str] = []
        self.processes = self
        self.reporter = self
        self.stopping = self

    def send(self, proc: Any, message: Any) -> None:
        self.sent.append((proc.name, message.kind.value))

    def system(self, line: str) -> None:
        self.said.append(line)

    def replace(self, proc: Any, reason: str) -> None:
        self.stopped.append(proc.name)


def _linked(ident: str, done: bool, why: str = "") -> Any:
    from topo.process.control import Kind, Message

    return Message(Kind.LINKED, {"id": ident, "instance": "x", "socket": "y", "done": done, "why": why})


def test_the_feeder_binds_again_only_once_the_removed_worker_has_retired(plan: Callable[[str], Plan]) -> None:
    from topo.supervisor.scaledown import answered, step

    (h,) = _handed(plan, edited(("replicas: 2", "replicas: 3")), BASE)[1]
    sup = _Sup(["source", "worker.2"])
    assert not step(sup, [h], 0.0)  # type: ignore[arg-type]
    assert sup.sent == [("source", "release"), ("worker.2", "retire")]
    assert answered([h], _linked(h.ident, True), sup.grace)
    assert not step(sup, [h], 0.5)  # type: ignore[arg-type]
    assert ("source", "rebind") not in sup.sent and sup.stopped == []  # the worker still drains
    assert answered([h], _linked(h.workers[0].ident, True), sup.grace)
    assert step(sup, [h], 0.6)  # type: ignore[arg-type]
    assert sup.sent[-1] == ("source", "rebind") and sup.stopped == []
    assert any("worker.2.in drained" in line for line in sup.said)


def test_a_release_not_taken_in_time_is_withdrawn_and_the_worker_stopped_as_before(
        plan: Callable[[str], Plan]) -> None:
    from topo.supervisor.scaledown import TAKE_WITHIN, answered, step

    (h,) = _handed(plan, edited(("replicas: 2", "replicas: 3")), BASE)[1]
    sup = _Sup(["source", "worker.2"])
    step(sup, [h], 0.0)  # type: ignore[arg-type]
    assert not step(sup, [h], TAKE_WITHIN - 0.1)  # type: ignore[arg-type]
    assert not step(sup, [h], TAKE_WITHIN + 0.1)  # type: ignore[arg-type]
    assert sup.sent[-1] == ("source", "rebind") and sup.stopped == ["worker.2"]  # (rebind: withdrawn)
    assert any("what was in flight to it is lost" in line for line in sup.said)
    assert answered([h], _linked(h.ident, False, "withdrawn"), sup.grace)  # a late answer changes nothing
    sup.procs["worker.2"].ended = True
    assert step(sup, [h], TAKE_WITHIN + 0.2)  # type: ignore[arg-type]
    assert sup.stopped == ["worker.2"]
