"""One node instance's own thread: call its function, report how it ended, close.

Its sockets are built, bound, connected and gated by the process's wiring thread
(:mod:`topo.process.wiring`), which starts this thread only once the gate is open and the node's
code imported (:mod:`topo.process.nodecode`); from then on the sockets are this thread's alone (zmq sockets are not
thread-safe, and a thread's start is the memory barrier pyzmq asks for to move one).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import zmq

from topo.process import external
from topo.process.control import Kind, Message
from topo.process.gate import SocketGate
from topo.process.node import Node
from topo.plan.share import INPROC, PUB, PULL, RUN_DIR, SUB, InstanceShare

if TYPE_CHECKING:
    from topo.process.context import ProcessContext


class NodeStopped(Exception):
    """The topology stopped before this node's gate opened."""


class Runner(threading.Thread):
    def __init__(self, rt: ProcessContext, inst: InstanceShare) -> None:
        super().__init__(name=f"topo:{inst.name}", daemon=True)
        self.rt = rt
        self.inst = inst
        #: Filled by the wiring thread, handed over with the thread's start.
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        #: What each socket bound, as libzmq reports it (tcp ports are picked at bind time).
        self.bound: dict[str, list[str]] = {}
        #: The same per endpoint key (ipc and tcp ones): what a socket replaced in a
        #: scale-down binds again (:func:`topo.process.wiring.bind_again`).
        self.bound_at: dict[str, str] = {}
        self.gates: list[SocketGate] = []
        #: Socket files it bound for external endpoints, removed when the process ends.
        self.exposed: list[str] = []
        #: What its function got as ``node.sockets`` (asyncio ones for an async node), once
        #: called: where a tap goes (:mod:`topo.process.tapping`).
        self.node_sockets: dict[str, Any] | None = None
        self.loop: Any = None
        self.task: Any = None
        #: Set when topo apply removed it and its input is drained (topo.process.handover),
        #: and what looks whether it is, from the node's thread (its ``node.running``).
        self.retired = threading.Event()
        #: What its ``node.running`` asks besides the flag, in the node's thread: a removed
        #: node whether it has drained, a feeder's socket to be replaced (both topo apply's).
        self.asks: tuple[Callable[[], None], ...] = ()
        #: Its node's ``Node``, once made (given topo apply's questions only when asked: :meth:`ask`).
        self.node: Node | None = None
        #: Set as the node's last act, whether it ran or not; the runtime waits on this.
        self.finished = False
        #: Its function, once its module is imported (started by the process's prelude).
        self.code = rt.code[inst.name]

    def run(self) -> None:
        name = self.inst.name
        self.rt.capture.bind_thread(name)
        returned = False
        try:
            fn = self.code.fn
            assert fn is not None
            self._call(fn)
            returned = True
            if self.rt.stopping.is_set():  # it returned because it was told to stop (node.sleep, node.running)
                self.rt.send(Message(Kind.STOPPED, {"instance": name, "started": True}))
            else:
                self.rt.send(Message(Kind.EXITED, {"instance": name}))
        except BaseException as err:  # noqa: BLE001 - every failure is reported, none escapes
            if self.rt.stopping.is_set() and is_stop(err):
                self.rt.send(Message(Kind.STOPPED, {"instance": name, "started": True}))
            else:
                self.rt.send(Message(Kind.FAILED, {
                    "instance": name, "started": True,
                    "error": f"{type(err).__name__}: {err}" if str(err) else type(err).__name__,
                    "traceback": user_traceback(err),
                }))
        finally:
            # what a node sent before returning is delivered; after a failure or a stop, not
            self.close_sockets(deliver=returned and not self.rt.stopping.is_set())
            self.rt.capture.unbind_thread()
            self.finish()

    def close_sockets(self, deliver: bool = False) -> None:
        """``deliver``: libzmq writes out what is queued for as long as it takes (a stop
        cuts it short), and the process keeps the connections open until the peers have
        read it (:mod:`topo.process.delivery`)."""
        for planned in self.inst.sockets:
            sock = self.sockets.get(planned.name)
            if sock is None:
                continue
            # a SUB's or PULL's only outbound traffic is subscriptions: nothing to deliver
            chosen = planned.options.get("linger")  # the user's own linger wins
            if chosen is not None:
                linger = int(chosen)
            else:
                linger = -1 if deliver and planned.type not in (SUB, PULL) else 0
            if deliver and linger != 0 and external.has_external(planned):
                # outsiders' reading cannot be watched: libzmq's linger, bounded
                linger = external.return_linger(planned, self.rt.linger_ms)
                self.rt.deliveries.linger_for(linger / 1000)
            if deliver and linger != 0:
                held = self.rt.deliveries.hold(
                    self.bound.get(planned.name, []),
                    [self.rt.addresses[k] for k in planned.connects if self.rt.plan.endpoints[k].transport != INPROC])
                # libzmq's last batch is only safe from the close once the kernel has room;
                # a stop meanwhile drops what is left
                if not self.rt.deliveries.wait_drained(held, self.rt.stopping):
                    linger = 0
            sock.close(linger=linger)

    def finish(self) -> None:
        self.finished = True
        self.rt.runner_done()

    def _call(self, fn: Callable[..., Any]) -> None:
        node_sockets: dict[str, Any] = dict(self.sockets)
        if is_async(fn):
            import asyncio

            import zmq.asyncio

            node_sockets = {k: zmq.asyncio.Socket.from_socket(s) for k, s in self.sockets.items()}
            node = self._node(node_sockets)
            self.node_sockets = node_sockets
            self.rt.tapping.node_started(self.inst.name, node_sockets)  # recorded from its first message

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
        self.node_sockets = node_sockets
        self.rt.tapping.node_started(self.inst.name, node_sockets)  # recorded from its first message
        fn(self._node(node_sockets))

    def _node(self, node_sockets: dict[str, Any]) -> Node:
        node = Node(self.inst.name, self.inst.replica, self.inst.replicas, self.inst.args, node_sockets,
                    self.rt.stopping)
        node.restarts = self.rt.boot.restarts.get(self.inst.name, 0)
        self.node = node
        if self.asks:  # asked while the node was being made
            node._retired = self._retired
        return node

    def ask(self, check: Callable[[], None]) -> None:
        """From now on its ``node.running`` calls ``check`` too (topo apply: every other
        node's ``running`` stays one flag's look: it is in every loop of every node).
        Published before the node is looked at, as :meth:`_node` looks after making it, so
        neither side misses the other."""
        self.asks = (*self.asks, check)
        node = self.node
        if node is not None:
            node._retired = self._retired

    def unask(self, check: Callable[[], None]) -> None:
        self.asks = tuple(c for c in self.asks if c is not check)

    def _retired(self) -> bool:
        """``node.running``'s question: a place between the node's own calls, where its
        thread may look at its sockets (:mod:`topo.process.handover`)."""
        if not self.retired.is_set() and threading.get_ident() == self.ident:
            for check in self.asks:
                check()
        return self.retired.is_set()

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
#: topo's package: its frames are no part of a user's traceback (a node topo ships,
#: ``topo.nodes:replay``, fails with its reason alone)
_TOPO_PACKAGE = os.path.dirname(_TOPO_DIR) + os.sep


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
        return not (os.path.abspath(frame.filename).startswith(_TOPO_PACKAGE)
                    or frame.filename.startswith("<frozen importlib")
                    or os.path.basename(frame.filename) == "__init__.py" and "importlib" in frame.filename)

    kept = [f for f in tb.stack if keep(f)]
    tb.stack = traceback.StackSummary.from_list(kept)
    return "".join(tb.format())


def is_stop(err: BaseException) -> bool:
    if isinstance(err, zmq.ZMQError) and err.errno == zmq.ETERM:
        return True
    import asyncio

    return isinstance(err, (asyncio.CancelledError, NodeStopped))


__all__ = ["Runner", "RUN_DIR"]
