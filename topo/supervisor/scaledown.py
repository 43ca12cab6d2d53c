"""A scale-down without loss: the removed instances a running feeder deals to are drained
before they go (``topo apply``, ``replicas`` lowered).

Where the difference removes a link from a running, untouched PUSH that binds it over
ipc or tcp (on this host or another, CURVE included) to an instance whose process the
apply removes, that process is not stopped.
Instead (the process side is :mod:`topo.process.handover`, which says why this is the
order libzmq loses nothing in):

1. the feeder is sent ``release``: at its node's next use of one of its sockets, a new
   socket takes the old one's place under the node's socket object, the old one (with
   its connections and what it queues) is closed once its peers have read all of it, and
   the node waits (answered ``linked``);
2. each removed instance is sent ``retire``: once its connection to the old socket is
   gone and nothing is readable, it disconnects and its node returns (``node.running``
   false), what it sent delivered; its process ends by itself;
3. once every removed instance has retired (or ended), the feeder is sent ``rebind``: the
   new socket binds the same address, and the instances kept, which kept what the old
   socket sent them, reconnect by themselves (their reconnect interval).

Each step has a deadline: a feeder whose node neither uses one of its sockets nor asks
``node.running`` within :data:`TAKE_WITHIN` seconds, or a socket that also binds inproc
(its inproc peers would not reconnect), leaves the removed instances stopped as before
(what was in flight to them is lost: the output says so); a removed instance that has not
retired within the grace period is stopped, and the feeder binds again once it has ended;
one that retired and whose process has not ended within the grace period since is
stopped too (its node waits in a call nothing will end; nothing is lost by it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from topo.plan.diff import PlanDiff
from topo.plan.planner import Plan
from topo.process.control import Kind, Message

if TYPE_CHECKING:
    from topo.supervisor.runstate import ProcState
    from topo.supervisor.transitions import Transitions

#: How long a feeder's node has to use one of its sockets before the scale-down falls back
#: to stopping the removed peers.
TAKE_WITHIN = 2.0
#: The sockets that deal (round robin) to the peers of an endpoint they bind, and receive
#: nothing (a DEALER would lose the replies on their way to its old socket).
DEALING = ("PUSH",)


@dataclass
class Worker:
    process: str
    instance: str
    socket: str
    ident: str
    retired: bool | None = None
    why: str = ""
    stopped: bool = False
    told: bool = False
    #: Once seen retired, when it is stopped if its process has not ended by then: its
    #: node returns by itself, unless it waits in a call that nothing will end.
    stop_by: float | None = None


@dataclass
class Handover:
    """One feeder's endpoint handed over: its removed peers drained, then bound again."""

    ident: str
    feeder: str
    instance: str
    socket: str
    key: str
    workers: list[Worker] = field(default_factory=list)
    sent: bool = False
    released: bool | None = None
    why: str = ""
    deadline: float = float("inf")
    over: bool = False


def handovers(d: PlanDiff, old: Plan, new: Plan, bound: dict[str, str], tag: str) -> list[Handover]:
    """The endpoints whose removed peers are drained rather than stopped."""
    removed = {p.name for p in d.processes if p.kind == "-"}
    moving = {p.name for p in d.processes} - removed
    out: dict[tuple[str, str], Handover] = {}
    for ln in d.links:
        link = next((k for k in old.links if ln.kind == "-" and k.src_instance == ln.src
                     and k.dst_instance == ln.dst), None)
        if link is None or link.bind_instance != link.src_instance or link.transport.value not in ("ipc", "tcp"):
            continue
        feeder, _, fsock = ln.src.rpartition(".")
        worker, _, wsock = ln.dst.rpartition(".")
        key = f"{link.bind_instance}/{link.transport.value}"
        if feeder not in new.instances or worker in new.instances or key not in bound \
                or key in d.endpoints_removed or key not in new.endpoints:
            continue
        fproc, wproc = new.instances[feeder].process, old.instances[worker].process
        kind = next(s.type for s in old.instances[feeder].sockets if s.name == fsock)
        if fproc in moving or wproc not in removed or kind not in DEALING:
            continue
        h = out.setdefault((ln.src, key), Handover(f"{tag}:h{len(out)}", fproc, feeder, fsock, key))
        h.workers.append(Worker(wproc, worker, wsock, f"{h.ident}:{len(h.workers)}"))
    retiring: dict[str, set[str]] = {}
    for h in out.values():
        for w in h.workers:
            retiring.setdefault(w.process, set()).add(w.instance)
    # a removed process retires only if each of its nodes does (else it is stopped)
    whole = {p for p, names in retiring.items()
             if set(next(q.instances for q in old.processes if q.name == p)) <= names}
    for h in out.values():
        h.workers = [w for w in h.workers if w.process in whole]
    return [h for h in out.values() if h.workers]


def retiring(hs: list[Handover]) -> set[str]:
    """The removed processes not stopped at once: they retire."""
    return {w.process for h in hs for w in h.workers}


def step(sup: Transitions, hs: list[Handover], now: float) -> bool:
    """Once per turn of the loop: commands sent, deadlines kept; True once all are over."""
    for h in hs:
        _stop_stuck(sup, h, now)
        if h.over:
            continue
        feeder = sup.procs.get(h.feeder)
        if not h.sent:
            _send(sup, h, feeder, now)
        if h.released is None and now >= h.deadline:
            h.released, h.why = False, "its node used none of its sockets in time"
            if feeder is not None and not feeder.ended:
                sup.processes.send(feeder, Message(Kind.REBIND, {"id": h.ident}))  # (withdraws it)
        if h.released is None:
            continue
        gone = {w.process for w in h.workers if w.process not in sup.procs or sup.procs[w.process].ended}
        for w in h.workers:
            if w.retired and not w.told:
                w.told = True
                sup.reporter.system(f"{w.instance}.{w.socket} drained: it read all {h.instance}.{h.socket} "
                                    "dealt it, and returns")
            if w.process not in gone and not w.stopped and not w.retired and (
                    not h.released or w.retired is False or now >= h.deadline):
                _stop(sup, h, w)
        if all(w.retired or w.process in gone for w in h.workers):
            if h.released and feeder is not None and not feeder.ended:
                sup.processes.send(feeder, Message(Kind.REBIND, {"id": h.ident}))
                sup.reporter.system(f"{h.instance}.{h.socket} bound again, by a new socket: "
                                    "the instances kept reconnect to it")
            h.over = True
    return all(h.over for h in hs)


def next_deadline(hs: list[Handover]) -> float:
    return min([h.deadline for h in hs if not h.over]
               + [w.stop_by for h in hs for w in h.workers if w.stop_by is not None and not w.stopped],
               default=float("inf"))


def _stop_stuck(sup: Transitions, h: Handover, now: float) -> None:
    """A removed worker that retired (it read all it was dealt) and whose process has not
    ended within the grace period since is stopped: its node waits in a call nothing will
    end. Nothing is lost by it; the apply would otherwise wait for its end for ever."""
    for w in h.workers:
        proc = sup.procs.get(w.process)
        if not w.retired or w.stopped or proc is None or proc.ended:
            continue
        if w.stop_by is None:
            w.stop_by = now + sup.grace
        elif now >= w.stop_by:
            w.stopped = True
            sup.reporter.system(f"stopping process {w.process} ({w.instance}): it drained, and its node has not "
                                f"returned within {sup.grace:g}s (nothing was in flight to it)")
            sup.stopping.replace(proc, "removed by topo apply")


def _send(sup: Transitions, h: Handover, feeder: ProcState | None, now: float) -> None:
    h.sent, h.deadline = True, now + TAKE_WITHIN
    address = sup.bound.get(h.key, "")
    if feeder is None or feeder.ended or not address:
        h.released, h.why = False, "the feeder is not running"
        return
    within = TAKE_WITHIN + 2 * sup.grace + 5.0  # (the feeder's own bound on its wait, past ours)
    sup.processes.send(feeder, Message(Kind.RELEASE, {
        "id": h.ident, "instance": h.instance, "socket": h.socket, "address": address, "within": within}))
    for w in h.workers:
        proc = sup.procs.get(w.process)
        if proc is not None and not proc.ended:
            sup.processes.send(proc, Message(Kind.RETIRE, {
                "id": w.ident, "instance": w.instance, "socket": w.socket, "address": address}))


def _stop(sup: Transitions, h: Handover, w: Worker) -> None:
    """The fallback: a removed peer not retired is stopped as before."""
    w.stopped = True
    proc = sup.procs[w.process]
    why = w.why or h.why or "not drained within the grace period"
    sup.reporter.system(f"stopping process {w.process} ({w.instance}): removed, not drained "
                        f"({h.instance}.{h.socket}: {why}); what was in flight to it is lost")
    sup.stopping.replace(proc, "removed by topo apply")


def answered(hs: list[Handover], m: Message, grace: float) -> bool:
    """A ``linked`` answering a release or a retire (False: not one of these)."""
    ident, done, why = m["id"], bool(m["done"]), str(m.data.get("why", ""))
    for h in hs:
        if h.ident == ident:
            if h.released is None:
                h.released, h.why = done, why
                h.deadline = time.monotonic() + grace  # for the removed peers to drain
            return True
        for w in h.workers:
            if w.ident == ident:
                w.retired, w.why = done, why
                return True
    return False


def abandon(sup: Transitions, hs: list[Handover]) -> None:
    """The apply is over without them (a failure, the run's stop): what still drains is
    stopped, the feeder bound again (or its release withdrawn)."""
    for h in hs:
        if h.over:
            continue
        h.over = True
        for w in h.workers:
            proc = sup.procs.get(w.process)
            if proc is not None and not proc.ended and not w.retired and not w.stopped:
                _stop(sup, h, w)
        feeder = sup.procs.get(h.feeder)
        if h.sent and feeder is not None and not feeder.ended:
            sup.processes.send(feeder, Message(Kind.REBIND, {"id": h.ident}))
