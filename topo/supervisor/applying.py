"""``topo apply`` carried out: the running plan replaced by an edited file's, on the live
run, touching only the processes the difference names.

What the supervisor is sent is hostile until checked. It is not sent a plan: it is sent
the names of the files (and the ``--set``, ``--profile`` and strictness options) and
reads them itself, through the same loader and validation as ``topo up`` (:func:`read`),
then plans them keeping the running links' binding ends. A serialized plan would need a
second validator as thorough as the file's to be trusted (endpoints, process names and
addresses all arrive from outside); a file read again needs none. The price is a second
reading of the file (the command reads it first to show its problems); for the
200-node benchmark topology that is about 0.1 s of the supervisor's loop. A test harness,
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

Links are not touched in place yet: libzmq allows connect and disconnect on a live socket,
but a zmq socket belongs to its node's thread, and no thread of topo may touch it while
the node runs. A link change that needs a running socket to act restarts that socket's
process instead, and the output says so (``↻ process P (link A -> B)``).

New ipc endpoints are given file names no endpoint of the run uses: the planner numbers
ipc files in the order it meets them, so an edited file's numbers can name a file a
running socket has bound. Nodes on other hosts are not edited yet: a difference that
starts, stops or restarts a process of another host is refused, nothing changed.

The reply waits until every started or restarted node is ready (or failed) and every
removed process has ended, as ``topo restart``'s does.
"""

from __future__ import annotations

import queue
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from topo.errors import TopoError
from topo.plan.diff import PlanDiff, diff
from topo.plan.diffview import diff_json, diff_text
from topo.plan.facts import facts_of, kept_binds
from topo.plan.planner import MAX_IPC_NAME, Plan, make_plan
from topo.supervisor.execstarts import ExecStarts
from topo.plan.share import RUN_DIR
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


def unique_ipc(new: Plan, old: Plan, bound: dict[str, str]) -> Plan:
    """``new`` with each ipc endpoint it adds named by a file no endpoint of the run uses
    (bound now, or planned by ``old``)."""
    used = {_file(a) for a in bound.values()} | {_file(e.address) for e in old.endpoints.values()}
    changed: dict[str, str] = {}
    number = len(used)
    for key, ep in new.endpoints.items():
        if key in old.endpoints or not ep.address.startswith(f"ipc://{RUN_DIR}/"):
            continue
        name = _file(ep.address)
        slug = re.sub(r"^\d+-", "", name).removesuffix(".sock")
        while name in used:  # the planner's way of naming, with a number no file has
            name = f"{number}-{slug}"[:MAX_IPC_NAME - 5] + ".sock"
            number += 1
        used.add(name)
        if name != _file(ep.address):
            changed[key] = f"ipc://{RUN_DIR}/{name}"
    if not changed:
        return new
    endpoints = {k: replace(e, address=changed.get(k, e.address)) for k, e in new.endpoints.items()}
    by_address = {new.endpoints[k].address: a for k, a in changed.items()}
    links = tuple(replace(ln, endpoint=by_address.get(ln.endpoint, ln.endpoint)) for ln in new.links)
    return replace(new, endpoints=endpoints, links=links)


def import_path(sys_path: tuple[str, ...], old: Plan, new: Plan) -> tuple[str, ...]:
    """The node processes' ``sys.path`` head for the processes started from now on: the
    new ``python_path:`` instead of the old, then what ``topo up`` put there (its current
    directory, its file's), then the new file's directory if it is another."""
    kept = [p for p in sys_path if p not in old.python_path]
    extra = [str(Path(new.file).resolve().parent)] if Path(new.file).is_file() else []
    return tuple(dict.fromkeys([*new.python_path, *kept, *extra]))


def _file(address: str) -> str:
    return address.rpartition("/")[2]


class Applier:
    """The applies of one supervisor: at most one at a time."""

    def __init__(self, supervisor: Transitions) -> None:
        self.sup = supervisor
        self.pending: Pending | None = None
        #: Plans handed over by a test harness (another thread): (plan, done).
        self._posted: queue.SimpleQueue[tuple[Plan, Callable[[dict[str, Any]], None], str]] = queue.SimpleQueue()

    def post(self, plan: Plan, done: Callable[[dict[str, Any]], None], by: str = "topo apply") -> None:
        """Thread-safe: ``plan`` applied by the loop (once the apply under way, if any, is
        over); ``done`` called (in the loop's thread) with the reply once it is over."""
        self._posted.put((plan, done, by))
        self.sup.wake()  # type: ignore[attr-defined]

    def request(self, request: dict[str, Any], done: Callable[[dict[str, Any]], None]) -> None:
        """A ``topo apply`` request: its files read, checked and applied."""
        asked = time.monotonic()
        try:
            self._refuse_busy()
            plan = read(request, self.sup.plan)
        except TopoError as err:
            done({"ok": False, "usage": True, "error": err.format_message()})
            return
        except Exception as err:  # noqa: BLE001 - a request must never end the run it edits
            done({"ok": False, "usage": True, "error": f"cannot read the file: {type(err).__name__}: {err}"})
            return
        self.apply(plan, done, asked)

    def apply(self, plan: Plan, done: Callable[[dict[str, Any]], None], asked: float | None = None,
              by: str = "topo apply") -> None:
        """``plan`` made the run's (``asked``: when the request came, what ``took`` counts
        from; default now)."""
        sup = self.sup
        try:
            self._refuse_busy()
            d = diff(facts_of(sup.plan), facts_of(plan), link_restarts=True)
            self._refuse_remote(d, plan)
        except TopoError as err:
            done({"ok": False, "usage": True, "error": err.format_message()})
            return
        except ValueError as err:  # (diff's UsageError is a TopoError; facts that do not compare)
            done({"ok": False, "usage": True, "error": f"cannot apply: {err}"})
            return
        plan = unique_ipc(plan, sup.plan, sup.bound)
        homes = {name: plan.instances[name].process for name in d.added}
        asked = time.monotonic() if asked is None else asked
        sup.reporter.system(f"applying {plan.file} ({by}): " + (", ".join(
            f"{p.kind} {p.name}" for p in d.processes) or "no process touched"))
        started, removed = self._carry_out(d, plan)
        self.pending = Pending(d, plan, asked, started, removed, done, homes, by)
        self.settle()

    def _refuse_busy(self) -> None:
        if self.sup.code is not None:
            raise Refused("the run is stopping")
        if self.pending is not None:
            raise Refused("another topo apply is still being carried out; try again once it is over")

    def _refuse_remote(self, d: PlanDiff, plan: Plan) -> None:
        old = self.sup.plan
        for p in d.processes:
            hosts = {proc.host for proc in (*old.processes, *plan.processes) if proc.name == p.name}
            far = sorted(h for h in hosts if h not in (old.local_host, plan.local_host))
            if far:
                raise Refused(f"not yet: topo apply to a process on another host (process {p.name} on "
                              f"{far[0]}); nothing was changed")

    def _carry_out(self, d: PlanDiff, plan: Plan) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The new plan made the run's, each process started, stopped or restarted."""
        sup = self.sup
        now = time.monotonic()
        old = sup.plan
        sup.plan = plan
        sup.processes.plan = plan
        sup.execs = ExecStarts(plan)
        sup.signals.replan(plan)  # type: ignore[attr-defined]
        sup.sys_path = sup.processes.sys_path = import_path(sup.sys_path, old, plan)
        self._record(plan)
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
            sup.reporter.system(f"stopping process {name} ({', '.join(proc.instances)}): removed")
            proc.instances = ()
            proc.restart_at = proc.stop_late_at = None
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

    def _record(self, plan: Plan) -> None:
        """``run.json`` names the file the run now follows (``topo ps`` shows it)."""
        from topo.supervisor.rundir import overlays_info, read_info

        rd = getattr(self.sup, "run_dir", None)
        info = read_info(rd.path) if rd is not None else None
        if rd is None or info is None:
            return
        for key in ("topology", "run_id", "log_dir", "sockets", "cwd", "overlays"):
            info.pop(key, None)
        rd.write_info(**{**info, "file": str(Path(plan.file).resolve()), **overlays_info(plan.overlays)})

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
        while self.pending is None:
            try:
                plan, done, by = self._posted.get_nowait()
            except queue.Empty:
                break
            self.apply(plan, done, by=by)
        sup = self.sup
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
            self._finish(wait, {"ok": False, "error": f"{why} during topo apply", "failed": failed})
            return
        ready = all(n.started is not None and n.started >= wait.asked and n.state in ("running", "exited")
                    for n in nodes)
        if ready and not any(name in sup.procs for name in wait.removed):
            self._finish(wait, {"ok": True})

    def _finish(self, wait: Pending, reply: dict[str, Any]) -> None:
        sup = self.sup
        self.pending = None
        took = time.monotonic() - wait.asked
        pids = {p: sup.procs[p].pid for p in wait.started if p in sup.procs}
        reply.update({"diff": diff_json(wait.diff), "text": diff_text(wait.diff, wait.homes),
                      "took": took, "pids": pids, PLAN_DIFF: wait.diff})
        if wait.by == "topo apply":  # (another asker says it its own way: topo.supervisor.watching)
            sup.reporter.system(f"topo apply done in {took:.2f}s" if reply["ok"] else f"topo apply: {reply['error']}")
        wait.done(reply)

