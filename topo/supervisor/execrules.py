"""What an exec node's sd_notify datagrams, its watchdog and its receivers' reports mean.

The rules, beside those of every node (:mod:`topo.supervisor.transitions`), for what
:mod:`topo.supervisor.execsignals` hears:

- ``READY=1`` from a ``ready: notify`` program makes its node ready (running); before
  it, the node is starting, and at the ready deadline it fails saying it never sent it.
  ``READY=1`` from a ``ready: started`` program (ready already) changes nothing.
- ``STATUS=text`` is kept for ``topo ps`` (one line, control characters as ``?``).
- ``STOPPING=1`` shows the node as ``stopping`` in ``topo ps`` until it ends;
  ``RELOADING=1`` as ``reloading`` until its next ``READY=1``. Neither changes what topo
  does: the program's exit still says how it ended.
- ``WATCHDOG=1`` renews the watchdog; a watchdog that runs out (or ``WATCHDOG=trigger``)
  ends the node as failed, ``watchdog: no WATCHDOG=1 for Ns``, and its ``restart:``
  applies, as for any failure.
- ``MAINPID=``, ``WATCHDOG_USEC=`` and keys topo does not know are accepted and ignored.
- A ``linked`` report of a receiver counts toward its exec senders' go.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from topo.process.control import Kind, Message
from topo.supervisor.notifymsg import Notice, Refused, from_wire, printable
from topo.supervisor.execspawn import ProgramError
from topo.supervisor.goheld import Conn
from topo.supervisor.runstate import STARTING, ProcState
from topo.supervisor.transitions import Transitions

if TYPE_CHECKING:
    from topo.supervisor.execsignals import ExecSignals


class ExecRules(Transitions):
    """The exec rules of :class:`topo.supervisor.supervise.Supervisor` (a base class)."""

    signals: ExecSignals

    def _start_data(self, proc: ProcState) -> dict[str, Any]:
        raise NotImplementedError

    def _process_ended(self, proc: ProcState, exitcode: int | None, how: str | None) -> None:
        raise NotImplementedError

    def _start_programs(self) -> None:
        """Each held program whose receivers are ready (and whose peers' endpoints are
        bound) is started now; one that cannot be ends as a failure of its node."""
        for proc in self.procs.values():
            if not proc.held or not self.execs.due(proc, self.nodes, self.bound, self._needs[proc.name]):
                continue
            proc.held = False
            (name,) = proc.instances
            extra, passed = self.signals.prepare(name) if proc.remote is None else ({}, ())
            if proc.remote is not None:  # its agent makes its socket and pipe (topo.hosts.programs)
                self.signals.prepare_remote(name, self._go_sender(proc, name))
            self._program_starting(name)
            try:
                # (a program here needs only the table: the rest is a look at every node)
                data = self._start_data(proc) if proc.remote is not None else {"fixed": self.bound}
                binds = self.processes.start(proc, {**data, "exec_env": extra, "pass_fds": passed})
            except ProgramError as err:
                self.signals.spawned(name, None, passed)
                self._process_ended(proc, None, str(err))
                continue
            self.signals.spawned(name, proc.pid, passed)
            if proc.remote is None:
                self.pipes.add(proc.name, getattr(proc.proc, "topo_output", None))
                self._program_started(proc, binds)  # (on another host: once its agent says so)

    def _go_sender(self, proc: ProcState, name: str) -> Callable[[bool, list[Conn]], None]:
        """How a program on another host is given its go (True; its agent holds it until the
        program read what came on ``conns``, :mod:`topo.supervisor.goheld`) or its pipe is
        ended."""
        host, data = proc.remote, {"process": proc.name, "instance": name, "gen": proc.generation}

        def send(go: bool, conns: list[Conn]) -> None:
            if self.processes.hosts is not None and host is not None:  # (to the agent itself: target "")
                self.processes.hosts.send(host, "", Message(Kind.EXEC_GO, {**data, "go": go, "conns": conns}))
        return send

    def _handle(self, m: Message) -> None:
        if m.kind is Kind.EXEC_NOTICE:
            self._relayed_notice(m)
            return
        if m.kind is not Kind.EXEC_LINKED:
            super()._handle(m)
            return
        node = self.nodes.get(m["instance"])
        if node is None or m.data.get("gen") != self.procs[node.process].generation or m["count"] < 1:
            return  # a late word from a process that has been replaced
        self.signals.go.linked(node.name, m["socket"], m["count"], m.data.get("conns"))

    def _relayed_notice(self, m: Message) -> None:
        """What a program on another host said, relayed by its agent (who checked the
        sender; :meth:`topo.supervisor.processes.Processes.read` checked the agent speaks
        for its own host's processes)."""
        node = self.nodes.get(m["instance"])
        if node is None or m["gen"] != self.procs[node.process].generation or self.procs[node.process].remote is None:
            return  # from a program replaced since
        try:
            notice = from_wire(m["notice"])
        except Refused:
            return
        self._notice(node.name, notice)

    def _program_starting(self, name: str) -> None:
        """Its program is about to start (again): what the last one said is forgotten."""
        node = self.nodes[name]
        node.status = None
        node.notice = "waiting for READY=1" if self.plan.instances[name].ready == "notify" else None

    def _program_gone(self, name: str) -> None:
        """Its program ended: what it said before it ended counts (a ``STATUS=`` last
        words, a ``READY=1`` just before a clean exit), then its socket and go pipe close."""
        for speaker, notice in self.signals.drain(name):
            self._notice(speaker, notice)
        self.signals.ended(name)

    def _notice(self, name: str, notice: Notice) -> None:
        """One accepted sd_notify datagram of the program of instance ``name``."""
        node = self.nodes.get(name)
        if node is None or (node.state not in STARTING and node.state != "running"):
            return  # ended, or restarting: what it says now is history
        now = time.monotonic()
        if notice.status is not None:
            node.status = printable(notice.status)
        if notice.stopping:
            node.notice = "stopping"
        elif notice.reloading:
            node.notice = "reloading"
        elif notice.ready and node.notice in ("reloading", "waiting for READY=1"):
            node.notice = None
        if notice.watchdog:
            self.signals.pet(name, now)
        if notice.watchdog_trigger:
            self._watchdog_missed(name, "the program said WATCHDOG=trigger")
            return
        if notice.ready and node.state in STARTING and self.procs[node.process].pid is not None:
            node.state, node.started, node.error, node.traceback = "running", now, None, None
            if node.restarts:
                self.reporter.system(f"{node.name} ready again (restart {node.restarts})")
            self._maybe_all_ready()

    def _watchdogs(self, now: float) -> None:
        """Arms the watchdog of each exec node that became ready, fails those that ran out,
        and gives the go to senders whose receivers are now all there."""
        for name in self.signals.exec:
            if self.nodes[name].state == "running":
                self.signals.running(name, now)
        for name, seconds in self.signals.missed(now):
            if self.nodes[name].state == "running":
                self._watchdog_missed(name, f"no WATCHDOG=1 for {seconds:g}s")
        self.signals.go.look()

    def _watchdog_missed(self, name: str, why: str) -> None:
        node = self.nodes[name]
        self.signals.watchdogs.disarm(name)
        self._ended(node, f"watchdog: {why}", None)
