"""The supervisor: the one owner of a run's state.

It spawns the processes, relays the endpoint table, and turns the events the processes
send into states, output and, at the end, an exit status. Nothing else decides: a child
reports, the supervisor concludes (honcho's Manager is the model). Its loop waits on one
poll over the control sockets, every child's process sentinel and a self-pipe that signal
handlers write to, so it never sleeps to notice anything.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zmq

from topo import rundir, spawn
from topo.control import Kind, Message
from topo.model import OnExit
from topo.plan import Plan
from topo.runtime import Boot

#: Exit statuses of ``topo up`` (SPEC section 3).
EXIT_OK, EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 130, 143
TERMINAL = frozenset({"exited", "failed", "stopped"})
STATE_WORDS = {"bound": "waiting for peers", "exited": "exited", "running": "running"}


class Reporter(Protocol):
    """Where a run's output goes: the terminal and log files, or a test harness."""

    def output(self, name: str, line: str, err: bool) -> None: ...
    def system(self, text: str) -> None: ...


@dataclass
class NodeState:
    name: str
    process: str
    state: str = "starting"
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    traceback: str | None = None
    restarts: int = 0


@dataclass
class ProcState:
    name: str
    proc: Any = None
    pid: int | None = None
    hello: bool = False
    ended: bool = False
    connected: bool = False
    instances: tuple[str, ...] = ()
    term_sent: float | None = None


@dataclass
class Outcome:
    code: int
    reason: str
    nodes: dict[str, NodeState] = field(default_factory=dict)


class Supervisor:
    def __init__(self, plan: Plan, reporter: Reporter, *, ready_timeout: float = 30.0,
                 grace: float = 5.0, sys_path: tuple[str, ...] = (),
                 run_dir: rundir.RunDir | None = None) -> None:
        self.plan = plan
        self.reporter = reporter
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.sys_path = sys_path
        self.nodes = {name: NodeState(name, inst.process) for name, inst in plan.instances.items()}
        self.procs = {p.name: ProcState(p.name, instances=p.instances) for p in plan.processes}
        self.bound: dict[str, str] = {}
        self.bound_instances: set[str] = set()
        self.code: int | None = None
        self.reason = ""
        self.stop_at: float | None = None
        self.started = time.monotonic()
        self.all_ready_reported = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.run_dir = run_dir
        self._hurry = False

    # -- asked from outside (signal handlers, topo down, a test harness) --------------------

    def request_stop(self, code: int, reason: str) -> None:
        """Signal-safe: records why and wakes the loop, which does the rest."""
        if self.code is None:
            self.code, self.reason = code, reason
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def hurry(self) -> None:
        """A second Ctrl-C: skip the rest of the grace period."""
        self._hurry = True
        self.request_stop(EXIT_SIGINT, "Ctrl-C")

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Outcome:
        ctx: zmq.Context[Any] = zmq.Context()
        self.run_dir = rd = self.run_dir or rundir.create(self.plan.topology)
        events = ctx.socket(zmq.PULL)
        commands = ctx.socket(zmq.ROUTER)
        commands.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.commands = commands
        control = ctx.socket(zmq.ROUTER)  # `topo ps` and `topo down` from other terminals
        try:
            ev, cmd, ctl = (f"ipc://{rd.sockets}/{n}" for n in (rundir.EVENTS, rundir.COMMANDS, rundir.CONTROL))
            events.bind(ev)
            commands.bind(cmd)
            control.bind(ctl)
            rd.write_info(pid=os.getpid(), started=_create_time(),
                          file=str(Path(self.plan.file).resolve()), control=ctl)
            self._spawn(rd, ev, cmd)
            self._loop(events, commands, control)
        finally:
            self._kill_all()
            outcome = Outcome(self.code if self.code is not None else EXIT_OK, self.reason, self.nodes)
            rd.write_outcome(outcome.code, outcome.reason,
                             {n.name: n.error or n.state for n in self.nodes.values()})
            for sock in (events, commands, control):
                sock.close(linger=0)
            ctx.term()
            rd.remove()
            os.close(self._wake_r)
            os.close(self._wake_w)
        return Outcome(self.code if self.code is not None else EXIT_OK, self.reason, self.nodes)

    def _spawn(self, rd: rundir.RunDir, events: str, commands: str) -> None:
        ready_by = time.time() - (time.monotonic() - self.started) + self.ready_timeout
        for proc in self.plan.processes:
            state = self.procs[proc.name]
            boot = Boot(self.plan, proc.name, events, commands, str(rd.sockets), ready_by,
                        self.grace, os.getpid(), self.sys_path)
            state.proc = spawn.start(boot)
            state.pid = state.proc.pid
        self.reporter.system(f"started {len(self.procs)} process(es) for {len(self.nodes)} node(s) "
                             f"in {time.monotonic() - self.started:.2f}s; run {rd.identity}")

    def _loop(self, events: zmq.Socket[Any], commands: zmq.Socket[Any], control: zmq.Socket[Any]) -> None:
        poller = zmq.Poller()
        poller.register(events, zmq.POLLIN)
        poller.register(commands, zmq.POLLIN)
        poller.register(control, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        sentinels = {}
        for state in self.procs.values():
            sentinels[state.proc.sentinel] = state
            poller.register(state.proc.sentinel, zmq.POLLIN)
        while not all(p.ended for p in self.procs.values()):
            self._act(commands)
            timeout = self._next_deadline() - time.monotonic()
            for sock, _ in poller.poll(max(0, int(timeout * 1000)) + 1):
                if sock is events:
                    self._drain(events)
                elif sock is commands:
                    self._drain(commands, routed=True)
                elif sock is control:
                    self._control(control)
                elif sock == self._wake_r:
                    os.read(self._wake_r, 256)
                elif sock in sentinels:
                    poller.unregister(sock)
                    self._process_ended(sentinels[sock])
        self._drain(events)

    def _next_deadline(self) -> float:
        deadlines = [self.started + self.ready_timeout + 0.5]
        if self.stop_at is not None:
            deadlines.append(self.stop_at)
        deadlines.extend(p.term_sent + 1.0 for p in self.procs.values() if p.term_sent and not p.ended)
        future = [d for d in deadlines if d > time.monotonic()]
        return min(future) if future else time.monotonic() + 1.0

    def _act(self, commands: zmq.Socket[Any]) -> None:
        """Everything that follows from the time and the state: stop, escalate, time out."""
        now = time.monotonic()
        # half a second after the gates' own deadline, whose reports are more precise
        if self.code is None and now > self.started + self.ready_timeout + 0.5:
            late = [n for n in self.nodes.values() if n.state in ("starting", "bound")]
            reasons = {n.name: self._why_late(n) for n in late}
            for node in late:
                self._fail(node, f"not ready within {self.ready_timeout:g}s: {reasons[node.name]}", None)
        if self.code is not None and self.stop_at is None:
            self.stop_at = now + self.grace
            for proc in self.procs.values():
                if proc.hello and not proc.ended:
                    self._send(commands, proc, Message(Kind.STOP, {"reason": self.reason}))
        if self._hurry and self.stop_at is not None:
            self.stop_at = min(self.stop_at, now)
        if self.stop_at is not None and now >= self.stop_at:
            for proc in self.procs.values():
                if not proc.ended and proc.term_sent is None and proc.pid is not None:
                    proc.term_sent = now
                    stuck = [n for n in proc.instances if self.nodes[n].state not in TERMINAL]
                    self.reporter.system(f"process {proc.name} did not stop within {self.grace:g}s "
                                         f"({', '.join(stuck) or 'exiting'}): SIGTERM")
                    spawn.signal_tree(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            if proc.term_sent and not proc.ended and now >= proc.term_sent + 1.0 and proc.pid:
                spawn.signal_tree(proc.pid, signal.SIGKILL)

    def _why_late(self, node: NodeState) -> str:
        """The supervisor's view, for nodes whose own gate could not say (it never ran)."""
        if node.state == "starting":
            return "it never bound its sockets (its process is still importing, or hung before)"
        if not self.procs[node.process].connected:
            unbound = sorted({
                f"{peer.instance}.{peer.socket} (for socket {sock.name!r})"
                for sock in self.plan.instances[node.name].sockets for peer in sock.peers
                if self.nodes[peer.instance].state == "starting"
            })
            return "waiting for peers that never bound their sockets: " + ", ".join(unbound)
        return "its gate never reported (its process may be hung)"

    def _send(self, commands: zmq.Socket[Any], proc: ProcState, message: Message) -> None:
        try:
            commands.send_multipart([proc.name.encode(), *message.encode()], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # gone already: its sentinel tells the rest

    def _drain(self, sock: zmq.Socket[Any], routed: bool = False) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = Message.decode(frames[1:] if routed else frames)
            except (ValueError, UnicodeDecodeError):
                continue
            self._handle(message)

    def _control(self, control: zmq.Socket[Any]) -> None:
        """Requests from ``topo ps`` / ``topo down`` (REQ: identity, empty, JSON)."""
        while True:
            try:
                frames = control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 3:
                continue
            try:
                request = json.loads(frames[2])
                command = request["cmd"]
            except (ValueError, KeyError, TypeError):
                continue
            if command == "down":
                self.request_stop(EXIT_OK, "stopped by topo down")
                reply: dict[str, Any] = {"ok": True}
            elif command == "ps":
                reply = {"ok": True, "pid": os.getpid(), "nodes": self.snapshot()}
            else:
                reply = {"ok": False, "error": f"unknown command {command!r}"}
            control.send_multipart([frames[0], b"", json.dumps(reply).encode()])

    def snapshot(self) -> list[dict[str, Any]]:
        """Every node's state as ``topo ps`` shows it."""
        now_wall, now = time.time(), time.monotonic()
        out = []
        for node in self.nodes.values():
            proc = self.procs[node.process]
            out.append({
                "name": node.name, "process": node.process, "pid": proc.pid,
                "state": STATE_WORDS.get(node.state, node.state), "restarts": node.restarts,
                "since": now_wall - (now - node.started) if node.started else None,
                "error": node.error,
            })
        return out

    # -- events -------------------------------------------------------------------------------

    def _handle(self, m: Message) -> None:
        kind = m.kind
        if kind is Kind.OUTPUT:
            self.reporter.output(m["instance"], m["line"], bool(m.data.get("err")))
            return
        if kind is Kind.HELLO:
            proc = self.procs.get(m["process"])
            if proc is not None:
                proc.hello = True
                self._maybe_connect()
            return
        node = self.nodes.get(m.data.get("instance", ""))
        if kind is Kind.BYE:
            return
        if node is None:
            return
        if kind is Kind.BOUND:
            self.bound.update(m["endpoints"])
            self.bound_instances.add(node.name)
            node.state = "bound"
            self._maybe_connect()
        elif kind is Kind.READY:
            node.state, node.started = "running", time.monotonic()
            self._maybe_all_ready()
        elif kind is Kind.EXITED:
            node.state, node.ended = "exited", time.monotonic()
            self.reporter.system(f"{node.name} returned")
            inst = self.plan.instances[node.name]
            siblings = [n for n in self.nodes.values() if self.plan.instances[n.name].node == inst.node]
            if inst.on_exit is OnExit.STOP and all(n.state in TERMINAL for n in siblings):
                self.request_stop(EXIT_OK, f"{inst.node} returned (on_exit: stop)")
            elif all(n.state in TERMINAL for n in self.nodes.values()) and self.code is None:
                self.request_stop(EXIT_OK, "every node returned")
        elif kind is Kind.STOPPED:
            node.state, node.ended = "stopped", time.monotonic()
        elif kind is Kind.FAILED:
            self._fail(node, m["error"], m.data.get("traceback"))
        elif kind is Kind.NOT_READY:
            waiting = "\n".join(f"  waiting: {w}" for w in m["waiting"])
            self._fail(node, f"not ready within {self.ready_timeout:g}s\n{waiting}", None)

    def _fail(self, node: NodeState, error: str, tb: str | None) -> None:
        if node.state in TERMINAL:
            return
        node.state, node.ended, node.error, node.traceback = "failed", time.monotonic(), error, tb
        if tb:
            for line in tb.rstrip().splitlines():
                self.reporter.output(node.name, line, True)
        self.reporter.system(f"{node.name} failed: {error}")
        self.request_stop(EXIT_FAILED, f"{node.name} failed")

    def _maybe_connect(self) -> None:
        if len(self.bound_instances) < len(self.nodes):
            return
        for proc in self.procs.values():
            if proc.hello and not proc.connected and not proc.ended:
                proc.connected = True
                self._send(self.commands, proc, Message(Kind.CONNECT, {"endpoints": self.bound}))

    def _maybe_all_ready(self) -> None:
        if self.all_ready_reported:
            return
        if all(n.state not in ("starting", "bound") for n in self.nodes.values()):
            self.all_ready_reported = True
            self.reporter.system(f"all {len(self.nodes)} node(s) ready in {time.monotonic() - self.started:.2f}s")

    def _process_ended(self, proc: ProcState) -> None:
        proc.ended = True
        # the sentinel closes as the process exits, a moment before it can be reaped
        proc.proc.join(5.0)
        how = spawn.describe_exit(proc.proc.exitcode)
        for name in proc.instances:
            node = self.nodes[name]
            if node.state not in TERMINAL:
                if self.code is not None and proc.term_sent is None and proc.proc.exitcode == 0:
                    node.state = "stopped"
                else:
                    self._fail(node, f"its process {proc.name} {how}", None)

    def _kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.proc is not None and proc.proc.is_alive():
                spawn.signal_tree(proc.proc.pid, signal.SIGKILL)
                proc.proc.join(5)


def _create_time() -> float:
    import psutil

    return float(psutil.Process(os.getpid()).create_time())


def default_sys_path(topology_file: str) -> tuple[str, ...]:
    """Node modules are imported with the current directory and the file's directory first."""
    return tuple(dict.fromkeys([os.getcwd(), str(Path(topology_file).resolve().parent)]))


__all__ = ["Supervisor", "Outcome", "Reporter", "default_sys_path", "EXIT_OK", "EXIT_FAILED",
           "EXIT_SIGINT", "EXIT_SIGTERM", "sys"]
