"""topo's *go* to an exec sender: ``TOPO_GO_FD``, a pipe that becomes readable once every
receiver linked to the program has its connection.

topo cannot hold an exec node's sends at a gate, so a program that must not lose its
first message waits for the go: it inherits the read end of a pipe, named by
``TOPO_GO_FD``, and topo writes one byte to it once, for every link from one of the
program's sockets,

- a Python receiver that the program waits for (it started before the program, and its
  gate did not wait for it, :mod:`topo.plan.execplan`) has reported the handshake of the
  program's connection (the ``linked`` event, :mod:`topo.process.execlinks`);
- any other receiver (an exec node, or a Python node whose own gate waited for the
  program's connection) is ready, as its ``ready:`` or its gate says;
- a receiver that has ended for good is no longer waited for (as a gate does not wait
  for a peer that has ended).

A program with no sending link gets its byte at once. The write end stays open while the
program runs: end of file on the read end, with or without the byte before it, means the
run is stopping (or the program's instance is being restarted). Pure bookkeeping
besides the pipes: the supervisor's loop tells it what happens and writes nothing else.

A receiver's ``linked`` report says how many handshakes a socket saw, not from whom (a
bound socket's connections are anonymous): each is credited to the exec senders of that
socket still waiting for it, in the order they were started. A Python sender of the
same socket that reconnects after the receiver's gate (its process restarted) could be
taken for an exec sender's connection: a go given early during such a restart is the
known limit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from topo.supervisor.goheld import Conn, GoWriter

#: The environment variable that names the read end of the go pipe.
GO_FD = "TOPO_GO_FD"


@dataclass(frozen=True)
class Receiver:
    """One receiving end of an exec sender's link: an instance and its socket; whether
    the go waits for its ``linked`` report (True) or for its readiness (False)."""

    instance: str
    socket: str
    linked: bool


@dataclass
class _Waiting:
    #: The write end here; -1 for a program on another host, whose agent holds the pipe:
    #: ``send(True, conns)`` then gives its go, ``send(False, [])`` ends its pipe.
    write: int
    #: What is still missing: receivers whose report or readiness has not come.
    missing: list[Receiver] = field(default_factory=list)
    given: bool = False
    send: Callable[[bool, list[Conn]], None] | None = None
    #: The tcp connections its receivers reported (:mod:`topo.supervisor.goheld`).
    conns: list[Conn] = field(default_factory=list)


def receivers_of(links: Iterable[tuple[str, str]], exec_instances: set[str],
                 waits: dict[str, frozenset[str]]) -> dict[str, list[Receiver]]:
    """Each exec instance → the receiving ends of its links (``links``: (from
    ``INSTANCE.SOCKET``, to ``INSTANCE.SOCKET``)); ``waits``: which instances each exec
    instance starts after (:func:`topo.plan.execenv.instance_waits`)."""
    out: dict[str, list[Receiver]] = {x: [] for x in exec_instances}
    for src, dst in links:
        sender, _ = _split(src)
        receiver, sock = _split(dst)
        if sender not in out or receiver == sender:
            continue
        linked = receiver not in exec_instances and receiver in waits.get(sender, frozenset())
        entry = Receiver(receiver, sock, linked)
        if entry not in out[sender]:
            out[sender].append(entry)
    return out


def _split(end: str) -> tuple[str, str]:
    instance, _, sock = end.rpartition(".")  # socket names have no dot; instance names may
    return instance, sock


class GoSignals:
    """The go pipes of a run's exec instances, by instance name."""

    def __init__(self, receivers: dict[str, list[Receiver]], is_ready: Callable[[str], bool],
                 has_ended: Callable[[str], bool], writer: GoWriter) -> None:
        self.receivers = receivers
        #: Writes the go of a program here (held while it has not read its tcp receivers').
        self.writer = writer
        self.is_ready = is_ready
        self.has_ended = has_ended
        self._waiting: dict[str, _Waiting] = {}
        #: Those of ``_waiting`` not given their go yet: what :meth:`look` looks at (called
        #: at every start, a look at every program's would cost the square of their number).
        self._ungiven: dict[str, _Waiting] = {}

    def open(self, instance: str) -> int:
        """A new pipe for an instance about to start: the read end, to hand the program
        (inheritable; the caller closes it once the program is spawned). A previous pipe
        of the instance (a restart) is closed first."""
        self.close(instance)
        read, write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(write, False)
        os.set_inheritable(read, True)
        self._waiting[instance] = self._ungiven[instance] = _Waiting(write, list(self.receivers.get(instance, ())))
        return read

    def open_remote(self, instance: str, send: Callable[[bool, list[Conn]], None]) -> None:
        """:meth:`open`, for an instance whose program starts on another host: its agent
        makes the pipe, and ``send`` tells it to give the go (True) or end the pipe (False)."""
        self.close(instance)
        self._waiting[instance] = self._ungiven[instance] = _Waiting(-1, list(self.receivers.get(instance, ())),
                                                                     send=send)

    def linked(self, receiver: str, sock: str, count: int, conns: list[Conn] | None = None) -> list[str]:
        """A receiver saw ``count`` connections on ``sock``: each credited to the waiting
        senders of that socket, oldest first. ``conns``: those of them that are tcp
        (anonymous too: each credited sender's go looks at all of them). The instances
        given their go now."""
        for instance, waiting in self._waiting.items():
            if count <= 0:
                break
            if waiting.given:
                continue
            for r in waiting.missing:
                if r.linked and r.instance == receiver and r.socket == sock:
                    waiting.missing.remove(r)
                    waiting.conns.extend(c for c in conns or () if c not in waiting.conns)
                    count -= 1
                    break
        return self.look()

    def look(self) -> list[str]:
        """Gives the go to every instance whose receivers are all there (or gone for good):
        called after a state change. The instances given their go now (a program here
        whose go is held, :mod:`topo.supervisor.goheld`, among them)."""
        self.writer.look(time.monotonic())
        given: list[str] = []
        for instance, waiting in list(self._ungiven.items()):
            waiting.missing = [r for r in waiting.missing
                               if not self.has_ended(r.instance) and (r.linked or not self.is_ready(r.instance))]
            if not waiting.missing:
                waiting.given = True
                del self._ungiven[instance]
                if waiting.send:
                    waiting.send(True, waiting.conns)
                else:
                    self.writer.give(instance, waiting.write, waiting.conns)
                given.append(instance)
        return given

    def missing(self, instance: str) -> list[Receiver]:
        waiting = self._waiting.get(instance)
        return list(waiting.missing) if waiting and not waiting.given else []

    def close(self, instance: str) -> None:
        """The instance ended (or restarts): its write end closed, its read end sees EOF."""
        waiting = self._waiting.pop(instance, None)
        self._ungiven.pop(instance, None)
        self.writer.forget(instance)
        if waiting is not None:
            waiting.send(False, []) if waiting.send else os.close(waiting.write)

    def close_all(self) -> None:
        """The run stops: every program still waiting (or reading on) sees end of file."""
        for instance in list(self._waiting):
            self.close(instance)
