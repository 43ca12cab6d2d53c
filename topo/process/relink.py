"""A link made or dropped on a running node's socket (``topo apply``): the socket connects
to a new peer or disconnects from one, in the thread that owns it.

Why not from the runtime's thread: a zmq socket is not thread-safe, and libzmq means it.
``zmq_connect`` and ``zmq_disconnect`` first process the socket's pending commands (they
read its mailbox, which has one reader) and then change its list of pipes, which the
node's own ``send``/``recv`` walk at the same time (a PUSH's round robin, a PULL's fair
queue). Called while the node's thread is inside a ``recv`` (blocked, or not), both
threads read one mailbox and one pipe array: a data race, however rarely it shows. No
lock can close it, since the node may reach the socket through ways topo does not see
(``zmq.Poller``, ``zmq.proxy``, an asyncio event loop).

So the change is made by whoever uses the socket next, inside that use: the socket gets,
in its own ``__dict__`` (no class is swapped, a tap's swap is unaffected), a ``send``, a
``recv`` and a ``poll`` that make the change, do what was asked through the socket's
class, and remove themselves. Every way pyzmq sends or receives goes through ``send`` and
``recv`` (``send_multipart``, ``recv_json``, an asyncio socket's shadow), and a node
that waits for input in a loop calls ``poll``: the code making the change runs in the
thread that is using the socket, between two of its calls, exactly as the node's own next
call would. A ``recv`` or ``poll`` makes it only at a message's boundary (``RCVMORE``
unset), never between two frames of a message being read. A ``send`` makes it before
it sends: the message goes to the new peers and to none the change drops (a peer that
went away would otherwise get it, lost). libzmq tells no one whether a send is in the
middle of a multipart message; a pipe added then is what libzmq does itself whenever a
peer connects, and the one case that costs a message is a disconnect made between two
frames of a message going to that very peer: libzmq drops that message (it would
otherwise arrive cut). A node blocked in a ``recv`` (or in a ``zmq.Poller`` of its own)
that began before takes the change when it next calls one of the three: at its next
message.

A socket its node does not use within the bound the supervisor gives (its node computes,
sleeps, waits on another socket, or returned) is not changed at all: the change is
withdrawn, atomically against the node's thread taking it (:class:`Change`), and the
supervisor restarts the process instead, which then has the link from its start. Each
change is answered once with ``linked`` (done true or false).

A ``connect`` made here is libzmq's usual one: the pipe to the new peer exists when it
returns (``ZMQ_IMMEDIATE`` is off), so a PUSH deals to the new peer from that moment and
what it deals waits in the pipe until the connection is up (nothing is lost meanwhile);
the supervisor asks for it only once the peer has bound. A ``disconnect`` drops the
connection's pipe: what the socket had queued for that peer goes out within its linger
(libzmq flushes a disconnected session's pipe); what it had received from that peer and
not yet read is dropped.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import zmq

from topo.process.control import Kind, Message

if TYPE_CHECKING:
    from topo.process.runner import Runner

#: The verbs a running socket is changed by here.
VERBS = ("connect", "disconnect")
#: The socket's methods a change waits in: every send and receive goes through the first
#: two; ``poll`` is what a node waiting for input in a loop calls (``if sock.poll(100)``).
_HOOKED = ("send", "recv", "poll")
#: Held while hooks are put on or taken off (by the runtime's thread and the nodes').
_HOOKS_LOCK = threading.Lock()


class Hooked:
    """A change to one socket's methods, taken by the node's thread or withdrawn by the
    runtime's, exactly once, whichever comes first; the hooks it put on, taken off again
    (a link in place here, a scale-down's hand-over: :mod:`topo.process.handover`)."""

    def __init__(self, instance: str, socket: str) -> None:
        self.instance = instance
        self.socket = socket
        self._lock = threading.Lock()
        self._state = "waiting"
        #: The hooks put on, each with its socket object (the node's, an asyncio socket's shadow).
        self.hooked: list[tuple[zmq.Socket[Any], str, Callable[..., Any]]] = []

    def take(self) -> bool:
        with self._lock:
            if self._state != "waiting":
                return False
            self._state = "taken"
            return True

    def waiting(self) -> bool:
        """Neither taken nor withdrawn yet."""
        return self._state == "waiting"

    def withdraw(self) -> bool:
        with self._lock:
            if self._state != "waiting":
                return False
            self._state = "withdrawn"
            return True

    def hook(self, sock: zmq.Socket[Any], name: str, fn: Callable[..., Any]) -> None:
        """``fn`` in place of the socket object's method ``name``, until :meth:`unhook`."""
        with _HOOKS_LOCK:
            sock.__dict__[name] = fn
            self.hooked.append((sock, name, fn))

    def unhook(self) -> None:
        """Its own hooks removed (under :data:`_HOOKS_LOCK`: another change's, put on the same
        socket meanwhile by the runtime's thread, stay)."""
        with _HOOKS_LOCK:
            for sock, name, fn in self.hooked:
                if sock.__dict__.get(name) is fn:
                    del sock.__dict__[name]


class Change(Hooked):
    """The connects and disconnects one socket is to make."""

    def __init__(self, ident: str, instance: str, socket: str, ops: list[tuple[str, str, str]],
                 deadline: float) -> None:
        super().__init__(instance, socket)
        #: The requests it answers (a second one for the same socket joins a waiting change).
        self.idents = [ident]
        #: (verb, endpoint key, address).
        self.ops = ops
        self.deadline = deadline

    def join(self, ident: str, ops: list[tuple[str, str, str]], deadline: float) -> bool:
        """More changes for the same socket, made with these (False: too late, taken)."""
        with self._lock:
            if self._state != "waiting":
                return False
            self.idents.append(ident)
            self.ops.extend(ops)
            self.deadline = min(self.deadline, deadline)
            return True


class Relinks:
    """The changes of one process's sockets still waiting for their node's thread."""

    def __init__(self, report: Callable[[Message], None], addresses: dict[str, str]) -> None:
        self._report = report
        #: The runtime's endpoint table: each key's address as connected (disconnect names it).
        self.addresses = addresses
        #: Written by the runtime's thread and (once taken) by a node's: under ``_lock``.
        self.waiting: list[Change] = []
        self._lock = threading.Lock()

    def request(self, data: dict[str, Any], runners: dict[str, Runner]) -> None:
        """A ``link`` command (checked by :mod:`topo.process.control`): hooks put on, or
        the change refused at once when no running node owns the socket."""
        ident, instance, socket = data["id"], data["instance"], data["socket"]
        ops: list[tuple[str, str, str]] = []
        for op in data["ops"]:
            if not (isinstance(op, list) and len(op) == 3 and all(isinstance(x, str) for x in op)
                    and op[0] in VERBS):
                self._answer(ident, instance, socket, False, "malformed change")
                return
            verb, key, address = op
            if verb == "disconnect":
                address = self.addresses.get(key, address)
            ops.append((verb, key, address))
        runner = runners.get(instance)
        if runner is None or socket not in runner.sockets:
            self._answer(ident, instance, socket, False, f"no socket {instance}.{socket} here")
            return
        if runner.ident is None or runner.finished:  # (its thread starts at its hand-over)
            self._answer(ident, instance, socket, False, "its node is not running")
            return
        within = data.get("within")  # only when a gate waits for it: else until its next use
        deadline = time.monotonic() + float(within) if within else float("inf")
        with self._lock:
            for waiting in self.waiting:
                if waiting.instance == instance and waiting.socket == socket and waiting.join(ident, ops, deadline):
                    return
        change = Change(ident, instance, socket, ops, deadline)
        targets = [runner.sockets[socket]]
        shadow = getattr((runner.node_sockets or {}).get(socket), "_shadow_sock", None)
        if shadow is not None:
            targets.append(shadow)
        with _HOOKS_LOCK:
            for sock in targets:
                for name in _HOOKED:
                    fn = _hook_send(self, change, sock) if name == "send" else _hook_recv(self, change, sock, name)
                    sock.__dict__[name] = fn
                    change.hooked.append((sock, name, fn))
        with self._lock:
            self.waiting.append(change)

    def next_deadline(self) -> float:
        with self._lock:
            return min((c.deadline for c in self.waiting), default=float("inf"))

    def expire(self, now: float) -> None:
        """In the runtime's thread: changes whose socket was not used in time withdrawn."""
        with self._lock:
            late = [c for c in self.waiting if now >= c.deadline]
            self.waiting = [c for c in self.waiting if c not in late]
        for change in late:
            if change.withdraw():
                change.unhook()
                for ident in change.idents:
                    self._answer(ident, change.instance, change.socket, False,
                                 "its node did not use the socket in time")

    def drop_all(self) -> None:
        """The process stops: nothing more is changed."""
        with self._lock:
            changes, self.waiting = self.waiting, []
        for change in changes:
            if change.withdraw():
                change.unhook()

    def make(self, change: Change, sock: zmq.Socket[Any]) -> None:
        """In the thread using the socket, at a message's boundary: the change made."""
        change.unhook()
        with self._lock:
            if change in self.waiting:
                self.waiting.remove(change)
        try:
            for verb, key, address in change.ops:
                if verb == "connect":
                    sock.connect(address)
                    self.addresses[key] = address
                else:
                    try:
                        sock.disconnect(address)
                    except zmq.ZMQError as err:
                        if err.errno != errno.ENOENT:  # (a connection already gone is no error)
                            raise
        except zmq.ZMQError as err:
            for ident in change.idents:
                self._answer(ident, change.instance, change.socket, False, f"{verb} {address}: {err}")
            return
        for ident in change.idents:
            self._answer(ident, change.instance, change.socket, True, "")

    def _answer(self, ident: str, instance: str, socket: str, done: bool, why: str) -> None:
        self._report(Message(Kind.LINKED, {"id": ident, "instance": instance, "socket": socket,
                                           "done": done, "why": why}))


def _hook_send(relinks: Relinks, change: Change, sock: zmq.Socket[Any]) -> Callable[..., Any]:
    def send(data: Any, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        if change.take():  # before: this message goes to the new peers, and to no dropped one
            relinks.make(change, sock)
        return type(sock).send(sock, data, flags, *args, **kwargs)
    return send


def _hook_recv(relinks: Relinks, change: Change, sock: zmq.Socket[Any], method: str) -> Callable[..., Any]:
    def recv(*args: Any, **kwargs: Any) -> Any:
        if not sock.getsockopt(zmq.RCVMORE) and change.take():  # no message half read
            relinks.make(change, sock)
        return getattr(type(sock), method)(sock, *args, **kwargs)
    return recv
