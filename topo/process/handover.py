"""A scale-down without loss (``topo apply``, ``replicas`` lowered): a PUSH that binds
stops dealing to its removed peers without dropping anything dealt to them.

libzmq gives a bound PUSH no way to stop dealing to one of its peers but the end of that
peer's connection, and each way of ending it loses what is in flight: the peer's
``zmq_disconnect`` drops what it has received and not read yet; the peer's end (a stop)
drops that and what the binder still queues for it; ``zmq_unbind`` ends the listener and,
at once, the connections it accepted (libzmq makes them its children): over tcp the last
batch each engine held was lost (200 of 20,000 tasks in the test). What loses nothing is a
*close* made once the kernel holds nothing unread (below): libzmq then writes out what the
socket queues for each peer, within its linger, and each peer keeps what it has received
(the connecting side of a connection keeps its pipe when the other side ends it, to
reconnect).

So the feeder's socket is replaced (:class:`Release`, asked by ``release``): at its
node's next use of any of its sockets, or its next ``node.running`` (its own thread,
between two of its calls, as :mod:`topo.process.relink` makes links), a new socket of the
same type and options takes the old one's place *under the node's socket object*
(pyzmq's ``Socket.__init__(shadow=...)`` points an object at a libzmq socket), so the
node, its taps and its pollers go on with the same object. The old libzmq socket, with
every connection and what it queues, is closed by a thread of its own once the kernel
holds nothing unread on its connections, and the process keeps those connections open
until each peer has read every byte (:mod:`topo.process.delivery`, as at a node's
return). The node waits meanwhile, in that call, for ``rebind``: the supervisor sends it
once every removed peer has retired (below), and the new socket binds every address the
old one bound, as it bound them (:func:`topo.process.wiring.bind_again`): over ipc the
same file, which libzmq replaces (the old listener, closed, no longer owns it); over tcp
the same port, once the old socket's close has let it go, a CURVE server again where the
endpoint is secure. The peers kept, whose connections the old socket's close ended, keep
what they received and reconnect by themselves, to the new socket; the node's call goes
on, and its next message waits until one has.

It is never taken between two frames of a message the node sends on the PUSH: right
after a frame that ends a message, or at another of the node's calls made :data:`QUIET`
s after one before it with no send between (a node that was between two frames when
``release`` came sends its next frame long before; one that spends that long in other
calls first would have the message's rest go out as a message of its own).

The removed peer (:class:`Retire`, asked by ``retire``) goes on as it was: at each
``recv`` or ``poll`` of its socket, and each time its node asks ``node.running`` (in its
own thread: a place between its calls, which a node waiting in a ``zmq.Poller`` of its
own reaches too), it looks whether no connection of its process to the old address is
left (the old socket closed, everything read; over tcp the engine closes its connection
once it has read the close, after all the rest) and nothing is readable; then it
disconnects (its pipe is empty: nothing is dropped, and it never reconnects, to the new
socket), reports ``linked``, and its ``node.running`` turns false: the node returns, and
what it sent is delivered as at any return.

An async node's feeder is taken at a turn of its event loop (never inside pyzmq's asyncio
machinery, which calls the socket's methods in the middle of its own work) when no send
of the socket waits, and its asyncio socket follows the new socket (:func:`topo.process.aiofollow.follow`:
its loop watches the new descriptor); an async removed peer retires as a plain one.

A node that does not use a socket in time (the supervisor withdraws the change), a socket
that also binds inproc (libzmq's inproc peers never reconnect), or a pyzmq whose sockets
cannot be pointed elsewhere is answered ``done: false``, and the supervisor stops the
removed peer as before. Options the node set on its socket itself are not carried over
(the new socket has the file's).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import zmq

from topo.process.aiofollow import can_follow, follow
from topo.process.control import Kind, Message
from topo.process.delivery import Deliveries, connections
from topo.process.relink import Hooked
from topo.process.sockets import build
from topo.process.wiring import bind_again
from topo.plan.share import INPROC

#: pyzmq's own socket class, whose ``__init__`` points a socket object at a libzmq socket.
_Raw: Any = zmq.backend.Socket

if TYPE_CHECKING:
    from topo.process.runner import Runner

_SNDMORE = int(zmq.SNDMORE)
#: Seconds between two calls of a feeder's node with no send on its socket between them
#: after which it is taken for not being in the middle of a message (:meth:`Release.ready`).
QUIET = 0.1
#: How long a tcp port the old socket's listener still holds is tried again, at most, and
#: how often (seconds): libzmq closes the listener in its own thread, after the close.
REBIND_WITHIN = 2.0
REBIND_RETRY = 0.01
#: The shortest interval between two looks at the process's connections by a retiring
#: node that polls in a tight loop (a look reads /proc/self/fd).
LOOK_EVERY = 0.002


class _Hooked(Hooked):
    """A hand-over's change, with the id of the request it answers; besides the socket
    calls it hooks, its node's ``node.running`` may take it (:meth:`at_running`)."""

    def __init__(self, ident: str, instance: str, socket: str, runner: Runner | None = None) -> None:
        super().__init__(instance, socket)
        self.ident = ident
        self.runner = runner
        self._asked: Callable[[], None] | None = None

    def at_running(self, check: Callable[[], None]) -> None:
        """From now on its node's ``node.running`` calls ``check`` (in the node's thread)."""
        assert self.runner is not None
        self._asked = check
        self.runner.ask(check)

    def unhook(self) -> None:
        super().unhook()
        asked, self._asked = self._asked, None
        if asked is not None and self.runner is not None:
            self.runner.unask(asked)


class Release(_Hooked):
    """A feeder's socket replaced by a new one, bound at the same address once the removed
    peers have let it go; the old one closed once delivered."""

    def __init__(self, ident: str, runner: Runner, socket: str, within: float, owner: Handovers) -> None:
        super().__init__(ident, runner.inst.name, socket, runner)
        self.runner: Runner = runner
        self.within = within
        self.owner = owner
        self.rebind = threading.Event()
        self._closed = threading.Event()
        #: An async node's asyncio socket over the socket replaced (it follows it).
        self.aio: Any = None
        #: The node's last send on the socket, since asked, was a frame with more to come;
        #: the first of its other calls since its last send on it (:meth:`ready`).
        self.mid_message = False
        self.other_since: float | None = None

    def ready(self) -> bool:
        """Whether now is a time to take it, at a call that is not a send on the socket
        (another socket's, ``node.running``, an async node's loop turn). Never while an async
        node's send waits on the socket (its future would be left on the old one). In a
        plain node, never between two frames of a message it sends on the socket (the
        rest would go out as a message of its own); a node that has not sent on it since
        ``release`` came may have been between two frames then (its send blocked, say), so
        it is taken only at such a call :data:`QUIET` s after another with no send between
        (a node waiting for input calls again and again; one that sends takes it at the end
        of its next message)."""
        if self.aio is not None:
            return not self.aio._send_futures
        if self.mid_message:
            return False
        now = time.monotonic()
        if self.other_since is None:
            self.other_since = now
        return now - self.other_since >= QUIET

    def make(self, sock: zmq.Socket[Any]) -> None:
        """In the node's thread, between two of its calls: a new socket takes the old one's
        place under the node's socket object; the old one, with every connection and what
        it queues, is closed by a thread of its own once its peers have read all it holds;
        the node waits here for ``rebind``, then the new socket binds what the old one did."""
        self.unhook()
        owner, runner = self.owner, self.runner
        planned = next(p for p in runner.inst.sockets if p.name == self.socket)
        try:
            fresh = build(owner.ctx, planned, owner.linger_ms)
        except zmq.ZMQError as err:
            owner.forget(self)
            owner.answer(self, False, f"a new socket: {err}")
            return
        old, new = sock.underlying, fresh.underlying
        # the node's socket object now holds the new socket; ``fresh`` the old one (as a
        # shadow: it is closed below, never by the garbage collector)
        _Raw.__init__(sock, sock.context, shadow=new)
        _Raw.__init__(fresh, sock.context, shadow=old)
        if self.aio is not None:
            follow(self.aio, sock)
        threading.Thread(target=self._close, args=(fresh,), name="topo:handover", daemon=True).start()
        owner.answer(self, True, "")
        self.rebind.wait(self.within)  # (set by rebind, by a stop, or the deadline: bound anyway)
        owner.forget(self)
        if owner.stopping.is_set():
            return
        # every endpoint the old one bound, as it bound them: over ipc, a file the old
        # listener no longer owns; over tcp, a port, once the old socket's listener has let
        # it go: its close (the removed peers saw it when they retired, so it is over unless
        # they were stopped instead) closes the listener in libzmq's I/O thread, and no event
        # says when that is done, so a bind refused meanwhile is tried again, for a while
        tcp = any(a.startswith("tcp://") for a in runner.bound.get(self.socket, []))
        if tcp:
            self._closed.wait(owner.linger_ms / 1000 + 1.0)
        done: set[str] = set()
        give_up = time.monotonic() + REBIND_WITHIN
        while not owner.stopping.is_set():
            try:
                bind_again(runner.rt, runner, planned, sock, done)
                return
            except zmq.ZMQError as err:  # (its answer is given: said in the run's log, as the node's)
                if not (tcp and err.errno == errno.EADDRINUSE and time.monotonic() < give_up):
                    owner.say(self.instance, f"topo: {self.instance}.{self.socket} could not bind again after "
                                             f"a scale-down, its peers cannot reach it: {err}")
                    return
            owner.stopping.wait(REBIND_RETRY)

    def _close(self, old: zmq.Socket[Any]) -> None:
        """Once the kernel holds nothing unread on its connections (libzmq's last batch
        then fits: :mod:`topo.process.delivery`), the old socket is closed with its linger;
        the process keeps the connections open until the peers have read every byte."""
        owner = self.owner
        held = owner.deliveries.hold(list(self.runner.bound.get(self.socket, [])), [])
        owner.deliveries.wait_drained(held, owner.stopping, time.monotonic() + owner.linger_ms / 1000)
        old.close(linger=0 if owner.stopping.is_set() else owner.linger_ms)
        self._closed.set()
        owner.wake()  # the runtime lets go of the connections once read


class Retire(_Hooked):
    """A removed node's receiving socket: drained, then disconnected, then the node returns."""

    def __init__(self, ident: str, instance: str, socket: str, address: str, runner: Runner,
                 owner: Handovers) -> None:
        super().__init__(ident, instance, socket, runner)
        self.address = address
        self.runner: Runner = runner
        self.owner = owner
        self._next_look = 0.0

    def due(self, sock: zmq.Socket[Any]) -> bool:
        """No connection to the endpoint left in the process, then nothing readable. In
        that order: libzmq's engine hands on every message it has read (its pipe flushed)
        before it closes its connection's descriptor, so once that is closed, a look at
        the socket (which takes in libzmq's pending commands) sees all there is."""
        if sock.getsockopt(zmq.RCVMORE) or type(sock).poll(sock, 0, zmq.POLLIN):
            return False  # (the node reads on: no look at /proc while it has work)
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + LOOK_EVERY
        found = connections(set(), {self.address}, set())
        for each in found:
            os.close(each.dup)
        return not found and not type(sock).poll(sock, 0, zmq.POLLIN)

    def poke(self, sock: zmq.Socket[Any]) -> None:
        """From the node's thread (a hooked call, or its ``node.running``): retired if due."""
        if self._state == "waiting" and self.due(sock) and self.take():
            self.make(sock)

    def make(self, sock: zmq.Socket[Any]) -> None:
        self.unhook()
        self.owner.forget(self)
        try:
            sock.disconnect(self.address)
        except zmq.ZMQError as err:
            if err.errno != errno.ENOENT:
                self.owner.answer(self, False, f"disconnect {self.address}: {err}")
                return
        self.runner.retired.set()
        self.owner.answer(self, True, "")


class Handovers:
    """The releases and retirements of one process's sockets (the runtime's commands)."""

    def __init__(self, report: Callable[[Message], None], deliveries: Deliveries, stopping: threading.Event,
                 wake: Callable[[], None], ctx: zmq.Context[Any], linger_ms: int,
                 say: Callable[[str, str], None]) -> None:
        self.report = report
        self.say = say
        self.deliveries = deliveries
        self.stopping = stopping
        self.wake = wake
        self.ctx = ctx
        self.linger_ms = linger_ms
        self._lock = threading.Lock()
        self.active: list[_Hooked] = []

    def command(self, message: Message, runners: dict[str, Runner]) -> None:
        data = message.data
        if message.kind is Kind.REBIND:
            with self._lock:
                found = [h for h in self.active if isinstance(h, Release) and h.ident == data["id"]]
            for each in found:
                if each.withdraw():  # never taken: nothing was changed
                    each.unhook()
                    self.forget(each)
                    self.answer(each, False, "its node used none of its sockets in time")
                each.rebind.set()
            return
        ident, instance, socket, address = data["id"], data["instance"], data["socket"], data["address"]
        runner = runners.get(instance)
        probe = _Hooked(ident, instance, socket)
        if runner is None or socket not in runner.sockets:
            self.answer(probe, False, f"no socket {instance}.{socket} here")
            return
        if runner.ident is None or runner.finished or runner.node_sockets is None:
            self.answer(probe, False, "its node is not running")
            return
        sock = runner.sockets[socket]
        aio = runner.node_sockets.get(socket) if runner.loop is not None else None
        if aio is not None and not can_follow(aio):
            self.answer(probe, False, "an async node, and this pyzmq's asyncio sockets cannot follow a socket")
            return
        if message.kind is Kind.RELEASE:
            if address not in runner.bound.get(socket, []) or not address.startswith(("ipc://", "tcp://")):
                self.answer(probe, False, f"{instance}.{socket} does not bind {address}")
                return
            planned = next(p for p in runner.inst.sockets if p.name == socket)
            if any(runner.rt.plan.endpoints[k].transport == INPROC for k in planned.binds):
                self.answer(probe, False,
                            f"{instance}.{socket} binds inproc too (its inproc peers cannot reconnect)")
                return
            if not isinstance(sock, _Raw) or not hasattr(sock, "underlying"):
                self.answer(probe, False, "this pyzmq cannot move a socket")
                return
            release = Release(ident, runner, socket, float(data.get("within", 10.0)), self)
            release.aio = aio
            with self._lock:
                self.active.append(release)
            release.at_running(functools.partial(_take, release, sock))  # (a node in a Poller of its own)
            if runner.loop is None:
                for other in runner.sockets.values():  # any of them: the node's thread is in none
                    for name in ("send", "recv", "poll"):
                        release.hook(other, name, _release_hook(release, other, sock, name))
            else:  # an async node: at a turn of its loop (its node awaits), never inside pyzmq's
                # asyncio machinery, which calls these methods in the middle of its own work
                with contextlib.suppress(RuntimeError):  # (a loop closed meanwhile: its node has ended)
                    runner.loop.call_soon_threadsafe(_take_in_loop, release, sock, runner.loop)
        else:
            retire = Retire(ident, instance, socket, address, runner, self)
            with self._lock:
                self.active.append(retire)
            for name in ("recv", "poll"):
                retire.hook(sock, name, _retire_hook(retire, sock, name))
            retire.at_running(functools.partial(retire.poke, sock))

    def forget(self, change: _Hooked) -> None:
        with self._lock:
            if change in self.active:
                self.active.remove(change)

    def drop_all(self) -> None:
        """The process stops: nothing more is changed, and a held node goes on (to its stop)."""
        with self._lock:
            changes, self.active = self.active, []
        for change in changes:
            if change.withdraw():
                change.unhook()
            if isinstance(change, Release):
                change.rebind.set()

    def answer(self, change: _Hooked, done: bool, why: str) -> None:
        self.report(Message(Kind.LINKED, {"id": change.ident, "instance": change.instance,
                                          "socket": change.socket, "done": done, "why": why}))


def _take(release: Release, target: zmq.Socket[Any]) -> None:
    if release.ready() and release.take():
        release.make(target)


def _take_in_loop(release: Release, target: zmq.Socket[Any], loop: Any) -> None:
    """At a turn of an async node's loop: taken, or looked at again shortly while a send
    of the socket waits (until the supervisor withdraws it: then it cannot be taken)."""
    if release.ready():
        if release.take():
            release.make(target)
    elif release.waiting():
        loop.call_later(LOOK_EVERY, _take_in_loop, release, target, loop)


def _release_hook(release: Release, sock: zmq.Socket[Any], target: zmq.Socket[Any],
                  method: str) -> Callable[..., Any]:
    if sock is target and method == "send":
        def send(*args: Any, **kwargs: Any) -> Any:
            # after the frame, and only at a message's end: a message is never cut in two
            result = type(sock).send(sock, *args, **kwargs)
            release.mid_message = bool(int(args[1] if len(args) > 1 else kwargs.get("flags", 0)) & _SNDMORE)
            release.other_since = None
            if not release.mid_message and release.take():
                release.make(target)
            return result
        return send

    def call(*args: Any, **kwargs: Any) -> Any:
        _take(release, target)
        return getattr(type(sock), method)(sock, *args, **kwargs)
    return call


def _retire_hook(retire: Retire, sock: zmq.Socket[Any], method: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        retire.poke(sock)
        return getattr(type(sock), method)(sock, *args, **kwargs)
    return call
