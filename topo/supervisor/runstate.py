"""The state a supervisor owns, as plain records, and how it is shown to ``topo ps``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from topo.process.control import SILENCE

#: Exit statuses of ``topo up`` (SPEC section 3).
EXIT_OK, EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 130, 143
#: A bug in topo itself (sysexits' EX_SOFTWARE, as ``topo`` exits then): what outcome.json
#: records when the supervisor's loop raised, so the file never says a crash went well.
EXIT_INTERNAL = 70
#: SIGHUP (its terminal closed): a stop like SIGTERM's, with the status a shell gives a
#: process that SIGHUP ended (128 + 1). Not in the SPEC: docs/running.md says it.
EXIT_SIGHUP = 129

#: From SIGTERM to SIGKILL, for a process that did not end by itself (topo.supervisor.stopping).
KILL_AFTER = 1.0
#: Seconds an agent has to report the end of a process it was told to SIGKILL; past them
#: the host is taken for lost (its agent, rogue or stuck, is killed with it), so that a
#: stop ends within its deadlines whatever an agent does. The time an agent may be silent.
ABANDON_AFTER = SILENCE
#: Messages the supervisor's loop reads from one socket per wake (its event sockets, the
#: agents' channel): a process or an agent that floods must not keep the loop from its
#: deadlines; the poll wakes again at once for the rest.
READ_BATCH = 500
#: A node in one of these states has ended for good (unless a restart policy says otherwise).
TERMINAL = frozenset({"exited", "failed", "stopped"})
#: Not ready yet: still to bind, waiting for peers in its gate, or for its code's import.
STARTING = frozenset({"starting", "bound", "importing"})
#: A node's exit status as ``topo ps`` shows it: 0 it returned, 1 it failed (its error
#: says why); a node stopped by the run's stop has none.
EXIT_STATUS = {"exited": 0, "failed": 1}
#: How ``topo ps`` words each state.
STATE_WORDS = {"bound": "waiting for peers", "importing": "importing its code", "running": "running"}


class Reporter(Protocol):
    """Where a run's output goes: the terminal and log files, or a test harness."""

    def output(self, name: str, line: str, err: bool) -> None: ...
    def system(self, text: str) -> None: ...
    def changed(self, node: NodeState) -> None:
        """A node's state changed (the supervisor's loop calls it; a copy may be kept)."""


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
    #: An exec node's last ``STATUS=`` (sd_notify), as ``topo ps`` shows it.
    status: str | None = None
    #: An exec node said ``STOPPING=1`` (or ``RELOADING=1``, until its next ``READY=1``).
    notice: str | None = None
    #: An exec node's program's exit status (negative: the signal that ended it), once it
    #: has ended: ``topo ps`` shows it.
    exitcode: int | None = None


@dataclass
class ProcState:
    name: str
    instances: tuple[str, ...] = ()
    #: Its host, when not the local one: started, signalled and watched through its agent.
    remote: str | None = None
    #: Remote: to be started as soon as its host's agent is up.
    pending: bool = False
    #: Remote: the agent's last word on its pid, CPU and memory.
    stats: dict[str, Any] | None = None
    proc: Any = None
    pid: int | None = None
    generation: int = 0
    hello: bool = False
    #: An exec process not started yet: its program waits for the instances it sends to
    #: (:mod:`topo.supervisor.execstarts`).
    held: bool = False
    #: The stop began before it said hello (no node of it had run): it was sent SIGTERM
    #: at once, and its nodes end stopped however it ends.
    stopped_unborn: bool = False
    #: Its last message arrived: everything it sent before exiting has been handled.
    bye: bool = False
    ended: bool = False
    connected: bool = False
    term_sent: float | None = None
    #: When SIGKILL was sent (once; a remote process's agent then has
    #: :data:`ABANDON_AFTER` seconds to report the end).
    kill_sent: float | None = None
    #: When a restart is pending: the time the new process may be spawned.
    restart_at: float | None = None
    #: A returned node restarting alone in its process: the process delivers what the node
    #: sent (docs/gate.md) and exits by itself; it is told to stop only at this time.
    stop_late_at: float | None = None


@dataclass
class Outcome:
    code: int
    reason: str
    nodes: dict[str, NodeState] = field(default_factory=dict)


def was_ready(node: NodeState) -> bool:
    """READY, or returned or stopped after it was: a node that failed, or was stopped before
    its gate opened, never was, and "all ready" would be a lie. Stopped after it was counts:
    each process reports on a connection of its own, so one node's READY may be read after
    another's STOPPED (a run that stopped as its last node got ready said nothing of it)."""
    return node.state == "running" or (node.state in ("exited", "stopped") and node.started is not None)


def has_ended(node: NodeState) -> bool:
    return node.state in TERMINAL


class Every:
    """Whether every node passes ``test``, asked again at each change of one node: the node
    last found failing it is looked at first, then the others from the newest. Nodes
    start, become ready and end mostly in their order, so the newest fails longest, and a
    run's asking costs about its number of nodes rather than its square (a look from the
    oldest, at every start and end, was a run's largest cost beside the programs' starts
    with a few hundred nodes)."""

    def __init__(self, test: Callable[[NodeState], bool]) -> None:
        self.test = test
        self._failing: str | None = None

    def __call__(self, nodes: dict[str, NodeState]) -> bool:
        last = nodes.get(self._failing) if self._failing is not None else None
        if last is not None and not self.test(last):
            return False
        for node in reversed(nodes.values()):
            if not self.test(node):
                self._failing = node.name
                return False
        return True


def outcome_word(node: NodeState) -> str:
    """A node's end as ``outcome.json`` records it: a failure's error, else the state, with
    a note on how it stopped when there is one (``stopped (ignored the stop: ...)``)."""
    if node.error and node.state == "failed":
        return node.error
    return f"{node.state} ({node.error})" if node.error else node.state


def why_late(node: NodeState, plan: Any, nodes: dict[str, NodeState], procs: dict[str, ProcState]) -> str:
    """The supervisor's view of a node not ready by the deadline whose own gate could not
    say why (it never got that far)."""
    proc = procs[node.process]
    if node.notice == "waiting for READY=1" and proc.pid is not None:  # an exec node, ready: notify
        return f"its program (pid {proc.pid}) never sent READY=1 to NOTIFY_SOCKET (ready: notify)"
    if node.state == "starting" and proc.held:
        from topo.plan.execenv import instance_waits

        waits = sorted(w for w in instance_waits(plan).get(node.name, ()) if nodes[w].state != "running")
        return ("its program starts once the nodes it sends to are ready, and these are not: " + ", ".join(waits)
                if waits else "its program waits for endpoints it connects to that were never bound")
    if node.state == "starting" and proc.pending:
        return f"the agent of its host {proc.remote} never said it was up"
    if node.state == "starting":
        return "it never bound its sockets (its process is still importing, or hung before)"
    if node.state == "importing":
        return f"its code ({plan.instances[node.name].run.partition(':')[0]}) is still being imported"
    if not procs[node.process].connected:
        unbound = sorted({
            f"{peer.instance}.{peer.socket} (for socket {sock.name!r})"
            for sock in plan.instances[node.name].sockets for peer in sock.peers
            if nodes[peer.instance].state == "starting"
        })
        return "waiting for peers that never bound their sockets: " + ", ".join(unbound)
    return "its gate never reported (its process may be hung)"


def snapshot(nodes: dict[str, NodeState], procs: dict[str, ProcState], local_host: str = "local") -> list[dict[str, Any]]:
    """Every node as ``topo ps`` shows it (times as wall-clock, for another process). CPU
    and memory of a remote node come from its agent; ``topo ps`` measures local ones."""
    now_wall, now = time.time(), time.monotonic()
    return [
        {
            "name": n.name, "process": n.process, "pid": procs[n.process].pid,
            "host": procs[n.process].remote or local_host,
            **{k: (procs[n.process].stats or {}).get(k) for k in ("cpu", "rss") if procs[n.process].stats},
            "state": (n.notice if n.notice and n.state not in TERMINAL and n.state != "restarting"
                      else STATE_WORDS.get(n.state, n.state)),
            "restarts": n.restarts, "status": n.status,
            "since": now_wall - (now - n.started) if n.started and n.state == "running" else None,
            "error": n.error,
            # a node that has ended while the run goes on: how, and when (wall clock)
            "exit": (n.exitcode if n.exitcode is not None and n.exitcode >= 0 and n.state in EXIT_STATUS
                     else EXIT_STATUS.get(n.state)),
            "ended": now_wall - (now - n.ended) if n.ended and n.state in TERMINAL else None,
        }
        for n in nodes.values()
    ]


def answer(request: bytes, nodes: dict[str, NodeState], procs: dict[str, ProcState],
           local_host: str) -> tuple[dict[str, Any] | None, bool]:
    """A request of ``topo ps`` or ``topo down`` (JSON ``{"cmd": ...}``) answered: the reply
    (None for a malformed request: nothing trusted, nothing sent) and whether it asks the
    run to stop."""
    try:
        command = json.loads(request)["cmd"]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None, False  # (RecursionError: `[[[[...` nested a hundred thousand deep)
    if command == "down":
        return {"ok": True}, True
    if command == "interrupt":  # `topo attach`'s Ctrl-C: see interrupts()
        return {"ok": True}, False
    if command == "ps":
        return {"ok": True, "pid": os.getpid(), "nodes": snapshot(nodes, procs, local_host)}, False
    return {"ok": False, "error": f"unknown command {command!r}"}, False


def command_in(request: bytes, commands: frozenset[str]) -> str | None:
    """The control request's command if it is one of ``commands``, else None (a request
    that is not JSON, or names no command, is none of them)."""
    try:
        command = json.loads(request).get("cmd")
    except (ValueError, AttributeError, RecursionError):
        return None
    return command if isinstance(command, str) and command in commands else None


def interrupts(request: bytes) -> bool:
    """Whether a request (answered by :func:`answer`) is ``topo attach``'s Ctrl-C: the run
    stops as on a Ctrl-C in its ``topo up`` (130), a second one cuts the grace period short.
    A request, not SIGINT: the supervisor of a test harness runs in pytest."""
    try:
        return bool(json.loads(request)["cmd"] == "interrupt")
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return False


def next_deadline(procs: dict[str, ProcState], *fixed: float | None, acted: float | None = None) -> float:
    """The soonest moment the supervisor's loop must act at: the ``fixed`` deadlines (None:
    not set), and each process's SIGKILL escalation or restart, among those after
    ``acted``, the time the loop last acted on its deadlines (default: now). One at or
    before it is past (a deadline kept after its moment, as the ready deadline's); one
    after it is still to act on, even if its moment has come meanwhile: the loop then does
    not wait at all. (Measured from now, a restart due 0.1 s after a process's end that
    came due while the loop was between acting and waiting, on a loaded machine, was
    dropped, and the loop slept until the ready deadline: the restart came 30 s late.)"""
    deadlines = [d for d in fixed if d is not None]
    deadlines.extend(p.term_sent + KILL_AFTER for p in procs.values()
                     if p.term_sent and not p.kill_sent and not p.ended)
    deadlines.extend(p.kill_sent + ABANDON_AFTER for p in procs.values() if p.kill_sent and p.remote and not p.ended)
    deadlines.extend(p.restart_at for p in procs.values() if p.restart_at and p.ended)
    deadlines.extend(p.stop_late_at for p in procs.values() if p.stop_late_at and not p.ended)
    since = time.monotonic() if acted is None else acted
    future = [d for d in deadlines if d > since]
    return min(future) if future else since + 1.0


def wake_on_signals(fd: int) -> bool:
    """A signal wakes the loop whichever thread the kernel hands it to: Python runs its
    handler in the main thread only, and a signal taken by another thread (the terminal's
    writer) would otherwise wait for the poll's timeout, up to the ready deadline. Only
    where the supervisor runs in the main thread (``topo up``; a test harness runs it in a
    thread of its own and keeps its signals)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    return True
