"""What an exec node's program and topo say to each other while it runs: sd_notify one way,
the go the other.

For each exec instance the supervisor starts, this module prepares what the program is
handed besides its wiring:

- ``NOTIFY_SOCKET`` (``ready: notify``, or a ``watchdog:``): a socket of its own
  (:mod:`topo.supervisor.notify`), read in the supervisor's poll;
- ``WATCHDOG_USEC`` (a ``watchdog:``): the interval in microseconds, as systemd sets it
  (``WATCHDOG_PID`` is not set: sd_watchdog_enabled(3) then takes any process as the
  one meant, which a program that forks needs);
- ``TOPO_GO_FD``: the read end of its go pipe (:mod:`topo.supervisor.gosignal`).

and keeps the watchdog deadlines. The rules (what ``READY=1`` or a missed watchdog does
to the node) are the supervisor's (:mod:`topo.supervisor.transitions`); this module
holds the sockets, pipes and timers.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from topo.plan.execenv import instance_waits
from topo.plan.planner import Plan
from topo.supervisor.goheld import Conn, GoWriter
from topo.supervisor.gosignal import GO_FD, GoSignals, receivers_of
from topo.supervisor.notify import NotifySockets, Watchdogs
from topo.supervisor.notifymsg import Notice


class ExecSignals:
    def __init__(self, plan: Plan, poller: Any, say: Callable[[str], None],
                 is_ready: Callable[[str], bool], has_ended: Callable[[str], bool]) -> None:
        """``poller``: the supervisor's loop's (a ``zmq.Poller``): each notify socket is in
        it while open, taken out before it is closed (its number may be reused at once)."""
        self.poller = poller
        self.notify = NotifySockets("", say)  # (its directory: :meth:`open`)
        self.watchdogs = Watchdogs()
        self.go = GoSignals({}, is_ready, has_ended, GoWriter(say))
        self.replan(plan)
        #: Instances whose watchdog is armed for their current run (armed once ready).
        self._armed: set[str] = set()

    def replan(self, plan: Plan) -> None:
        """The run's plan (``topo apply`` gives it a new one): its exec instances and the
        receivers of each, for the programs started from now on."""
        self.plan = plan
        self.exec = {name for name, i in plan.instances.items() if i.exec}
        self.go.receivers = receivers_of([(ln.src_instance, ln.dst_instance) for ln in plan.links], self.exec,
                                         instance_waits(plan)) if self.exec else {}

    def open(self, sockets_dir: str) -> None:
        """The run's directory exists: notify sockets are made in it from now on."""
        self.notify.directory = sockets_dir

    def prepare(self, instance: str) -> tuple[dict[str, str], tuple[int, ...]]:
        """What the program of ``instance`` is started with besides its wiring: variables,
        and descriptors to pass (closed here by :meth:`spawned`). Called at each start."""
        inst = self.plan.instances[instance]
        self.ended(instance)
        env: dict[str, str] = {}
        if inst.ready == "notify" or inst.watchdog:
            env["NOTIFY_SOCKET"] = self.notify.open(instance)
            self.poller.register(self.notify.fileno(instance), 1)  # POLLIN
        if inst.watchdog:
            env["WATCHDOG_USEC"] = str(max(1, round(inst.watchdog * 1_000_000)))
        read = self.go.open(instance)
        env[GO_FD] = str(read)
        return env, (read,)

    def prepare_remote(self, instance: str, send: Callable[[bool, list[Conn]], None]) -> None:
        """:meth:`prepare`, for a program its host's agent starts: the agent makes its
        socket and go pipe (:mod:`topo.hosts.programs`) and relays what it says; ``send``
        tells the agent to give the go (True, with the connections its
        receivers reported) or end the go pipe (False)."""
        self.ended(instance)
        self.go.open_remote(instance, send)

    def spawned(self, instance: str, pid: int | None, passed: tuple[int, ...]) -> None:
        """The program runs as ``pid`` (None: it could not be started): the descriptors
        passed to it are closed here, its notify socket listens to its process tree."""
        for fd in passed:
            os.close(fd)
        if pid is not None:
            self.notify.started(instance, pid)
        self.go.look()

    def ended(self, instance: str) -> None:
        """The program ended (or is about to be started again)."""
        fd = self.notify.fileno(instance)
        if fd is not None:
            self.poller.unregister(fd)
        self.notify.close(instance)
        self.go.close(instance)
        self.watchdogs.disarm(instance)
        self._armed.discard(instance)

    def close_all(self) -> None:
        """The run stops: every program waiting for its go sees end of file; no socket left."""
        self.go.close_all()
        for instance in list(self.exec):
            fd = self.notify.fileno(instance)
            if fd is not None:
                self.poller.unregister(fd)
                self.notify.close(instance)

    # -- the loop's poll ----------------------------------------------------------------

    def owns(self, fd: object) -> bool:
        return self.notify.owns(fd)

    def read(self, fd: int) -> Iterator[tuple[str, Notice]]:
        return self.notify.read(fd)

    def drain(self, instance: str) -> list[tuple[str, Notice]]:
        """Everything still queued on the instance's socket (its program has ended)."""
        fd = self.notify.fileno(instance)
        out: list[tuple[str, Notice]] = []
        while fd is not None:
            got = list(self.notify.read(fd))
            if not got:
                break
            out.extend(got)
        return out

    # -- the watchdog -------------------------------------------------------------------

    def running(self, instance: str, now: float) -> None:
        """The node is ready: its watchdog, if it has one, is armed from now (as systemd
        arms it once start-up is complete)."""
        seconds = self.plan.instances[instance].watchdog
        if seconds and instance not in self._armed:
            self._armed.add(instance)
            self.watchdogs.arm(instance, seconds, now)

    def pet(self, instance: str, now: float) -> None:
        self.watchdogs.pet(instance, now)

    def next_deadline(self) -> float | None:
        """The next watchdog deadline, or a held go's next look."""
        due = [t for t in (self.watchdogs.next_deadline(), self.go.writer.next_deadline()) if t is not None]
        return min(due) if due else None

    def missed(self, now: float) -> list[tuple[str, float]]:
        return self.watchdogs.missed(now)
