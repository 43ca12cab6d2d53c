"""``run.apply(source)``: a test's run changed to an edited topology as ``topo apply``
changes a live run (:mod:`topo.supervisor.applying`), returning the difference applied.

The source is read as :func:`topo.testing.up` reads it (a path or a mapping, overlays,
``--set`` values, profiles), planned keeping the running links' binding ends, and handed
to the run's supervisor in this process: it trusts the plan, as it trusts the one ``up``
gave it. The call returns once every started or restarted node is ready and every removed
process has ended.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from topo.errors import TopoError
from topo.plan.diff import PlanDiff
from topo.plan.facts import facts_of, kept_binds
from topo.plan.planner import make_plan
from topo.supervisor.applying import PLAN_DIFF
from topo.testing.overrides import PROBE_NODE
from topo.testing.source import read_source

if TYPE_CHECKING:
    from topo.supervisor.supervise import Supervisor


class ApplyError(TopoError):
    """The edit was refused (nothing changed) or a node it started did not come up; the
    message says which."""


def apply_to(supervisor: Supervisor, source: str | Path | Mapping[str, Any], *, overlays: Sequence[str | Path],
             sets: Sequence[str], profiles: Sequence[str], strict: bool | None, lenient: bool,
             timeout: float) -> PlanDiff:
    if PROBE_NODE in supervisor.plan.instances:
        raise ApplyError("run.apply: not for a run with probes (they are the test's, not the file's)")
    topology, _ = read_source(source, probes={}, overrides={}, overlays=overlays, sets=sets,
                              profiles=profiles, strict=strict, lenient=lenient)
    plan = make_plan(topology, keep_binds=kept_binds(facts_of(supervisor.plan)))
    done = threading.Event()
    replies: list[dict[str, Any]] = []

    def answered(reply: dict[str, Any]) -> None:
        replies.append(reply)
        done.set()

    supervisor.edits.applier.post(plan, answered)
    if not done.wait(timeout):
        raise ApplyError(f"run.apply: its nodes were not ready within {timeout:g}s")
    reply = replies[0]
    if not reply.get("ok"):
        raise ApplyError(f"run.apply: {reply.get('error')}")
    diff = reply[PLAN_DIFF]
    assert isinstance(diff, PlanDiff)
    return diff
