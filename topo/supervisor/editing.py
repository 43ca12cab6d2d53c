"""The supervisor's answers to the commands that edit a live run: ``topo restart`` (restart
the processes holding some nodes now) and ``topo apply`` (the run's plan as comparable
facts, :mod:`topo.plan.facts`, which the command diffs against the edited file).

A restart asked for is a restart as a restart policy makes it, whatever the node's policy
says: the process is told to stop (its nodes get the grace period), started again once it
has ended under the next generation, its nodes gated again; ``topo ps`` counts it; peers
in other processes keep running and reconnect to the addresses the new process binds
again. Only the restart-policy bookkeeping (backoff, flapping) leaves it out: the user
asked, nothing is failing.

The request's reply waits for the outcome: it is sent once every restarted node is ready
again (or has returned after it was), or as soon as one of them failed or the run began
its stop. The control socket is a ROUTER, so a reply can be held while the loop goes on;
the command itself waits with a deadline of its own.
"""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from topo.plan.facts import facts_of
from topo.supervisor.applying import PLAN_DIFF, Applier
from topo.supervisor.runstate import command_in

if TYPE_CHECKING:
    import zmq

    from topo.supervisor.transitions import Transitions

#: The requests answered here.
COMMANDS = frozenset({"restart", "facts", "apply"})
#: A request names at most this many nodes (anything outside is hostile until checked).
MAX_NAMES = 10_000


class BadNames(ValueError):
    """Names the run does not have (the command exits 2 on it)."""


def command_of(request: bytes) -> str | None:
    """The request's command if it is one answered here, else None."""
    return command_in(request, COMMANDS)


@dataclass
class _Waiting:
    """A ``topo restart`` whose reply waits for its nodes."""

    route: list[bytes]
    processes: tuple[str, ...]
    instances: tuple[str, ...]
    asked: float


class Edits:
    """The edit requests of one supervisor, and the replies they wait for."""

    def __init__(self, supervisor: Transitions) -> None:
        self.sup = supervisor
        self._waiting: list[_Waiting] = []
        self._control: zmq.Socket[Any] | None = None
        self.applier = Applier(supervisor)  # topo apply (topo.supervisor.applying)

    def answer(self, frames: list[bytes], control: zmq.Socket[Any]) -> None:
        """Answers one request (``frames``: route, empty, JSON), at once or once its
        restarts are done (:meth:`settle`)."""
        self._control = control
        try:
            data = json.loads(frames[-1])
            if data["cmd"] == "facts":
                self._reply(frames[:-1], {"ok": True, "facts": facts_of(self.sup.plan)})
                return
            if data["cmd"] == "apply":
                route = frames[:-1]
                self.applier.request(data, lambda reply: self._reply(
                    route, {k: v for k, v in reply.items() if k != PLAN_DIFF}))
                return
            if self.sup.code is not None:
                self._reply(frames[:-1], {"ok": False, "error": "the run is stopping"})
                return
            instances = resolve(data.get("nodes"), self.sup)
            processes = self.restart(instances)
            self._waiting.append(_Waiting(frames[:-1], processes, instances, time.monotonic()))
        except BadNames as err:
            self._reply(frames[:-1], {"ok": False, "usage": True, "error": str(err)})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            self._reply(frames[:-1], {"ok": False, "error": "malformed request"})

    def restart(self, instances: tuple[str, ...], by: str = "topo restart") -> tuple[str, ...]:
        """Restarts the processes holding ``instances`` (each once, with all its nodes);
        a process already waiting for a policy restart is left to it. ``by``: who asked,
        as the run's log says it."""
        sup = self.sup
        names: list[str] = []
        for instance in instances:
            process = sup.plan.instances[instance].process
            if process not in names:
                names.append(process)
        for name in names:
            proc = sup.procs[name]
            if any(sup.nodes[n].state == "restarting" for n in proc.instances):
                continue  # being restarted already: its readiness is what is waited for
            sup.reporter.system(f"restarting process {name} ({', '.join(proc.instances)}): asked by {by}")
            for n in proc.instances:
                node = sup.nodes[n]
                node.state, node.error, node.traceback = "restarting", None, None
                node.restarts += 1
            proc.restart_at = time.monotonic()  # started again as soon as it has ended
            proc.stop_late_at = None
            sup.stopping.replace(proc, f"restart asked by {by}")
            proc.generation += 1  # what the old process says from now on is history
        return tuple(names)

    def settle(self) -> None:
        """Replies to each restart whose nodes are all ready again, or one of which failed,
        or all of them if the run is stopping; and the apply being carried out."""
        self.applier.settle()
        for wait in list(self._waiting):
            reply = self._outcome(wait)
            if reply is not None:
                self._waiting.remove(wait)
                self._reply(wait.route, reply)

    def _outcome(self, wait: _Waiting) -> dict[str, Any] | None:
        sup = self.sup
        nodes = [sup.nodes[n] for p in wait.processes for n in sup.procs[p].instances]
        failed = [n.name for n in nodes if n.state == "failed"]
        if failed or sup.code is not None:
            why = f"{', '.join(failed)} failed" if failed else "the run is stopping"
            return {"ok": False, "error": why, "processes": list(wait.processes)}
        if all(n.started is not None and n.started >= wait.asked and n.state in ("running", "exited")
               for n in nodes):
            return {"ok": True, "processes": [
                {"name": p, "instances": list(sup.procs[p].instances), "pid": sup.procs[p].pid,
                 "host": sup.procs[p].remote or sup.plan.local_host} for p in wait.processes],
                "ready_in": time.monotonic() - wait.asked}
        return None

    def _reply(self, route: list[bytes], reply: dict[str, Any]) -> None:
        if self._control is not None:
            self._control.send_multipart([*route, json.dumps(reply).encode()])


def resolve(names: Any, sup: Transitions) -> tuple[str, ...]:
    """NODE (every instance) or INSTANCE names as instances; :class:`BadNames`, with the
    nearest names, for one the plan has not."""
    if not isinstance(names, list) or not names or len(names) > MAX_NAMES \
            or not all(isinstance(n, str) for n in names):
        raise BadNames("name one or more nodes")
    plan = sup.plan
    out: list[str] = []
    for name in names:
        if name in plan.instances and plan.instances[name].process in sup.external:
            raise BadNames(f"{name} runs in a process topo did not start (a test's probe)")
        found = [name] if name in plan.instances else [i for i, inst in plan.instances.items() if inst.node == name]
        if not found:
            known = sorted({i.node for i in plan.instances.values()} | set(plan.instances))
            near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(near)}?" if near else f"; its nodes: {', '.join(known[:20])}"
            raise BadNames(f"no node {name!r} in {plan.topology}{hint}")
        out.extend(i for i in found if i not in out)
    return tuple(out)
