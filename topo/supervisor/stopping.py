"""Stop bookkeeping: who has been told to stop, who still must be, and the escalation.

A process can only be told anything once it has said HELLO: that is when its command
socket is known to the ROUTER that routes by its name (here, or at its host's agent);
before, a STOP is dropped on the floor. A stop (or a restart) decided before a process's
HELLO must therefore reach it when the HELLO comes, or the process wires up, runs its
nodes as if nothing happened, and is killed at the end of the grace period: its healthy
nodes reported failed, the run's stop taking the whole grace instead of a fraction of a
second. This module keeps that promise in one place:

- a local process still starting when the stop begins (no HELLO yet: none of its nodes
  has run) is sent SIGTERM at once, and its nodes end ``stopped``;
- a HELLO that arrives once the stop has begun is answered with STOP at once (and the
  supervisor sends no CONNECT);
- the HELLO of a process being replaced (a restart decided before it said hello) is
  answered with the restart's STOP;
- a remote process not started yet (its agent not up) is not started any more: it ends
  there, never having run;
- ``grace`` after the stop began, SIGTERM to whatever runs; a second later SIGKILL;
- a node that returned alone in its process and is restarted is not stopped at once: its
  process first delivers what the node sent, and is told to stop only ``grace`` after the
  restart delay (:meth:`deliver_first`);
- nodes waiting for a restart when the stop begins end ``stopped``.

It decides nothing about *whether* to stop: the supervisor does, and calls :meth:`begin`.
"""

from __future__ import annotations

import signal
import time
from typing import Callable, Collection, Mapping, Protocol

from topo.process.control import Kind, Message
from topo.supervisor.runstate import ABANDON_AFTER, KILL_AFTER, TERMINAL, NodeState, ProcState


class Commands(Protocol):
    """What stopping needs of :class:`topo.supervisor.processes.Processes`."""

    def send(self, proc: ProcState, message: Message) -> None: ...
    def signal(self, proc: ProcState, sig: signal.Signals) -> None: ...
    def abandon(self, proc: ProcState, why: str) -> None: ...


class Stopping:
    def __init__(self, procs: Mapping[str, ProcState], nodes: Mapping[str, NodeState], commands: Commands,
                 say: Callable[[str], None], *, grace: float, external: Collection[str] = ()) -> None:
        self.procs = procs
        self.nodes = nodes
        self.commands = commands
        self.say = say
        self.grace = grace
        #: Processes run by someone else (a test's probes): never signalled.
        self.external = frozenset(external)
        #: When the grace period ends (None: no stop has begun).
        self.stop_at: float | None = None
        self.reason = ""
        self.hurried = False
        #: Per process: the generation last started, and why it is being replaced (None:
        #: it is not), for a HELLO that comes after the replacement was decided.
        self._started: dict[str, int] = {}
        self._replaced: dict[str, str] = {}

    @property
    def begun(self) -> bool:
        return self.stop_at is not None

    # -- the supervisor's decisions ---------------------------------------------------------

    def started(self, proc: ProcState) -> None:
        """``proc`` was (re)started with its current generation."""
        self._started[proc.name] = proc.generation
        self._replaced.pop(proc.name, None)

    def replace(self, proc: ProcState, reason: str) -> None:
        """A restart: the running process is told to stop now, or as soon as it says hello.
        Call before moving ``proc`` to its next generation."""
        if proc.ended:
            return
        self._replaced[proc.name] = reason
        if proc.hello:
            self._stop(proc, reason)

    def deliver_first(self, proc: ProcState, reason: str) -> None:
        """A restart of a node that returned alone in its process: the process delivers
        what the node sent (docs/gate.md) and ends by itself; it is told to stop only when
        the grace period past the restart delay is over. Call once ``restart_at`` is set."""
        if proc.ended or not proc.hello or proc.restart_at is None:
            self.replace(proc, reason)
            return
        proc.stop_late_at = proc.restart_at + self.grace

    def late_stops(self, now: float) -> None:
        """Each process delivering before its restart whose time is up is told to stop."""
        for proc in self.procs.values():
            if proc.stop_late_at is not None and (proc.ended or now >= proc.stop_late_at):
                if not proc.ended:
                    self._stop(proc, "restart: delivery took the grace period")
                proc.stop_late_at = None

    def restart_cancelled(self, proc: ProcState) -> None:
        """The run stops while ``proc``'s nodes wait for their restart: they end stopped,
        not forever 'restarting' (their last failure was told when it happened)."""
        for name in proc.instances:
            node = self.nodes[name]
            if node.state == "restarting":
                node.state, node.ended, node.error, node.traceback = "stopped", time.monotonic(), None, None

    def begin(self, now: float, reason: str) -> list[ProcState]:
        """The stop begins: every process that said hello is told, pending restarts are
        dropped. Returns the remote processes that were never started (their agent is not
        up yet): they will not be, and the supervisor ends them as stopped."""
        self.stop_at, self.reason = now + self.grace, reason
        never: list[ProcState] = []
        for proc in self.procs.values():
            proc.restart_at = proc.stop_late_at = None
            if proc.pending:
                proc.pending = False
                never.append(proc)
            elif proc.hello and not proc.ended:
                self._stop(proc, reason)
            elif proc.ended:
                self.restart_cancelled(proc)
            elif proc.remote is None and self._signallable(proc):
                # still starting: no node of it has run, so there is nothing to finish or
                # deliver, and waiting for its hello costs the whole grace period on a
                # loaded machine (60 interpreters starting on 2 CPUs); SIGTERM ends it
                # during its start-up, or stops it as STOP would once its handlers are set
                proc.stopped_unborn = True
                self.commands.signal(proc, signal.SIGTERM)
        return never

    def not_started(self, proc: ProcState) -> None:
        """A process the supervisor will not start, because the stop was asked before it
        could be (a Ctrl-C while ``topo up`` was still starting processes): it ends having
        never run, and its nodes ``stopped``."""
        proc.ended = True
        for name in proc.instances:
            node = self.nodes[name]
            if node.state not in TERMINAL:
                node.state, node.ended = "stopped", time.monotonic()

    def hurry(self, now: float) -> None:
        """A second Ctrl-C: the grace period ends now."""
        self.hurried = True
        if self.stop_at is not None:
            self.stop_at = min(self.stop_at, now)

    def may_start(self) -> bool:
        """A process whose agent just came up is started only if no stop has begun."""
        return not self.begun

    # -- what the processes say --------------------------------------------------------------

    def hello(self, proc: ProcState, generation: object) -> bool:
        """A process said HELLO. True when it is the current process of a run that goes on:
        the supervisor wires it up. Otherwise it has been told to stop, if it had to be."""
        if generation == proc.generation:  # only its current process can say so
            proc.hello = True
            if self.begun and not proc.ended:
                self._stop(proc, self.reason)
                return False
            return True
        reason = self._replaced.get(proc.name)
        if reason is not None and generation == self._started.get(proc.name) and not proc.ended:
            self._stop(proc, reason)  # the process being replaced, still running
        return False

    # -- time --------------------------------------------------------------------------------

    def escalate(self, now: float) -> None:
        """After the grace period, SIGTERM to each process still running; a second later,
        SIGKILL; a remote process whose end its agent has still not reported
        :data:`ABANDON_AFTER` seconds after that is abandoned, its host taken for lost."""
        if self.stop_at is not None and now >= self.stop_at:
            for proc in self.procs.values():
                if self._signallable(proc) and proc.term_sent is None:
                    proc.term_sent = now
                    stuck = [n for n in proc.instances if self.nodes[n].state not in TERMINAL]
                    when = "after a second Ctrl-C" if self.hurried else f"within {self.grace:g}s"
                    self.say(f"process {proc.name} did not stop {when} ({', '.join(stuck) or 'exiting'}): SIGTERM")
                    self.commands.signal(proc, signal.SIGTERM)
        for proc in self.procs.values():
            if not self._signallable(proc) or not proc.term_sent:
                continue
            if proc.kill_sent is None and now >= proc.term_sent + KILL_AFTER:
                proc.kill_sent = now
                self.commands.signal(proc, signal.SIGKILL)
            elif proc.remote and proc.kill_sent is not None and now >= proc.kill_sent + ABANDON_AFTER:
                self.commands.abandon(proc, f"its agent did not report the end of process {proc.name} "
                                            f"{ABANDON_AFTER:g}s after SIGKILL")

    def next_deadline(self) -> float | None:
        """The grace period's end (the SIGKILL deadlines are in :func:`runstate.next_deadline`)."""
        return self.stop_at

    def _signallable(self, proc: ProcState) -> bool:
        return not proc.ended and proc.pid is not None and proc.name not in self.external

    def _stop(self, proc: ProcState, reason: str) -> None:
        self.commands.send(proc, Message(Kind.STOP, {"reason": reason}))
