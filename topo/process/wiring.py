"""One thread per process wires every node of it: build, bind, connect, gate, hand over.

Until its gate opens a node is only sockets waiting for handshakes and subscriptions, so
one thread does this for all of a process's nodes, with one poll over all their monitors
and one wake-up pipe, instead of a thread, a poll loop and a wake-up socket pair per node.
A process of twenty nodes then does twenty times less of the per-node set-up that made a
packed launch slow (threads started before they had anything to do, every one of them
woken by every inproc bind of the process).

The sockets are created, bound, connected and gated in this thread; when a node's gate is
open and its code imported, the thread reports it ready and starts the node's own thread
(:class:`topo.process.runner.Runner`), which owns the sockets from then on. pyzmq sockets may move
between threads across a full memory barrier, which starting a thread is, and this thread
never touches them again. Endpoints outside the topology (:mod:`topo.process.external`)
are bound and connected once a node's gate is open, just before it is reported ready: the
gate counts handshakes, and an outside client's must not stand for a peer's. A receiving
socket that binds nothing ``topo send`` could dial binds its injection endpoint
(:mod:`topo.plan.inject`) first, before any CURVE option is set on it. A node that cannot be wired (its bind fails, its import fails,
its peers never come) is reported and its sockets closed here; the others go on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager

import zmq

from topo.process import external
from topo.process import sockets as socket_factory
from topo.process.control import Kind, Message
from topo.process.execlinks import ExecLinks
from topo.process.gate import GateWatch, SocketGate
from topo.process.runner import NodeStopped, Runner, is_stop, user_traceback
from topo.plan.share import INPROC, ProcessShare, SocketShare, inject_key

if TYPE_CHECKING:
    from topo.process.context import ProcessContext

#: libzmq's default ZMQ_BACKLOG.
_BACKLOG = 100


class Wiring(threading.Thread):
    def __init__(self, rt: ProcessContext, runners: list[Runner]) -> None:
        super().__init__(name="topo:wiring", daemon=True)
        self.rt = rt
        self.runners = runners
        #: The nodes still being wired: neither handed over nor ended.
        self.pending: list[Runner] = list(runners)
        #: The one poll of the wiring (made in the thread, with the board's wake-up pipe).
        self.watch: GateWatch
        #: Reports the connections of exec senders that come after the gates (made when
        #: a socket has one).
        self.exec_links: ExecLinks | None = None

    def run(self) -> None:
        self.watch = GateWatch([self.rt.board.listen()])
        for runner in self.runners:  # an import ending from now on wakes this thread's wait
            runner.code.module.notify = self.rt.board.notify
        try:
            bound: dict[str, str] = {}
            for runner in list(self.pending):
                self._step(runner, functools.partial(self._bind, runner, bound))
            if self.pending:  # one report for the process: fewer messages for the supervisor
                self.rt.send(Message(Kind.BOUND, {"instances": [r.inst.name for r in self.pending],
                                                  "endpoints": bound}))
            self._wait_for_table()
            for runner in list(self.pending):
                self._step(runner, functools.partial(self._connect, runner))
            for runner in self.pending:
                for gate in runner.gates:
                    self.watch.add(gate)
            self._gate()
        except BaseException as err:  # noqa: BLE001 - a fault of the wiring fails its nodes, loudly
            # a stop, or a wait of the gate that the stop's context term interrupted (ETERM)
            stopped = isinstance(err, NodeStopped) or (self.rt.stopping.is_set() and is_stop(err))
            for runner in list(self.pending):
                self._end(runner, Message(Kind.STOPPED, {"instance": runner.inst.name, "started": False})
                          if stopped else _failed(runner, err))
        finally:
            for runner in list(self.pending):  # only if even reporting failed
                self._end(runner, None)
            self.rt.board.close()  # later pokes (an import ending after a stop) go nowhere

    # -- phases ----------------------------------------------------------------------------

    def _bind(self, runner: Runner, bound: dict[str, str]) -> None:
        """Binds the node's sockets; adds what they bound to ``bound`` if all went well."""
        plan = self.rt.plan
        mine: dict[str, str] = {}
        for planned in runner.inst.sockets:
            sock = socket_factory.build(self.rt.ctx, planned, self.rt.linger_ms)
            runner.sockets[planned.name] = sock
            prepare(plan, planned, sock)
            runner.gates.append(SocketGate(
                self.rt.ctx, sock, planned, {p.endpoint: plan.endpoints[p.endpoint].transport for p in planned.peers},
                self.rt.addresses, self.rt.boot.absent))
            if planned.inject:  # first: no CURVE option is set on the socket yet (topo.plan.inject)
                mine[inject_key(runner.inst.name, planned.name)] = self._bind_one(
                    sock, planned.name, self.rt.run_path(planned.inject))
            for key in planned.binds:
                address = self.rt.boot.fixed.get(key) or self.rt.local_address(key)
                with self._security(sock, key, binds=True):
                    actual = self._bind_one(sock, planned.name, address)
                mine[key] = actual
                if plan.endpoints[key].transport == INPROC:
                    self.rt.board.post_bound(actual)
                else:
                    runner.bound.setdefault(planned.name, []).append(actual)
                    runner.bound_at[key] = actual
        bound.update(mine)

    @staticmethod
    def _bind_one(sock: zmq.Socket[Any], name: str, address: str) -> str:
        """Binds ``address``; the address bound (a tcp port is picked here), or an error
        that names the socket and the address."""
        try:
            sock.bind(address)
        except zmq.ZMQError as err:
            raise zmq.ZMQError(err.errno, f"{err.strerror} (binding {name!r} to {address})") from None
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def _security(self, sock: zmq.Socket[Any], key: str, binds: bool) -> ContextManager[None]:
        return endpoint_security(self.rt, sock, key, binds)

    def _wait_for_table(self) -> None:
        """The supervisor's endpoint table: every bind of the run is known (tcp ports are
        picked at bind time), so no connect has to be retried. Until the ready deadline,
        like every wait of the wiring: a supervisor that never sends it (one that died is
        the parent-death SIGTERM's business, which stops this wait) must not hold the
        process forever; its nodes end not ready, and the process exits."""
        while not self.rt.table_ready.is_set():
            self._check()
            remaining = self.rt.deadline - time.monotonic()
            if remaining <= 0:
                for runner in list(self.pending):
                    self._end(runner, Message(Kind.NOT_READY, {"instance": runner.inst.name, "waiting": [
                        f"{runner.inst.name}: the addresses of its peers (the supervisor never sent them)"]}))
                return
            self.watch.wait(remaining)
            self.rt.board.drain()
        self._check()

    def _connect(self, runner: Runner) -> None:
        for planned in runner.inst.sockets:
            sock = runner.sockets[planned.name]
            for key in planned.connects:
                address = self.rt.addresses[key]
                with self._security(sock, key, binds=False):
                    sock.connect(address)
                if self.rt.plan.endpoints[key].transport == INPROC:
                    self.rt.board.post_connected(address)

    def _gate(self) -> None:
        """Until every node is handed over, failed, or late at the deadline. Each wake-up
        looks again at the nodes it concerns: those whose monitors or subscriptions spoke,
        or all of them after a poke (an inproc bind or connect, an import that ended)."""
        board = self.rt.board
        look_at = set(self.pending)
        gated: set[Runner] = set()  # gates open, code still loading
        while self.pending:
            self._check()
            ready: list[Runner] = []
            importing: list[Runner] = []
            for runner in [r for r in self.pending if r in look_at]:
                if runner not in gated:
                    for gate in runner.gates:
                        gate.touch()  # attaches pipes handed over; a bound SUB subscribes
                    if not all(g.ready(board) for g in runner.gates):
                        continue
                    for gate in runner.gates:
                        self.watch.remove(gate)
                        kept = gate.finish(keep_monitor=bool(gate.exec_senders))
                        if kept is not None:
                            self._exec_links().watch(runner.inst.name, gate.planned.name, kept,
                                                     int(gate.sock.getsockopt(zmq.FD)))
                    gated.add(runner)
                    if not runner.code.done.is_set():
                        importing.append(runner)  # no longer waiting for peers: `topo ps` says so
                if runner.code.done.is_set():
                    error = runner.code.error  # ended since this round's first look: failed
                    if error is not None:
                        self._end(runner, _failed(runner, error, code=True))
                    else:
                        ready.append(runner)
            if importing:
                self.rt.send(Message(Kind.IMPORTING, {"instances": [r.inst.name for r in importing]}))
            if ready:
                self._hand_over(ready)
            if not self.pending:
                return
            remaining = self.rt.deadline - time.monotonic()
            if remaining <= 0:
                for runner in list(self.pending):
                    self._end(runner, Message(Kind.NOT_READY, {
                        "instance": runner.inst.name, "waiting": self._missing(runner, runner in gated)}))
                return
            heard, woken = self.watch.wait(remaining)
            if woken:
                board.drain()
                look_at = set(self.pending)
            else:
                look_at = {r for r in self.pending if any(g in heard for g in r.gates)}

    def _exec_links(self) -> ExecLinks:
        if self.exec_links is None:
            # (a name in the run's private directory that nothing binds: topo.process.execlinks.IoProbe)
            self.exec_links = ExecLinks(self.rt.send, f"ipc://{self.rt.boot.run_dir}/.io-probe-{os.getpid()}")
        return self.exec_links

    def _missing(self, runner: Runner, gated: bool) -> list[str]:
        name = runner.inst.name
        if gated:
            return [f"{name}: its code ({runner.inst.run.partition(':')[0]}) is still being imported"]
        return [f"{name}: {m}" for g in runner.gates for m in g.missing(self.rt.board)]

    # -- outcomes ---------------------------------------------------------------------------

    def _check(self) -> None:
        """What every wait looks at first: a stop ends the wiring; a failed import fails
        its node at once, not at the deadline."""
        if self.rt.stopping.is_set():
            raise NodeStopped()
        for runner in list(self.pending):
            error = runner.code.error
            if error is not None:
                self._end(runner, _failed(runner, error, code=True))

    def _step(self, runner: Runner, step: Callable[[], None]) -> None:
        """One node's bind or connect: its failure is the node's, unless the run is stopping."""
        try:
            step()
        except BaseException as err:  # noqa: BLE001 - reported as the node's failure
            if self.rt.stopping.is_set() and is_stop(err):
                raise NodeStopped() from None
            self._end(runner, _failed(runner, err))

    def _hand_over(self, ready: list[Runner]) -> None:
        """Nodes whose gates opened together: their external endpoints bound and connected,
        one READY for them all, then their threads."""
        for runner in ready:
            self._step(runner, functools.partial(external.wire, runner.inst.sockets, runner.sockets, runner.exposed))
        ready = [r for r in ready if r in self.pending]  # an external bind may have failed
        if not ready:
            return
        for runner in ready:
            self.pending.remove(runner)
        self.rt.send(Message(Kind.READY, {"instances": [r.inst.name for r in ready]}))
        for runner in ready:
            runner.start()  # from here on the sockets are the node thread's

    def _end(self, runner: Runner, report: Message | None) -> None:
        """A node that will never run: reported, its sockets closed, counted as finished."""
        if runner in self.pending:
            self.pending.remove(runner)
        if report is not None:
            self.rt.send(report)
        for gate in runner.gates:
            self.watch.remove(gate)  # before its monitor is closed under the poller
            gate.finish()
        runner.close_sockets()
        runner.finish()


def _failed(runner: Runner, err: BaseException, code: bool = False) -> Message:
    """``code``: the node's code could not be imported or named; every instance of the
    node fails alike, and the supervisor tells it once (``code`` in the message)."""
    data: dict[str, Any] = {
        "instance": runner.inst.name, "started": False,
        "error": f"{type(err).__name__}: {err}",
        "traceback": user_traceback(err),
    }
    if code:
        data["code"] = True
        if isinstance(err, ModuleNotFoundError) and err.name:
            data["missing"] = err.name  # the node's own module, or one it imports?
    return Message(Kind.FAILED, data)


def endpoint_security(rt: ProcessContext, sock: zmq.Socket[Any], key: str, binds: bool) -> ContextManager[None]:
    """CURVE around the bind or connect of a secure (tcp) endpoint; nothing for the
    others (:mod:`topo.process.curve` is imported only by processes that need it). Also
    what a socket bound again after a scale-down binds with (:mod:`topo.process.handover`)."""
    endpoint = rt.plan.endpoints[key]
    if not endpoint.secure:
        return contextlib.nullcontext()
    if rt.boot.keys is None:
        raise RuntimeError(f"endpoint {key} is CURVE but this process has no CURVE keys")
    from topo.process import curve

    return curve.secured(sock, rt.boot.keys, None if binds else endpoint.host, endpoint.max_message)


def prepare(plan: ProcessShare, planned: SocketShare, sock: zmq.Socket[Any]) -> None:
    """What a node's socket needs before it binds or connects, besides the file's options."""
    if any(plan.endpoints[k].address.startswith("tcp://[") for k in (*planned.binds, *planned.connects)):
        sock.setsockopt(zmq.IPV6, 1)  # a host address written as IPv6
    dialers = sum(1 for p in planned.peers if p.endpoint in planned.binds and not p.binds)
    if dialers > _BACKLOG and "backlog" not in planned.options:
        # libzmq listens with a backlog of 100: a hub dialled by more peers at once
        # turns the rest away, and they retry only after the 100 ms reconnect interval
        sock.setsockopt(zmq.BACKLOG, dialers + 16)


def bind_again(rt: ProcessContext, runner: Runner, planned: SocketShare, sock: zmq.Socket[Any],
               done: set[str]) -> None:
    """A socket that replaces the node's socket (a scale-down: :mod:`topo.process.handover`)
    binds what the old one bound, as it did: its injection file first (plain), then each
    ipc and tcp endpoint at the address bound then, a secure one with CURVE. Raises
    zmq.ZMQError naming the address that could not be bound; ``done``: the keys bound, so
    that a call again after an error binds only the rest."""
    if not done:
        prepare(rt.plan, planned, sock)
    if planned.inject and "" not in done:
        Wiring._bind_one(sock, planned.name, rt.run_path(planned.inject))
        done.add("")
    for key in planned.binds:
        address = runner.bound_at.get(key)
        if address is not None and key not in done:
            with endpoint_security(rt, sock, key, binds=True):
                Wiring._bind_one(sock, planned.name, address)
            done.add(key)
