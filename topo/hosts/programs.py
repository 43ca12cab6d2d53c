"""An agent's exec node programs: started as the supervisor starts its local ones, and
spoken with as it speaks with them, on their own host.

A program's ``NOTIFY_SOCKET`` (``ready: notify`` or a ``watchdog:``) must be a socket on
its host, and its go pipe (``TOPO_GO_FD``) a pipe of its host: both are made here, by the
agent (:class:`topo.supervisor.notify.NotifySockets`, the same checks of who speaks).
What the program says is relayed to the supervisor as it is heard (``EXEC_NOTICE``, its
notice's fields), where the same rules as for a local program apply
(:mod:`topo.supervisor.execrules`: ready, status, watchdog); the supervisor decides the
go and says so (``EXEC_GO``: ``go`` true writes the byte, once the program has read what
its tcp receivers sent, :mod:`topo.supervisor.goheld`; false closes the pipe: end of
file, the run stops). The watchdog's timer is the supervisor's: a relayed ``WATCHDOG=1``
renews it, a few milliseconds of network later than a local one would.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from topo.plan.planner import Plan, share_of
from topo.process.control import Kind, Message
from topo.supervisor import execspawn
from topo.supervisor.goheld import GoWriter
from topo.supervisor.keeper import Keeper
from topo.supervisor.notify import NotifySockets
from topo.supervisor.notifymsg import to_wire
from topo.supervisor.watch import Started

_POLLIN = 1  # zmq.POLLIN


class Programs:
    """The programs of one agent: the keeper (of every process's group the agent starts,
    Python ones too), what their starts share, their sockets and go pipes (by instance
    name)."""

    def __init__(self, directory: str, grace: float, poller: Any, say: Callable[[str], None]) -> None:
        """``poller``: the agent's loop's (a ``zmq.Poller``): a notify socket is in it
        while open; ``say``: where a refused datagram is told."""
        self.directory = directory
        self.keeper = Keeper(grace)
        self.starts = execspawn.Starts()
        self.poller = poller
        self.notify = NotifySockets(directory, say)
        self._go: dict[str, int] = {}  # instance -> the write end of its go pipe
        #: Writes each go once its program read its tcp receivers' bytes (topo.supervisor.goheld).
        self.writer = GoWriter(say)
        self._of: dict[str, tuple[str, int]] = {}  # instance -> (its process, the generation started)

    def start(self, plan: Plan, process: str, gen: int, fixed: dict[str, str]) -> tuple[Started, dict[str, str]]:
        """The program of ``process`` started with its notify socket and go pipe; raises
        :class:`topo.supervisor.execspawn.ProgramError` when it cannot be."""
        (instance,) = share_of(plan, process).instances
        inst = plan.instances[instance]
        self.ended(instance)
        env: dict[str, str] = {}
        if inst.ready == "notify" or inst.watchdog:
            env["NOTIFY_SOCKET"] = self.notify.open(instance)
            self.poller.register(self.notify.fileno(instance), _POLLIN)
        if inst.watchdog:
            env["WATCHDOG_USEC"] = str(max(1, round(inst.watchdog * 1_000_000)))
        read, self._go[instance] = os.pipe2(os.O_CLOEXEC)
        os.set_inheritable(read, True)
        env["TOPO_GO_FD"] = str(read)
        self._of[instance] = (process, gen)
        try:
            started, binds = execspawn.start(plan, process, self.directory, fixed, self.keeper, env, (read,),
                                             self.starts)
        except execspawn.ProgramError:
            self.ended(instance)
            raise
        finally:
            os.close(read)
        self.notify.started(instance, started.pid)
        return started, binds

    def owns(self, fd: object) -> bool:
        return self.notify.owns(fd)

    def read(self, fd: int) -> Iterator[Message]:
        """What a program said, for the supervisor."""
        for instance, notice in self.notify.read(fd):
            process, gen = self._of.get(instance, ("", -1))
            yield Message(Kind.EXEC_NOTICE, {"process": process, "instance": instance, "gen": gen,
                                             "notice": to_wire(notice)})

    def go(self, m: Message) -> None:
        """The supervisor's ``EXEC_GO`` for the program it names (of the generation running):
        the go written (once the program has read what came on the connections it names),
        or its pipe ended."""
        instance = m["instance"]
        if self._of.get(instance) != (m["process"], m["gen"]) or instance not in self._go:
            return  # about a program replaced since, or ended
        if m["go"]:
            self.writer.give(instance, self._go[instance], m.data.get("conns", []))
        else:
            self.writer.forget(instance)
            os.close(self._go.pop(instance))

    def gone(self, process: str) -> list[Message]:
        """:meth:`ended`, for the program of ``process``."""
        return next((self.ended(i) for i, (p, _) in list(self._of.items()) if p == process), [])

    def ended(self, instance: str) -> list[Message]:
        """Its program ended (or starts again): what it said before its end (for the
        supervisor, before its end is reported), then its socket and go pipe closed."""
        said: list[Message] = []
        fd = self.notify.fileno(instance)
        if fd is not None:
            while said_now := list(self.read(fd)):
                said.extend(said_now)
            self.poller.unregister(fd)
            self.notify.close(instance)
        if instance in self._go:
            self.writer.forget(instance)
            os.close(self._go.pop(instance))
        return said

    def close(self) -> None:
        """The agent leaves: every socket and pipe closed, the keeper told it is over."""
        for instance in list(self._of):
            self.ended(instance)
        self.keeper.close()
