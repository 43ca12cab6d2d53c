"""What each report of a node means for the run: the rules of a node's life.

The supervisor's loop (:mod:`topo.supervisor.supervise`) owns the sockets, the poll and
the deadlines; these are the rules it applies to what arrives: a node bound, ready,
returned or failed, and what follows (restart with backoff, give up, stop the run, wire up
the processes whose peers are now bound). Kept apart so the rules read in one place,
without the machinery that feeds them; they are one class's methods because they share
that class's state (one owner of a run's state, never a copy).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from topo.file.model import OnExit
from topo.process.control import Kind, Message
from topo.supervisor.runstate import EXIT_FAILED, EXIT_OK, TERMINAL, Every, NodeState, has_ended, was_ready

if TYPE_CHECKING:
    from topo.plan.planner import Plan
    from topo.supervisor.execstarts import ExecStarts
    from topo.supervisor.pipes import Pipes
    from topo.supervisor.processes import Processes
    from topo.supervisor.restarts import History
    from topo.supervisor.runstate import ProcState, Reporter
    from topo.supervisor.stopping import Stopping


class Transitions:
    """The event rules of :class:`topo.supervisor.supervise.Supervisor`, its base class."""

    plan: Plan
    reporter: Reporter
    nodes: dict[str, NodeState]
    procs: dict[str, ProcState]
    history: dict[str, History]
    bound: dict[str, str]
    external: frozenset[str]
    grace: float
    ready_timeout: float
    ready_deadline: float
    started: float
    all_ready_reported: bool
    code: int | None
    pipes: Pipes
    processes: Processes
    execs: ExecStarts
    stopping: Stopping
    sys_path: tuple[str, ...]
    _needs: dict[str, set[str]]
    _hold_stop_until: float
    #: (node, error) of code failures already told (:meth:`_code_failed`).
    _told_imports: set[tuple[str, str]]

    def request_stop(self, code: int, reason: str) -> None:
        raise NotImplementedError

    @functools.cached_property
    def _all_ready(self) -> Every:
        return Every(was_ready)

    @functools.cached_property
    def _all_ended(self) -> Every:
        return Every(has_ended)

    def _handle(self, m: Message) -> None:
        if m.kind is Kind.LINKED:  # a link in place answered (topo.supervisor.applying)
            getattr(self, "edits").applier.linked(m)
            return
        if m.kind in (Kind.EXITED, Kind.FAILED, Kind.STOPPED, Kind.BYE):  # its lines first
            node = self.nodes.get(m.data.get("instance", ""))
            self.pipes.drain(node.process if node else m.data.get("process", ""))
        if m.kind is Kind.OUTPUT:
            if m["instance"] in self.nodes:  # (a name of no node would make a log file of it)
                self.reporter.output(m["instance"], m["line"], m["err"])
            return
        if m.kind is Kind.HELLO:
            proc = self.procs.get(m["process"])
            if proc is not None and self.stopping.hello(proc, m.data.get("gen")):
                self.processes.admit_keys(proc)
                self._maybe_connect()
            return
        if m.kind is Kind.BYE:
            proc = self.procs.get(m.data.get("process", ""))
            if proc is not None and m.data.get("gen") == proc.generation:
                proc.bye = True
                for name in m.data.get("stuck", []):
                    node = self.nodes.get(name)
                    if node is not None and node.state not in TERMINAL:
                        node.state, node.ended = "stopped", time.monotonic()
                        node.error = f"ignored the stop: abandoned after the {self.grace:g}s grace period"
                        self.reporter.system(f"{name} {node.error}")
                if proc.name in self.external:
                    proc.ended = True
            return
        if "instances" in m.data:  # one report for several nodes of a process (bound, ready)
            for each in m.split():
                self._handle(each)
            return
        node = self.nodes.get(m.data.get("instance", ""))
        if node is None or m.data.get("gen") != self.procs[node.process].generation:
            return  # a late word from a process that has been replaced
        if m.kind is Kind.BOUND:
            self.bound.update(m["endpoints"])
            node.state = "bound"
            if m["endpoints"]:  # (nothing new bound: nobody's wait for its table changed)
                self._maybe_connect()
        elif m.kind is Kind.IMPORTING and node.state == "bound":
            node.state = "importing"
        elif m.kind is Kind.READY:
            node.state, node.started, node.error, node.traceback = "running", time.monotonic(), None, None
            if node.restarts:
                self.reporter.system(f"{node.name} ready again (restart {node.restarts})")
            self._maybe_all_ready()
        elif m.kind is Kind.EXITED:
            self._ended(node, None, None)
        elif m.kind is Kind.STOPPED:
            if node.state != "restarting":
                node.state, node.ended = "stopped", time.monotonic()
        elif m.kind is Kind.FAILED:
            told = bool(m.data.get("code")) and self._code_failed(node, m["error"], m.data.get("missing"))
            self._ended(node, m["error"], None if told else m.data.get("traceback"), quiet=told)
        elif m.kind is Kind.NOT_READY:
            self._hold_stop_until = min(time.monotonic(), self.ready_deadline) + 0.5
            waiting = "\n".join(f"  waiting: {w}" for w in m["waiting"])
            self._fail(node, f"not ready within {self.ready_timeout:g}s\n{waiting}", None)

    def _program_started(self, proc: ProcState, binds: dict[str, str]) -> None:
        """An exec node's program has started: what a runtime would report, told here (it
        is known to the supervisor alone). Its hello and wiring are done (it was handed its
        endpoints), what it binds is bound (ipc paths, ports picked before it started:
        peers waiting for them are sent their table), and with ``ready: started`` it is
        ready."""
        proc.hello = proc.connected = True
        for name in proc.instances:
            self._handle(Message(Kind.BOUND, {"instance": name, "gen": proc.generation, "endpoints": binds}))
            if self.plan.instances[name].ready == "started":
                self._handle(Message(Kind.READY, {"instance": name, "gen": proc.generation}))

    def _program_ended(self, proc: ProcState, exitcode: int | None, how: str) -> None:
        """An exec node's program ended (``how``: its exit status in words): status 0 is a
        node that returned, any other a failure with that status, both as the restart
        policy says; during the run's stop (the program was sent SIGTERM), it stopped."""
        for name in proc.instances:
            node = self.nodes[name]
            if node.state in TERMINAL or node.state == "restarting":
                continue
            node.exitcode = exitcode
            if self.code is not None:
                if not self._stopped_by_kill(proc, node):
                    node.state, node.ended = "stopped", time.monotonic()
            elif exitcode == 0:
                self._ended(node, None, None)
            else:
                self._ended(node, how, None)

    def _stopped_by_kill(self, proc: ProcState, node: NodeState) -> bool:
        """During the run's stop, a node whose process the supervisor had to SIGKILL (it had
        not ended a second after SIGTERM, the grace period over) stopped, and is said to
        have ignored the stop, as one whose process abandoned it is: a Python node's and a
        program's alike. True when so."""
        if self.code is None or proc.kill_sent is None:
            return False
        node.state, node.ended = "stopped", time.monotonic()
        node.error = f"ignored the stop: killed after the {self.grace:g}s grace period"
        self.reporter.system(f"{node.name} {node.error}")
        return True

    def _code_failed(self, node: NodeState, error: str, missing: str | None) -> bool:
        """A node's code cannot be imported: said once per node and error, with where its
        ``run:`` is written and, for a module not found, where it was looked for; every
        instance fails alike, and ten replicas must not print one typo ten times. True: told
        already, by another instance's failure."""
        inst = self.plan.instances[node.name]
        told = (inst.node, error)
        if told in self._told_imports:
            return True
        self._told_imports.add(told)
        where = f"{inst.run_at}: " if inst.run_at else ""
        self.reporter.system(f"{where}{inst.node}: run: {inst.run} cannot be imported"
                             + (f" (every one of its {inst.replicas} instances)" if inst.replicas > 1 else ""))
        module = inst.run.partition(":")[0]
        if missing and (module == missing or module.startswith(missing + ".")):
            self.reporter.system(f"  {missing} is not on the import path of {inst.host}'s node processes: "
                                 + ", ".join(self.sys_path) + ", then PYTHONPATH; run topo from the "
                                 "project's root, or name the code's directory in python_path:")
        return False

    def _ended(self, node: NodeState, error: str | None, tb: str | None, quiet: bool = False) -> None:
        """A node returned (error None) or failed: restart it, or draw the consequences.
        ``quiet``: its failure was told already (another instance's, the same)."""
        if node.state in TERMINAL or node.state == "restarting":
            return
        inst = self.plan.instances[node.name]
        if tb:
            for line in tb.rstrip().splitlines():
                self.reporter.output(node.name, line, True)
        if self.code is None:
            decision = self.history[node.name].decide(inst.restart, error is not None, time.monotonic())
            if decision.restart:
                self._restart(node, error, decision.delay)
                return
            if decision.gave_up:
                self._fail(node, f"{decision.gave_up}; last error: {error or 'returned'}", None)
                return
        if error is not None:
            self._fail(node, error, tb, quiet)
            return
        node.state, node.ended = "exited", time.monotonic()
        self.reporter.system(f"{node.name} {'exited with status 0' if inst.exec else 'returned'}")
        if inst.on_exit is OnExit.STOP and all(
                n.state in TERMINAL for n in self.nodes.values() if self.plan.instances[n.name].node == inst.node):
            self.request_stop(EXIT_OK, f"{inst.node} returned (on_exit: stop)")
        elif self._all_ended(self.nodes):
            self.request_stop(EXIT_OK, "every node returned")

    def _restart(self, node: NodeState, error: str | None, delay: float) -> None:
        proc = self.procs[node.process]
        what = f"failed ({error})" if error else "returned"
        self.reporter.system(f"{node.name} {what}; restarting in {delay:.1f}s (restart: "
                             f"{self.plan.instances[node.name].restart.value})")
        node.state, node.error = "restarting", error
        node.restarts += 1
        for name in proc.instances:
            other = self.nodes[name]
            if other is not node and other.state not in TERMINAL and other.state != "restarting":
                self.reporter.system(f"{name} restarts too: it shares process {proc.name} with {node.name}")
                other.state = "restarting"
                other.restarts += 1
        proc.restart_at = time.monotonic() + delay
        if error is None and len(proc.instances) == 1:
            self.stopping.deliver_first(proc, f"restart of {node.name}")  # what it sent goes out first
        else:
            self.stopping.replace(proc, f"restart of {node.name}")
        # from now on, what the old process says is history: its nodes are restarting
        proc.generation += 1

    def _fail(self, node: NodeState, error: str, tb: str | None, quiet: bool = False) -> None:
        if node.state in TERMINAL:
            return
        node.state, node.ended, node.error, node.traceback = "failed", time.monotonic(), error, tb
        if not quiet:
            self.reporter.system(f"{node.name} failed: {error}")
        self.request_stop(EXIT_FAILED, f"{node.name} failed")

    def _maybe_connect(self) -> None:
        """A process gets the addresses it connects to once they are bound, not once the
        whole run is: the first processes wire up while the last ones still start. Once a
        stop is decided, nobody is wired up any more."""
        if self.code is not None:
            return
        for proc in self.procs.values():
            if proc.hello and not proc.connected and not proc.ended:
                needs = self._needs[proc.name]
                if all(key in self.bound for key in needs):
                    proc.connected = True
                    self.processes.send(proc, Message(Kind.CONNECT, {"endpoints": {k: self.bound[k] for k in needs}}))

    def _maybe_all_ready(self) -> None:
        if not self.all_ready_reported and self._all_ready(self.nodes):
            self.all_ready_reported = True
            self.reporter.system(f"all {len(self.nodes)} node(s) ready in {time.monotonic() - self.started:.2f}s")
