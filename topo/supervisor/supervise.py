"""The supervisor: the one owner of a run's state.

It spawns the processes, relays the endpoint table, and turns the events the processes
send into states, output, restarts and, at the end, an exit status. Nothing else decides:
a child reports, the supervisor concludes (honcho's Manager is the model). Its loop waits
on one poll over the control sockets, every child's pidfd (topo.supervisor.watch) and a self-pipe that
signal handlers write to; every timed step (ready deadline, grace, escalation, restart
backoff) is a deadline of that poll, never a sleep.

Restarts are per process: a node that is restarted takes the other nodes of its process
with it (they share an OS process; an inproc peer cannot reconnect), and the output says
so. The new process binds the same ipc paths and tcp ports as before, so peers in other
processes reconnect by themselves, and its nodes pass the gate again before they run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import zmq

from topo.plan.planner import Plan
from topo.process.boot import Recording, control_addresses
from topo.process.control import CONTROL, Message
from topo.supervisor import editing, observing, rundir, spawn
from topo.supervisor.execstarts import ExecStarts
from topo.supervisor.execrules import ExecRules
from topo.supervisor.execsignals import ExecSignals
from topo.supervisor.pipes import Pipes, batch_of
from topo.supervisor.poller import Poller
from topo.supervisor.processes import Ended, HostUp, Processes, ProgramSpawned
from topo.supervisor.remotehosts import MakeRemoteHosts
from topo.supervisor.restarts import History
from topo.supervisor.runstate import (
    EXIT_FAILED, EXIT_INTERNAL, READ_BATCH, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, STARTING, TERMINAL, NodeState,
    Outcome, ProcState, Reporter, answer, interrupts, next_deadline, outcome_word, wake_on_signals, why_late,
)
from topo.supervisor.spawn import default_sys_path
from topo.supervisor.stopping import Stopping

if TYPE_CHECKING:
    from topo.supervisor.prestart import Prestarted

__all__ = ["Supervisor", "Outcome", "Reporter", "default_sys_path", "EXIT_OK", "EXIT_FAILED",
           "EXIT_SIGINT", "EXIT_SIGTERM"]


class Supervisor(ExecRules):
    def __init__(self, plan: Plan, reporter: Reporter, *, ready_timeout: float = 30.0,
                 grace: float = 5.0, sys_path: tuple[str, ...] = (),
                 run_dir: rundir.RunDir | None = None, external: frozenset[str] = frozenset(),
                 prestarted: Prestarted | None = None, hosts: MakeRemoteHosts | None = None,
                 record: Recording | None = None) -> None:
        """``hosts``: how to reach other hosts (:class:`topo.hosts.remotes.Hosts`), needed
        when the plan has any; ``record``: the sockets recorded from their first message
        (:mod:`topo.supervisor.recorder`)."""
        self.plan = plan
        self.reporter = reporter
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.sys_path = sys_path
        self.run_dir = run_dir
        #: Processes run by someone else (a test's probes): never spawned or signalled;
        #: they end when they say BYE.
        self.external = external
        #: Set once the control sockets are bound: ``endpoints`` is then (events, commands).
        self.listening = threading.Event()
        self.nodes = {name: NodeState(name, inst.process) for name, inst in plan.instances.items()}
        self.procs = {p.name: ProcState(p.name, p.instances, remote=p.host if p.host != plan.local_host else None)
                      for p in plan.processes}
        self.history = {name: History(i.max_restarts, i.restart_window) for name, i in plan.instances.items()}
        self.bound: dict[str, str] = {}
        #: The endpoints each process connects to: its CONNECT is sent once they are bound.
        self._needs = {p.name: {k for n in p.instances for s in plan.instances[n].sockets for k in s.connects}
                       for p in plan.processes}
        #: Exec nodes' programs: started once what they send to is ready (topo.supervisor.execstarts).
        self.execs = ExecStarts(plan)
        self.code: int | None = None
        self.reason = ""
        self.started = prestarted.started if prestarted else time.monotonic()  # the ready timeout's start
        self.ready_deadline = self.started + ready_timeout
        self.all_ready_reported = False
        self._hurry = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._poller = Poller()  # (zmq's takes a descriptor out in time linear in their number)
        #: Exec programs' sd_notify sockets, watchdogs and go pipes (topo.supervisor.execsignals).
        self.signals = ExecSignals(plan, self._poller, reporter.system, lambda n: self.nodes[n].state == "running",
                                   lambda n: self.nodes[n].state in TERMINAL)
        self.processes = Processes(plan, self.procs, self._poller, reporter, grace=grace, sys_path=sys_path,
                                   prestarted=prestarted.procs if prestarted else None, hosts=hosts,
                                   keys=prestarted.keys if prestarted else None, record=record)
        #: Local processes' output, read from their pipes (topo.supervisor.pipes).
        self.pipes = Pipes(self._poller, reporter.output, batch=batch_of(reporter))
        self.stopping = Stopping(self.procs, self.nodes, self.processes, reporter.system, grace=grace,
                                 external=external)
        self._told: dict[str, tuple[str, int]] = {}
        #: A stop for a node not ready waits this long, so that every gate that timed out
        #: at the same deadline can say what it was waiting for.
        self._hold_stop_until = 0.0
        self._told_imports = set()
        self._acted: float | None = None  # when _act last looked at the time
        self.edits = editing.Edits(self)  # topo restart, topo apply
        #: Work handed to the loop by other threads (``topo up --watch``'s watcher).
        self._soon: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    # -- asked from outside (signal handlers, topo down, a test harness) ------------------

    def request_stop(self, code: int, reason: str) -> None:
        """Signal-safe: records why and wakes the loop, which does the rest."""
        if self.code is None:
            self.code, self.reason = code, reason
        self.wake()

    def wake(self) -> None:
        """Thread- and signal-safe: the loop looks at its state again (a stop asked, the
        terminal has room)."""
        try:
            os.write(self._wake_w, b"w")
        except OSError:
            pass  # full (the loop wakes anyway) or closed (the run is over)

    def call_soon(self, work: Callable[[], None]) -> None:
        """Thread-safe: ``work`` done by the loop's thread at its next turn (what changes
        the run's state or prints is done there, never by another thread)."""
        self._soon.put(work)
        self.wake()

    def hurry(self) -> None:
        """A second Ctrl-C: skip the rest of the grace period."""
        self._hurry = True
        self.request_stop(EXIT_SIGINT, "Ctrl-C")

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        keeper = self.processes.keeper
        if any(p.remote is None and p.name not in self.external for p in self.procs.values()):
            keeper.start()  # (its start beside the set-up below: topo.supervisor.keeper)
        try:
            ctx: zmq.Context[Any] = zmq.Context()
            self.run_dir = rd = self.run_dir or rundir.create(self.plan.topology)
        except BaseException:
            keeper.close()
            raise
        self.events = events = ctx.socket(zmq.PULL)
        commands = ctx.socket(zmq.ROUTER)
        commands.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A restarted process connects under its old name while a forked child of the old
        # one may still hold the old connection: the newest connection is the process's.
        commands.setsockopt(zmq.ROUTER_HANDOVER, 1)
        control = ctx.socket(zmq.ROUTER)  # `topo ps` and `topo down` from other terminals
        woken_by_signals = wake_on_signals(self._wake_w)
        try:
            ev, cmd, ctl = (*control_addresses(str(rd.sockets)), f"ipc://{rd.sockets}/{CONTROL}")
            events.bind(ev)
            commands.bind(cmd)
            control.bind(ctl)
            rd.write_info(pid=os.getpid(), started=rundir.create_time(),
                          file=str(Path(self.plan.file).resolve()), **rundir.overlays_info(self.plan.overlays),
                          control=ctl)
            self._endpoints = (ev, cmd)
            self.signals.open(str(rd.sockets))
            self.processes.open(ctx, rd.run_id, str(rd.sockets), ev, cmd, commands)
            self.listening.set()
            for proc in self.procs.values():  # a stop asked already (early Ctrl-C): only adopt
                if proc.name not in self.external and (self.code is None or self.processes.prestarted(proc)):
                    self._start(proc)
                elif proc.name not in self.external:
                    self.stopping.not_started(proc)
            started = sum(1 for p in self.procs.values() if not p.ended)
            self.reporter.system(f"started {started} process(es) for {len(self.nodes)} node(s) "
                                 f"in {time.monotonic() - self.started:.2f}s; run {rd.identity}")
            self._loop(events, commands, control)
            self.pipes.close_all()  # the last lines of every process, before the outcome
        except Exception as err:
            # the truth for outcome.json, whatever code a stop had decided before the bug
            self.code, self.reason = EXIT_INTERNAL, f"internal error: {type(err).__name__}: {err}"
            raise
        finally:
            self.signals.close_all()
            self.pipes.discard()
            self.processes.close()
            outcome = Outcome(self.code if self.code is not None else EXIT_OK, self.reason, self.nodes)
            failed = rd.write_outcome(outcome.code, outcome.reason,
                                      {n.name: outcome_word(n) for n in self.nodes.values()})
            if failed:
                self.reporter.system(f"outcome not recorded: {failed}")
            for sock in (events, commands, control):
                sock.close(linger=0)
            ctx.term()
            rd.remove()
            if woken_by_signals:
                signal.set_wakeup_fd(-1)  # before the pipe closes and its number is reused
            os.close(self._wake_r)
            os.close(self._wake_w)
        return outcome

    def _start(self, proc: ProcState) -> None:
        """Spawns (or respawns) one process; a respawn rebinds the addresses it had."""
        proc.pid, proc.ended, proc.hello, proc.connected, proc.bye = None, False, False, False, False
        proc.term_sent = proc.kill_sent = proc.restart_at = proc.stats = None
        self.stopping.started(proc)
        if self.execs.is_program(proc):
            proc.held = True  # started by _act once what it sends to is ready
            return
        self.processes.start(proc, self._start_data(proc))
        if proc.remote is None:
            self.pipes.add(proc.name, getattr(proc.proc, "topo_output", None))

    def _start_data(self, proc: ProcState) -> dict[str, Any]:
        return {
            "gen": proc.generation, "fixed": dict(self.bound), "ready_in": self.ready_deadline - time.monotonic(),
            "absent": sorted({n.name for n in self.nodes.values() if n.state in TERMINAL and n.process != proc.name}
                             | self.edits.applier.gate_skips(proc.name)),  # (links made in place, later)
            "restarts": {n: self.nodes[n].restarts for n in proc.instances},
        }

    def _loop(self, events: zmq.Socket[Any], commands: zmq.Socket[Any], control: zmq.Socket[Any]) -> None:
        for sock in (events, commands, control, self._wake_r):
            self._poller.register(sock, zmq.POLLIN)
        while not all(p.ended and p.restart_at is None for p in self.procs.values()) \
                or (self.code is None and any(p.restart_at for p in self.procs.values())):
            self._do_soon()  # (before acting on the state: a topo apply read by its thread holds a program to start)
            self._act()
            self._notify_changes()
            self.edits.settle()
            timeout = min(self._next_deadline(), self.pipes.hold_for(self.reporter),
                          self.edits.applier.next_deadline()) - time.monotonic()
            ready = self._poller.poll(max(0, int(timeout * 1000)) + 1)
            with self.pipes.batch():  # the lines of one turn reach the log files together
                for sock, _ in ready:
                    if sock is events:
                        self._drain(events, limit=READ_BATCH)
                    elif sock is commands:
                        self._drain(commands, routed=True, limit=READ_BATCH)
                    elif sock is control:
                        self._control(control)
                    elif sock == self._wake_r:
                        os.read(self._wake_r, 256)
                    elif self.signals.owns(sock):
                        for name, notice in self.signals.read(sock):
                            self._notice(name, notice)
                    elif self.pipes.owns(sock):
                        self.pipes.read(sock)
                    elif self.processes.owns(sock):
                        for seen in self.processes.read(sock):
                            self._seen(seen)
        self._drain(events)
        self._notify_changes()
        self.edits.settle()

    def _do_soon(self) -> None:
        while True:
            try:
                work = self._soon.get_nowait()
            except queue.Empty:
                return
            work()

    def _notify_changes(self) -> None:
        for node in self.nodes.values():
            if self._told.get(node.name) != (node.state, node.restarts):
                self._told[node.name] = (node.state, node.restarts)
                self.reporter.changed(node)

    def _next_deadline(self) -> float:
        return next_deadline(self.procs, self.ready_deadline + 0.5, self._hold_stop_until,
                             self.processes.next_deadline(), self.stopping.next_deadline(),
                             self.signals.next_deadline(), acted=self._acted)

    def _act(self) -> None:
        """Everything that follows from the time and the state: stop, escalate, restart."""
        now = self._acted = time.monotonic()  # what is due after it is waited for (next_deadline)
        for ended in self.processes.tick(now):
            self._seen(ended)
        # half a second after the gates' own deadline, whose reports are more precise
        if self.code is None and now > self.ready_deadline + 0.5:
            late = [n for n in self.nodes.values() if n.state in STARTING]
            reasons = {n.name: why_late(n, self.plan, self.nodes, self.procs) for n in late}
            for node in late:
                self._fail(node, f"not ready within {self.ready_timeout:g}s: {reasons[node.name]}", None)
        self.stopping.late_stops(now)
        for proc in self.procs.values():
            if proc.restart_at is not None and proc.ended and now >= proc.restart_at and self.code is None:
                self.ready_deadline = max(self.ready_deadline, now + self.ready_timeout)
                for name in proc.instances:
                    self.nodes[name].state = "starting"
                self._start(proc)
        if self.code is None:
            self._start_programs()  # (a program restarted just now too: nothing else wakes the loop for it)
            self._watchdogs(now)
        if self.code is not None and not self.stopping.begun and now >= self._hold_stop_until:
            self.signals.go.close_all()  # end of file: a program waiting for its go learns of the stop
            for never_started in self.stopping.begin(now, self.reason):
                self._process_ended(never_started, 0, None)
            for proc in self.procs.values():
                if proc.held:  # a program that never started: its receivers were not ready yet
                    proc.held = False
                    self.stopping.not_started(proc)
        if self._hurry:
            self.stopping.hurry(now)
        self.stopping.escalate(now)

    def _drain(self, sock: zmq.Socket[Any], routed: bool = False, limit: int | None = None) -> None:
        """What waits on ``sock``; within the loop, at most ``limit`` messages: a process that
        floods its events must not keep the loop from its deadlines (it wakes again at once)."""
        count = 0
        while limit is None or count < limit:
            count += 1
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
            reply: dict[str, Any] | None
            if editing.command_of(frames[-1]):  # topo restart, apply: replied now or once done
                self.edits.answer(frames, control)
                continue
            if observing.command_of(frames[-1]):  # topo sockets, echo, hz
                reply, stop = observing.answer(frames[-1], self.plan, self.nodes, self.procs, self.bound,
                                               str(self.run_dir.sockets) if self.run_dir else "",
                                               self.processes.send), False
            else:
                reply, stop = answer(frames[-1], self.nodes, self.procs, self.plan.local_host)
            if stop:
                self.request_stop(EXIT_OK, "stopped by topo down")
            elif reply is not None and interrupts(frames[-1]):
                self.hurry() if self.code is not None else self.request_stop(EXIT_SIGINT, "Ctrl-C")
            if reply is not None:
                control.send_multipart([*frames[:-1], json.dumps(reply).encode()])

    def _seen(self, seen: Message | Ended | HostUp | ProgramSpawned) -> None:
        """What :class:`Processes` saw: an event, a process's end, an agent up, a program
        started on another host."""
        if isinstance(seen, Message):
            self._handle(seen)
        elif isinstance(seen, ProgramSpawned):
            if not seen.proc.ended and self.code is None:
                self._program_started(seen.proc, seen.binds)
            elif not seen.proc.ended:  # started as the stop began: its stop is SIGTERM
                self.processes.signal(seen.proc, signal.SIGTERM)
        elif isinstance(seen, Ended):
            self._process_ended(seen.proc, seen.exitcode, seen.how)
        else:
            for proc in self.procs.values():
                if proc.remote == seen.host and proc.pending and self.stopping.may_start():
                    self._start(proc)
                    if proc.held:  # a program, due already: no need to wait for the next turn
                        self._start_programs()

    def _process_ended(self, proc: ProcState, exitcode: int | None, how: str | None) -> None:
        proc.ended = True
        self.pipes.close(proc.name)  # its last words, before what is said of its end
        if self.execs.is_program(proc):
            self._program_gone(proc.instances[0])  # what it said before its end; its socket and pipe closed
        if self.code is not None and proc.restart_at is None:
            self.stopping.restart_cancelled(proc)
        if proc.stopped_unborn and not proc.hello:
            self.stopping.not_started(proc)  # ended by the stop before any node of it ran
            return
        if all(self.nodes[n].state in TERMINAL or self.nodes[n].state == "restarting" for n in proc.instances):
            return  # nothing left to learn from it (a restart, or every node reported)
        if proc.name in self.processes.programs:  # its exit status is its only report
            program = self.plan.instances[proc.instances[0]].exec[0]
            self._program_ended(proc, exitcode, how or f"{program} {spawn.describe_exit(exitcode)}")
            return
        if exitcode == 0 and proc.remote is None:
            # a clean exit: its last events may still be on their way; they say how it ended
            deadline = time.monotonic() + 1.0
            while not proc.bye and time.monotonic() < deadline and self.events.poll(
                    max(1, int((deadline - time.monotonic()) * 1000))):
                self._drain(self.events, limit=READ_BATCH)
        how = how or f"its process {proc.name} {spawn.describe_exit(exitcode)}"
        for name in proc.instances:
            node = self.nodes[name]
            if node.state in TERMINAL or node.state == "restarting":
                continue
            if self.code is not None and proc.term_sent is None and exitcode == 0:
                node.state = "stopped"
            elif not self._stopped_by_kill(proc, node):
                self._ended(node, how, None)
