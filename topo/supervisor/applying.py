"""``topo apply`` carried out: the running plan replaced by an edited file's, on the live
run, touching only the processes the difference names.

What the supervisor is sent is hostile until checked. It is not sent a plan: it is sent
the names of the files (and the ``--set``, ``--profile`` and strictness options) and
reads them itself, through the same loader and validation as ``topo up`` (:func:`read`),
then plans them keeping the running links' binding ends, in a thread of its own
(:mod:`topo.supervisor.applyread`) that hands the plan to the loop. A serialized plan would need a
second validator as thorough as the file's to be trusted (endpoints, process names and
addresses all arrive from outside); a file read again needs none. The price is a second
reading of the file (the command reads it first to show its problems); for the
200-node benchmark topology about 0.1 s, which the loop does not wait for. A test harness,
in the same process, hands its plan over directly (:meth:`Applier.post`).

Carried out, in one turn of the supervisor's loop (nothing waits in it):

- a process that the difference restarts (a node's ``run``, ``args``, ``env``, process or
  sockets changed; a node added to it or removed from it; a link one of its live sockets
  would connect, disconnect, bind or unbind) is restarted as ``topo restart`` restarts
  it, started again with the new plan's share: its nodes get the grace period, pass the
  gate again, its peers reconnect to the same addresses;
- a process that only holds removed nodes is told to stop, as in a stop (the grace
  period); it is forgotten once it has ended;
- a new process is started and gated as at ``topo up``: it gets its endpoint table as
  soon as what it connects to is bound, and its nodes run once connected; a PUSH already
  running deals to a new worker from the handshake on (the worker's gate waits for it);
- everything else is left as it is: the same processes, the same connections.

Links are made or dropped in place where libzmq allows it: a running socket that has to
connect or disconnect does so in the thread that owns it, at its next use
(:mod:`topo.supervisor.relinking`, :mod:`topo.process.relink`); a bind or unbind, an
inproc or CURVE link, a PUB that would connect, or a SUB a new publisher's gate waits for
and whose node does not use it in time restarts that socket's process instead, and the
output says so (``↻ process P (link A -> B: why)``).

New ipc endpoints are given file names no endpoint of the run uses: the planner numbers
ipc files in the order it meets them, so an edited file's numbers can name a file a
running socket has bound.

On other hosts the same is done through their agents (:mod:`topo.hosts.hostedits`): they
get the new plan's share of their host before any start, a host new to the run gets its
keys and its agent, a host no process is left on has its agent stopped (the reply waits
for it to leave), a host whose definition changed runs its restarted processes under a
new agent. A process moved to another host ends where it ran and starts where it runs now.

The reply waits until every started or restarted node is ready (or failed), every
removed process has ended, as ``topo restart``'s does, and every host left without
processes has seen its agent leave.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from topo.errors import TopoError
from topo.plan.diff import PlanDiff, diff
from topo.plan.diffview import diff_json, diff_text
from topo.plan.facts import facts_of, kept_binds
from topo.plan.hostdiff import host_refusal
from topo.plan.planner import Plan, make_plan
from topo.supervisor import relinking, scaledown
from topo.supervisor.applyread import Outcome, Reading
from topo.supervisor.applypaths import import_path, record_file, unique_ipc
from topo.supervisor.execstarts import ExecStarts
from topo.supervisor.restarts import History
from topo.supervisor.runstate import NodeState, ProcState

if TYPE_CHECKING:
    from topo.supervisor.transitions import Transitions

#: The reply's key for the :class:`PlanDiff` itself (for a harness; not sent as JSON).
PLAN_DIFF = "plan_diff"
#: At most this many files and ``--set`` values in a request (hostile until checked).
MAX_PARTS = 1000


class Refused(TopoError):
    """An apply that changes nothing: the file is invalid, another topology, or asks for
    what is not done yet. ``exit_code`` 2, as for an invalid file."""

    exit_code = 2


@dataclass
class Pending:
    """An apply carried out, waiting for its processes."""

    diff: PlanDiff
    plan: Plan
    asked: float
    started: tuple[str, ...]
    removed: tuple[str, ...]
    done: Callable[[dict[str, Any]], None]
    homes: dict[str, str] = field(default_factory=dict)
    #: Who asked, as the run's log says it (``topo apply``, ``topo up --watch``).
    by: str = "topo apply"
    #: The running sockets changed in place (topo.supervisor.relinking), and the addresses
    #: of the endpoints the apply removed (what a disconnect names).
    relinks: list[relinking.Request] = field(default_factory=list)
    removed_keys: dict[str, str] = field(default_factory=dict)
    #: Feeders whose removed peers drain before they go (topo.supervisor.scaledown).
    handovers: list[scaledown.Handover] = field(default_factory=list)


def read(request: dict[str, Any], running: Plan) -> Plan:
    """The plan of the files a request names, read as ``topo up`` reads them and planned
    keeping the running links' binding ends; :class:`TopoError` for anything amiss."""
    from topo.file.runref import load_resolved
    from topo.file.sources import Sources, profiles_from
    from topo.file.validate import load

    files, sets, profiles = request.get("files"), request.get("sets", []), request.get("profiles", [])
    for name, value in (("files", files), ("sets", sets), ("profiles", profiles)):
        if not isinstance(value, list) or len(value) > MAX_PARTS or not all(isinstance(v, str) for v in value):
            raise Refused(f"malformed request: {name}")
    strict, lenient, run_check = request.get("strict"), request.get("lenient", False), request.get("run_check", True)
    if strict not in (None, True, False) or not isinstance(lenient, bool) or not isinstance(run_check, bool):
        raise Refused("malformed request: checking options")
    assert isinstance(files, list) and isinstance(sets, list) and isinstance(profiles, list)
    sources = Sources(tuple(files), tuple(sets), profiles_from(profiles, environ={}))
    reader = load_resolved if run_check else load
    topology = reader(sources, strict=strict, lenient=lenient)
    plan = make_plan(topology, keep_binds=kept_binds(facts_of(running)))
    return plan


class Applier:
    """The applies of one supervisor: at most one at a time."""

    def __init__(self, supervisor: Transitions) -> None:
        self.sup = supervisor
        self.pending: Pending | None = None
        #: A request's files being read by a thread (topo.supervisor.applyread), and its reply.
        self.reading: Reading | None = None
        #: Links in place the reply did not wait for, until their answer (the run's log says it).
        self.unawaited: list[relinking.Request] = []
        self._relinks: list[relinking.Request] = []
        self._reading_done: Callable[[dict[str, Any]], None] | None = None
        #: Hosts whose agents an apply is waiting to see leave (None: none to look for).
        self._far: list[str] | None = None
        #: Plans handed over by a test harness (another thread): (plan, done).
        self._posted: queue.SimpleQueue[tuple[Plan, Callable[[dict[str, Any]], None], str]] = queue.SimpleQueue()

    def post(self, plan: Plan, done: Callable[[dict[str, Any]], None], by: str = "topo apply") -> None:
        """Thread-safe: ``plan`` applied by the loop (once the apply under way, if any, is
        over); ``done`` called (in the loop's thread) with the reply once it is over."""
        self._posted.put((plan, done, by))
        self.sup.wake()  # type: ignore[attr-defined]

    def request(self, request: dict[str, Any], done: Callable[[dict[str, Any]], None]) -> None:
        """A ``topo apply`` request: its files read, checked and planned by a thread
        (:mod:`topo.supervisor.applyread`), then applied by the loop."""
        try:
            self._refuse_busy()
        except TopoError as err:
            done({"ok": False, "usage": True, "error": err.format_message()})
            return
        call_soon = getattr(self.sup, "call_soon")  # the Supervisor's (Transitions is its rules)
        reading = Reading(call_soon, request, self.sup.plan, read, self._read)
        self.reading, self._reading_done = reading, done
        reading.start()

    def _read(self, reading: Reading, outcome: Outcome) -> None:
        """In the loop's thread: the request's plan (or its refusal) handed over."""
        done = self._reading_done
        self.reading = self._reading_done = None
        assert done is not None
        plan, refusal = outcome
        if plan is None:
            done(refusal or {"ok": False, "usage": True, "error": "cannot read the file"})
            return
        self.apply(plan, done, reading.asked)

    def next_deadline(self) -> float:
        """When the loop must look again even if nothing happens: a reading's deadline."""
        handing = scaledown.next_deadline(self.pending.handovers) if self.pending is not None else float("inf")
        return min(handing, self.reading.deadline if self.reading is not None else float("inf"))

    def apply(self, plan: Plan, done: Callable[[dict[str, Any]], None], asked: float | None = None,
              by: str = "topo apply") -> None:
        """``plan`` made the run's (``asked``: when the request came, what ``took`` counts
        from; default now)."""
        sup = self.sup
        try:
            self._refuse_busy()
            d = diff(facts_of(sup.plan), facts_of(plan), link_restarts=True)
            self._refuse_hosts(plan)
            sup.processes.prepare(plan)  # (keys and agents' channel for new hosts)
        except TopoError as err:
            done({"ok": False, "usage": True, "error": err.format_message()})
            return
        except ValueError as err:  # (diff's UsageError is a TopoError; facts that do not compare)
            done({"ok": False, "usage": True, "error": f"cannot apply: {err}"})
            return
        except Exception as err:  # noqa: BLE001 - the other hosts' channel could not be made
            done({"ok": False, "usage": True, "error": f"cannot apply: {type(err).__name__}: {err}"})
            return
        plan = unique_ipc(plan, sup.plan, sup.bound)
        relinks = relinking.requests(d, sup.plan, plan, f"{time.monotonic():.6f}")
        hosts = {p.name: p.host for p in plan.processes}
        # a link in place is made by a process of this host only (not tried through an
        # agent yet): one on another host restarts with its new share instead, and no gate
        # leaves it out
        far = [r for r in relinks if hosts.get(r.process) != plan.local_host]
        relinks = [r for r in relinks if r not in far]
        removed_keys = {k: sup.bound[k] for k in d.endpoints_removed if k in sup.bound}
        handovers = scaledown.handovers(d, sup.plan, plan, sup.bound, f"{time.monotonic():.6f}")
        homes = {name: plan.instances[name].process for name in d.added}
        asked = time.monotonic() if asked is None else asked
        sup.reporter.system(f"applying {plan.file} ({by}): " + (", ".join(
            f"{p.kind} {p.name}" for p in d.processes) or "no process touched"))
        self._relinks = relinks  # (what the gates of the processes started now leave out)
        started, removed = self._carry_out(d, plan, scaledown.retiring(handovers))
        self.pending = Pending(d, plan, asked, started, removed, done, homes, by, relinks, removed_keys, handovers)
        self.unawaited = [r for r in self.unawaited if r.done is None][-1000:] + [r for r in relinks if not r.awaited]
        for req in far:
            req.done, req.why = False, f"process {req.process} runs on host {hosts.get(req.process)}"
            self._fall_back(self.pending, req)
        self.settle()

    def _refuse_busy(self) -> None:
        if self.sup.code is not None:
            raise Refused("the run is stopping")
        if self.pending is not None or self.reading is not None:
            raise Refused("another topo apply is still being carried out; try again once it is over")

    def _refuse_hosts(self, plan: Plan) -> None:
        why = host_refusal(self.sup.plan, plan)
        if why is not None:
            raise Refused(why)

    def _carry_out(self, d: PlanDiff, plan: Plan, retiring: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The new plan made the run's, each process started, stopped or restarted (those
        ``retiring`` are not stopped: they drain and end by themselves)."""
        sup = self.sup
        now = time.monotonic()
        old = sup.plan
        sup.plan = plan
        sup.execs = ExecStarts(plan)
        sup.signals.replan(plan)  # type: ignore[attr-defined]
        sup.sys_path = sup.processes.sys_path = import_path(sup.sys_path, old, plan)
        sup.processes.replan(plan)  # (its plan; agents of other hosts: their share, new keys, launched or left)
        self._far = []  # (settle finds out which hosts, if any, are left without processes)
        record_file(getattr(sup, "run_dir", None), plan)
        for key in d.endpoints_removed:
            sup.bound.pop(key, None)
        restarted = {p.name: "; ".join(p.why) for p in d.processes if p.kind == "↻"}
        removed = tuple(p.name for p in d.processes if p.kind == "-")
        added = tuple(p.name for p in d.processes if p.kind == "+")
        for name in d.removed:
            sup.nodes.pop(name, None)
            sup.history.pop(name, None)
        for name in removed:
            proc = sup.procs[name]
            verb = "retiring" if name in retiring else "stopping"
            sup.reporter.system(f"{verb} process {name} ({', '.join(proc.instances)}): removed"
                                + (" (it drains what its feed dealt it first)" if name in retiring else ""))
            proc.instances = ()
            proc.restart_at = proc.stop_late_at = None
            if name not in retiring:
                sup.stopping.replace(proc, "removed by topo apply")
            proc.generation += 1
        for name, inst in plan.instances.items():
            if name in sup.history:
                history = sup.history[name]
                history.max_restarts, history.window = inst.max_restarts, inst.restart_window
            else:
                sup.history[name] = History(inst.max_restarts, inst.restart_window)
            if name in sup.nodes:
                sup.nodes[name].process = inst.process
        for proc_plan in plan.processes:
            if proc_plan.name in restarted:
                self._restart(sup.procs[proc_plan.name], proc_plan.instances, restarted[proc_plan.name], now)
        sup._needs = {p.name: {k for n in p.instances for s in plan.instances[n].sockets for k in s.connects}
                      for p in plan.processes}
        sup.ready_deadline = max(sup.ready_deadline, now + sup.ready_timeout)
        for proc_plan in plan.processes:
            if proc_plan.name in added:
                proc = ProcState(proc_plan.name, proc_plan.instances)
                sup.procs[proc.name] = proc
                for name in proc.instances:
                    sup.nodes[name] = NodeState(name, proc.name)
                sup._start(proc)  # type: ignore[attr-defined]
        return tuple(p.name for p in d.processes if p.kind in ("+", "↻")), removed

    def _restart(self, proc: ProcState, instances: tuple[str, ...], why: str, now: float) -> None:
        sup = self.sup
        sup.reporter.system(f"restarting process {proc.name} ({', '.join(instances)}): {why}")
        for name in instances:
            node = sup.nodes.get(name)
            if node is None:  # new in this process: it starts with it
                sup.nodes[name] = NodeState(name, proc.name, state="restarting")
                continue
            node.state, node.error, node.traceback = "restarting", None, None
            node.restarts += 1
        proc.instances = instances
        proc.restart_at = now  # started again, with the new share, as soon as it has ended
        proc.stop_late_at = None
        sup.stopping.replace(proc, "restart asked by topo apply")
        proc.generation += 1

    def settle(self) -> None:
        """Once per turn of the loop: posted plans applied; the reply sent once the apply
        is over (every started node ready or failed, every removed process ended)."""
        if self.reading is not None:
            late = self.reading.late(time.monotonic())
            if late is None and self.sup.code is not None:
                self.reading.over = True
                late = {"ok": False, "error": "the run began its stop; nothing was changed"}
            if late is not None and self._reading_done is not None:
                done, self.reading, self._reading_done = self._reading_done, None, None
                done(late)
        while self.pending is None and self.reading is None:
            try:
                plan, done, by = self._posted.get_nowait()
            except queue.Empty:
                break
            self.apply(plan, done, by=by)
        sup = self.sup
        if self._far is not None:  # hosts an apply left without processes: their agents leave
            self._far = sup.processes.retire_hosts() or None  # (even once the apply has failed)
        wait = self.pending
        if wait is None:
            return
        gone = [name for name in wait.removed if name in sup.procs and sup.procs[name].ended]
        for name in gone:
            del sup.procs[name]  # its end was seen and said: forgotten
        nodes = [sup.nodes[n] for p in wait.started if p in sup.procs for n in sup.procs[p].instances]
        failed = [n.name for n in nodes if n.state == "failed"]
        if failed or sup.code is not None:
            why = f"{', '.join(failed)} failed" if failed else "the run began its stop"
            error = next((f" ({n.name}: {n.error})" for n in nodes if n.state == "failed" and n.error), "")
            self._finish(wait, {"ok": False, "error": f"{why} during topo apply{error}", "failed": failed})
            return
        handed = scaledown.step(sup, wait.handovers, time.monotonic())
        relinking.send_due(sup, wait.relinks, wait.removed_keys)
        for req in [r for r in wait.relinks if r.done is False and r.process not in wait.started]:
            self._fall_back(wait, req)
        ready = all(n.started is not None and n.started >= wait.asked and n.state in ("running", "exited")
                    for n in nodes)
        if ready and handed and not self._far and all(r.done is not None for r in wait.relinks if r.awaited) \
                and not any(name in sup.procs for name in wait.removed):
            self._finish(wait, {"ok": True})

    def linked(self, m: Any) -> None:
        """A process's answer to a link in place (:mod:`topo.supervisor.relinking`), made at
        its socket's next use: maybe after the apply that asked for it is over."""
        wait = self.pending
        if wait is not None and scaledown.answered(wait.handovers, m, self.sup.grace):
            return
        req = relinking.answered(wait.relinks if wait is not None else [], m) \
            or relinking.answered(self.unawaited, m)
        if req is None:
            return
        if req.done:
            word = "unlinked" if all(verb == "disconnect" for verb, _ in req.ops) else "linked"
            self.sup.reporter.system(f"{req.instance}.{req.socket} {word} in place: {', '.join(req.links)}")
        elif wait is not None and req in wait.relinks and req.awaited:
            self._fall_back(wait, req)
        else:
            self.sup.reporter.system(f"{req.instance}.{req.socket} not linked in place: {req.why}")
        if req in self.unawaited:
            self.unawaited.remove(req)

    def gate_skips(self, process: str) -> set[str]:
        """The running instances a starting ``process``'s gates are not to wait for."""
        return relinking.gate_skips(self.pending.relinks if self.pending is not None else self._relinks, process)

    def _fall_back(self, wait: Pending, req: relinking.Request) -> None:
        """``req``'s socket not changed in place: its process restarted with the new share."""
        sup = self.sup
        proc = sup.procs.get(req.process)
        if proc is None:
            return
        host = proc.remote or sup.plan.local_host
        wait.diff = relinking.fell_back(wait.diff, req, host)
        if req.process not in wait.started:
            wait.started = (*wait.started, req.process)
            why = "; ".join(f"link {link}: not in place, {req.why}" for link in req.links)
            self._restart(proc, proc.instances, why, time.monotonic())

    def _finish(self, wait: Pending, reply: dict[str, Any]) -> None:
        sup = self.sup
        self.pending = None
        scaledown.abandon(sup, wait.handovers)
        took = time.monotonic() - wait.asked
        pids = {p: sup.procs[p].pid for p in wait.started if p in sup.procs}
        reply.update({"diff": diff_json(wait.diff), "text": diff_text(wait.diff, wait.homes),
                      "took": took, "pids": pids, PLAN_DIFF: wait.diff})
        if wait.by == "topo apply":  # (another asker says it its own way: topo.supervisor.watching)
            sup.reporter.system(f"topo apply done in {took:.2f}s" if reply["ok"] else f"topo apply: {reply['error']}")
        wait.done(reply)

