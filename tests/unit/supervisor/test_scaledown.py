"""Which removed instances a scale-down drains instead of stopping (topo.supervisor.scaledown):
those a running, untouched PUSH binding an ipc endpoint deals to, on this host, whose
processes hold nothing else."""

from __future__ import annotations

from typing import Callable

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


def test_no_drain_where_the_feeder_restarts_or_the_link_is_tcp(
        plan: Callable[[str], Plan]) -> None:
    three = edited(("replicas: 2", "replicas: 3"))
    # the feeder's args changed: its process restarts anyway, with its queue
    assert _handed(plan, three, BASE.replace("rate: 10", "rate: 20"))[1] == []
    tcp = three.replace("source.out -> worker.in", "{from: source.out, to: worker.in, transport: tcp, curve: false}")
    assert _handed(plan, tcp, tcp.replace("replicas: 3", "replicas: 2"))[1] == []
    # a worker added is no scale-down
    assert _handed(plan, BASE, three)[1] == []
