"""One node instance's thread: import, build sockets, bind, connect, gate, run, close.

Sockets are created, bound, connected and used only in this thread (zmq sockets are not
thread-safe); the gate's poll runs here too. The process runtime only hands over the
endpoint table and the stop signal, both through thread-safe objects plus a wake-up.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager

import zmq

from topo import sockets as socket_factory
from topo.control import Kind, Message
from topo.gate import SocketGate
from topo.node import Node
from topo.share import INPROC, PUB, PULL, RUN_DIR, SUB, InstanceShare

if TYPE_CHECKING:
    from topo.runtime import ProcessRuntime


class NodeStopped(Exception):
    """The topology stopped before this node's gate opened."""


def resolve(reference: str) -> Callable[..., Any]:
    module_name, _, attr = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    return target  # type: ignore[no-any-return]


class Runner(threading.Thread):
    def __init__(self, rt: ProcessRuntime, inst: InstanceShare) -> None:
        super().__init__(name=f"topo:{inst.name}", daemon=True)
        self.rt = rt
        self.inst = inst
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        self.gates: list[SocketGate] = []
        self.loop: Any = None
        self.task: Any = None
        #: Set as the thread's last act; the runtime waits on this, not on thread liveness.
        self.finished = False
        self.importer = _Import(rt, inst)

    # -- the thread ------------------------------------------------------------------------

    def run(self) -> None:
        name = self.inst.name
        self.rt.capture.bind_thread(name)
        wake = self.rt.ctx.socket(zmq.PULL)
        poke = self.rt.ctx.socket(zmq.PUSH)
        wake.bind(f"inproc://#topo-wake/{name}")
        poke.connect(f"inproc://#topo-wake/{name}")
        self.rt.board.subscribe(poke)
        started = False
        returned = False
        try:
            self.importer.start(poke)
            self._bind()
            self._wait_for_table(wake)
            self._connect()
            waiting = self._gate(wake) or self._await_import(wake)
            if waiting:
                self.rt.send(Message(Kind.NOT_READY, {"instance": name, "waiting": waiting}))
                return
            fn = self.importer.fn
            assert fn is not None
            started = True
            self.rt.send(Message(Kind.READY, {"instance": name}))
            self._call(fn)
            returned = True
            self.rt.send(Message(Kind.EXITED, {"instance": name}))
        except NodeStopped:
            self.rt.send(Message(Kind.STOPPED, {"instance": name, "started": False}))
        except BaseException as err:  # noqa: BLE001 - every failure is reported, none escapes
            if self.rt.stopping.is_set() and _is_stop(err):
                self.rt.send(Message(Kind.STOPPED, {"instance": name, "started": started}))
            else:
                self.rt.send(Message(Kind.FAILED, {
                    "instance": name, "started": started,
                    "error": f"{type(err).__name__}: {err}",
                    "traceback": user_traceback(err),
                }))
        finally:
            self.rt.board.unsubscribe(poke)
            # what a node sent before returning is delivered; after a failure or a stop, not
            linger = self.rt.linger_ms if returned and not self.rt.stopping.is_set() else 0
            for gate in self.gates:
                gate.finish()
            for planned in self.inst.sockets:
                sock = self.sockets.get(planned.name)
                if sock is None:
                    continue
                # a SUB's or PULL's only outbound traffic is subscriptions: nothing to deliver
                receive_only = planned.type in (SUB, PULL)
                chosen = planned.options.get("linger")  # the user's own linger wins
                sock.close(linger=int(chosen) if chosen is not None else 0 if receive_only else linger)
            wake.close(linger=0)
            poke.close(linger=0)
            self.rt.capture.unbind_thread()
            self.finished = True
            self.rt.runner_done()

    # -- phases ----------------------------------------------------------------------------

    def _bind(self) -> None:
        plan = self.rt.plan
        bound: dict[str, str] = {}
        for planned in self.inst.sockets:
            sock = socket_factory.build(self.rt.ctx, planned, self.rt.linger_ms)
            if any(plan.endpoints[k].address.startswith("tcp://[") for k in (*planned.binds, *planned.connects)):
                sock.setsockopt(zmq.IPV6, 1)  # a host address written as IPv6
            self.sockets[planned.name] = sock
            gate = SocketGate(self.rt.ctx, sock, planned,
                              {p.endpoint: plan.endpoints[p.endpoint].transport for p in planned.peers},
                              self.rt.addresses, self.rt.boot.absent)
            self.gates.append(gate)
            dialers = sum(1 for p in planned.peers if p.endpoint in planned.binds and not p.binds)
            if dialers > _BACKLOG and "backlog" not in planned.options:
                # libzmq listens with a backlog of 100: a hub dialled by more peers at once
                # turns the rest away, and they retry only after the 100 ms reconnect interval
                sock.setsockopt(zmq.BACKLOG, dialers + 16)
            for key in planned.binds:
                address = self.rt.boot.fixed.get(key) or self.rt.local_address(key)
                try:
                    with self._security(sock, key, binds=True):
                        sock.bind(address)
                except zmq.ZMQError as err:
                    raise zmq.ZMQError(err.errno, f"{err.strerror} (binding {planned.name!r} to {address})") from None
                actual = sock.getsockopt_string(zmq.LAST_ENDPOINT)
                bound[key] = actual
                if plan.endpoints[key].transport == INPROC:
                    self.rt.board.post_bound(actual)
        self.rt.send(Message(Kind.BOUND, {"instance": self.inst.name, "endpoints": bound}))

    def _security(self, sock: zmq.Socket[Any], key: str, binds: bool) -> ContextManager[None]:
        """CURVE around the bind or connect of an endpoint that crosses hosts; nothing for
        the others (:mod:`topo.curve` is imported only by processes that need it)."""
        endpoint = self.rt.plan.endpoints[key]
        if not endpoint.secure:
            return contextlib.nullcontext()
        if self.rt.boot.keys is None:
            raise RuntimeError(f"endpoint {key} crosses hosts but this process has no CURVE keys")
        from topo import curve

        return curve.secured(sock, self.rt.boot.keys, None if binds else endpoint.host)

    def _wait_for_table(self, wake: zmq.Socket[Any]) -> None:
        while not self.rt.table_ready.is_set():
            for sock in self._poll([wake], None):
                _drain(sock)

    def _connect(self) -> None:
        for planned in self.inst.sockets:
            sock = self.sockets[planned.name]
            for key in planned.connects:
                address = self.rt.addresses[key]
                with self._security(sock, key, binds=False):
                    sock.connect(address)
                if self.rt.plan.endpoints[key].transport == INPROC:
                    self.rt.board.post_connected(address)

    def _gate(self, wake: zmq.Socket[Any]) -> list[str]:
        """Polls until every socket is ready; returns what is still missing at the deadline."""
        watched: dict[Any, Callable[[], None]] = {wake: lambda: _drain(wake)}
        for gate in self.gates:
            if gate.monitor is not None:
                watched[gate.monitor] = gate.on_monitor
            if gate.counts_subscriptions and gate.expected_topics:
                watched[gate.sock] = gate.on_subscription
        while True:
            for gate in self.gates:
                gate.touch()
            if all(g.ready(self.rt.board) for g in self.gates):
                for gate in self.gates:
                    gate.finish()
                return []
            remaining = self.rt.deadline - time.monotonic()
            if remaining <= 0:
                return [f"{self.inst.name}: {m}" for g in self.gates for m in g.missing(self.rt.board)]
            for sock in self._poll(list(watched), remaining):
                watched[sock]()

    def _await_import(self, wake: zmq.Socket[Any]) -> list[str]:
        """The gate is open; the node's code may still be loading. What is missing at the
        deadline, if it is still loading then."""
        while not self.importer.done.is_set():
            remaining = self.rt.deadline - time.monotonic()
            if remaining <= 0:
                module = self.inst.run.partition(":")[0]
                return [f"{self.inst.name}: its code ({module}) is still being imported"]
            for sock in self._poll([wake], remaining):
                _drain(sock)
        return []

    def _poll(self, socks: list[Any], timeout: float | None) -> list[Any]:
        """One wait of the wiring phases; a stop ends them, and so does a failed import."""
        if self.importer.error is not None:
            raise self.importer.error
        if self.rt.stopping.is_set():
            raise NodeStopped()
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        try:
            ready = [s for s, _ in poller.poll(None if timeout is None else max(1, int(timeout * 1000)))]
        except zmq.ContextTerminated:
            raise NodeStopped() from None
        if self.rt.stopping.is_set():
            raise NodeStopped()
        if self.importer.error is not None:
            raise self.importer.error
        return ready

    def _call(self, fn: Callable[..., Any]) -> None:
        node_sockets: dict[str, Any] = dict(self.sockets)
        if is_async(fn):
            import asyncio

            import zmq.asyncio

            node_sockets = {k: zmq.asyncio.Socket.from_socket(s) for k, s in self.sockets.items()}
            node = self._node(node_sockets)

            async def drain(sock: Any) -> None:
                while True:  # what the sync PubSocket drops every 64 sends, dropped as it comes
                    await sock.recv()

            async def main() -> None:
                self.loop = asyncio.get_running_loop()
                self.task = asyncio.current_task()
                if self.rt.stopping.is_set():
                    return
                drains = [asyncio.ensure_future(drain(node_sockets[p.name]))
                          for p in self.inst.sockets if p.type == PUB]
                try:
                    await fn(node)
                finally:
                    for task in drains:
                        task.cancel()

            asyncio.run(main())  # a stop cancels it: CancelledError, reported as stopped
            return
        fn(self._node(node_sockets))

    def _node(self, node_sockets: dict[str, Any]) -> Node:
        node = Node(self.inst.name, self.inst.replica, self.inst.replicas, self.inst.args, node_sockets,
                    self.rt.stopping)
        node.restarts = self.rt.boot.restarts.get(self.inst.name, 0)
        return node

    def interrupt(self) -> bool:
        """From the runtime's thread: cancels an async node blocked in an await (True)."""
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
                return True
            except RuntimeError:
                pass
        return False


_TOPO_DIR = os.path.dirname(os.path.abspath(__file__))
#: libzmq's default ZMQ_BACKLOG.
_BACKLOG = 100


class _Import(threading.Thread):
    """The node's code, imported while its sockets are bound, connected and gated, not
    before: a module that takes a second to load (a big library) then overlaps the
    handshakes instead of delaying them, and its peers' gates open meanwhile (what they
    send waits in this node's socket queues). A failed import still fails the node at once:
    every wait of the runner checks it."""

    def __init__(self, rt: ProcessRuntime, inst: InstanceShare) -> None:
        super().__init__(name=f"topo:import:{inst.name}", daemon=True)
        self.rt = rt
        self.inst = inst
        self.done = threading.Event()
        self.fn: Callable[..., Any] | None = None
        self.error: BaseException | None = None
        self._poke: zmq.Socket[Any] | None = None

    def start(self, poke: zmq.Socket[Any] | None = None) -> None:
        """``poke``: the runner's wake-up, poked (through the board) when the import ends.
        A module already imported (every replica after the first, nodes sharing a module)
        is resolved at once, in the caller's thread: a thread per node would cost more."""
        self._poke = poke
        module = sys.modules.get(self.inst.run.partition(":")[0])
        if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
            self._resolve()
            return
        super().start()

    def run(self) -> None:
        self.rt.capture.bind_thread(self.inst.name)  # what an import prints is the node's
        try:
            self._resolve()
        finally:
            self.rt.capture.unbind_thread()
            if self._poke is not None:
                self.rt.board.wake(self._poke)  # wakes the runner's wait, and no other

    def _resolve(self) -> None:
        try:
            self.fn = resolve(self.inst.run)
        except BaseException as err:  # noqa: BLE001 - reported by the runner
            self.error = err
        finally:
            self.done.set()


def is_async(fn: Callable[..., Any]) -> bool:
    """``inspect.iscoroutinefunction`` for what a node can be (a function, a partial, an
    object with an ``async def __call__``), without importing inspect and what it imports
    (ast, dis, tokenize: some 7 ms in every process)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE


def user_traceback(err: BaseException) -> str:
    """The traceback without topo's own frames and importlib's: what the user wrote."""
    import traceback

    tb = traceback.TracebackException.from_exception(err)

    def keep(frame: Any) -> bool:
        return not (os.path.dirname(os.path.abspath(frame.filename)) == _TOPO_DIR
                    or frame.filename.startswith("<frozen importlib")
                    or os.path.basename(frame.filename) == "__init__.py" and "importlib" in frame.filename)

    kept = [f for f in tb.stack if keep(f)]
    tb.stack = traceback.StackSummary.from_list(kept)
    return "".join(tb.format())


def _drain(sock: zmq.Socket[Any]) -> None:
    while True:
        try:
            sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return


def _is_stop(err: BaseException) -> bool:
    if isinstance(err, zmq.ZMQError) and err.errno == zmq.ETERM:
        return True
    import asyncio

    return isinstance(err, (asyncio.CancelledError, NodeStopped))


__all__ = ["Runner", "resolve", "RUN_DIR"]
