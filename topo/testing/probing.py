"""The probes' process: the sockets a test adds to a topology (``up(..., probes=...)``),
bound, connected and gated in the test's own thread as a node's process does it, and
reporting to the supervisor as one (hello, bound, ready, stopped, bye), so that the run
waits for them and their peers' gates count them like any peer."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager

import zmq

from topo.errors import TopoError
from topo.plan.planner import Plan, share_of
from topo.plan.share import RUN_DIR, EndpointShare
from topo.process import curve
from topo.process import sockets as socket_factory
from topo.process.control import Kind, Message
from topo.process.gate import GateWatch, InprocBoard, SocketGate
from topo.testing.overrides import PROBE_NODE, PROBE_PROCESS

if TYPE_CHECKING:
    from topo.supervisor.supervise import Supervisor


class HarnessError(TopoError):
    """The topology did not come up, or a wait ran out; says what was awaited."""


class ProbeProcess:
    """The probes' sockets and the process-like channel they report on."""

    def __init__(self, plan: Plan, supervisor: "Supervisor", ready_timeout: float,
                 why: Callable[[str], str]) -> None:
        self.plan, self.supervisor, self.ready_timeout, self.why = plan, supervisor, ready_timeout, why
        self.probes: dict[str, zmq.Socket[Any]] = {}
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._push: zmq.Socket[Any] = self._ctx.socket(zmq.PUSH)
        self._dealer: zmq.Socket[Any] = self._ctx.socket(zmq.DEALER)

    def wire(self) -> None:
        """Bind, connect, gate, ready: as a node's process does, in the test's thread."""
        events, commands = self.supervisor._endpoints
        run_dir = str(self.supervisor.run_dir.sockets) if self.supervisor.run_dir else ""
        ctx = self._ctx
        self._push.connect(events)
        self._dealer.setsockopt(zmq.IDENTITY, PROBE_PROCESS.encode())
        self._dealer.connect(commands)
        self._dealer.send_multipart(Message(Kind.HELLO, {"process": PROBE_PROCESS, "gen": 0}).encode())
        share = share_of(self.plan, PROBE_PROCESS)
        inst = share.instances[PROBE_NODE]
        addresses = {k: e.address.replace(RUN_DIR, run_dir) for k, e in share.endpoints.items()}
        # probes on tcp links speak CURVE with the local host's keys, as nodes do
        keys = self.supervisor.processes.local_keys
        if keys is not None and any(share.endpoints[k].secure for s in inst.sockets for k in s.binds):
            curve.ZapHandler(ctx, keys).start()
        gates, bound = [], {}
        for planned in inst.sockets:
            sock = socket_factory.build(ctx, planned, 0)
            gate = SocketGate(ctx, sock, planned,
                              {p.endpoint: share.endpoints[p.endpoint].transport for p in planned.peers},
                              addresses)
            for key in planned.binds:
                with secured(sock, keys, share.endpoints[key], binds=True):
                    sock.bind(addresses[key])
                bound[key] = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self.probes[planned.name] = sock
            gates.append(gate)
        self._event(Kind.BOUND, endpoints=bound)
        deadline = time.monotonic() + self.ready_timeout
        table = self._await_table(deadline)
        addresses.update(table)
        for planned in inst.sockets:
            for key in planned.connects:
                with secured(self.probes[planned.name], keys, share.endpoints[key], binds=False):
                    self.probes[planned.name].connect(addresses[key])
        board = InprocBoard()  # a probe has no inproc peer: it lives in no node's process
        watch = GateWatch()
        for gate in gates:
            watch.add(gate)
        while True:
            for gate in gates:
                gate.touch()
            if all(g.ready(board) for g in gates):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [m for g in gates for m in g.missing(board)]
                self._event(Kind.NOT_READY, waiting=[f"{PROBE_NODE}: {m}" for m in missing])
                raise HarnessError("the probes were not connected in time:\n" + "\n".join(missing))
            watch.wait(remaining)
        for gate in gates:
            watch.remove(gate)
            gate.finish()
        self._event(Kind.READY)

    def _await_table(self, deadline: float) -> dict[str, str]:
        while time.monotonic() < deadline:
            if self._dealer.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                message = Message.decode(self._dealer.recv_multipart())
                if message.kind is Kind.CONNECT:
                    return dict(message["endpoints"])
                if message.kind is Kind.STOP:
                    break
        raise HarnessError(self.why("the endpoint table (every node bound)"))

    def _event(self, kind: Kind, **data: Any) -> None:
        data.update(instance=PROBE_NODE, gen=0)
        self._push.send_multipart(Message(kind, data).encode())

    def close(self, stopped: bool) -> None:
        """The probes closed and the process said goodbye (``stopped``: the probe node had
        reported, so it reports its end too)."""
        for sock in self.probes.values():
            sock.close(linger=0)
        if stopped:
            self._event(Kind.STOPPED, started=True)
        self._push.send_multipart(Message(Kind.BYE, {"process": PROBE_PROCESS, "gen": 0}).encode())
        self._push.close(linger=1000)
        self._dealer.close(linger=0)
        self._ctx.term()


def secured(sock: zmq.Socket[Any], keys: curve.HostKeys | None, endpoint: EndpointShare,
              binds: bool) -> ContextManager[None]:
    """CURVE with the local host's keys around a probe's bind or connect of a secure (tcp)
    endpoint."""
    if not endpoint.secure:
        return contextlib.nullcontext()
    if keys is None:
        raise RuntimeError(f"endpoint {endpoint.key} is CURVE but the run has no keys")
    return curve.secured(sock, keys, None if binds else endpoint.host, endpoint.max_message)


