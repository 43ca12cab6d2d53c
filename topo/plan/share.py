"""One process's share of the plan, as the process itself sees it: plain tuples and strings.

Every node process unpickles what it is sent before it can do anything, and unpickling
imports the modules that define it. The plan's own classes are frozen dataclasses over the
model's enums, whose definitions alone cost a child some 30 ms of CPU at start-up (each
dataclass is compiled when its module is imported), multiplied by every process of a run.
So a child is sent this instead: the same fields under the same names, as named tuples,
socket types and transports as their string values. Only the supervisor side (which has
the plan anyway) imports :mod:`topo.plan.planner` to build it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

if TYPE_CHECKING:
    from topo.plan.planner import Plan

#: Stands for the run directory in ipc addresses until a process knows the real one.
RUN_DIR = "{run_dir}"

#: Socket types (the values of :class:`topo.file.model.SocketType`) the runtime tests for.
PUB, SUB, PULL = "PUB", "SUB", "PULL"
#: The transport (a :class:`topo.file.model.Transport` value) bound and connected in-process.
INPROC = "inproc"


class EndpointShare(NamedTuple):
    key: str
    transport: str
    address: str
    instance: str
    socket: str
    host: str
    secure: bool


class PeerShare(NamedTuple):
    instance: str
    socket: str
    type: str
    subscribe: tuple[str, ...]
    endpoint: str
    binds: bool


class SocketShare(NamedTuple):
    name: str
    type: str
    subscribe: tuple[str, ...]
    options: Mapping[str, Any]
    binds: tuple[str, ...]
    connects: tuple[str, ...]
    peers: tuple[PeerShare, ...]


class InstanceShare(NamedTuple):
    name: str
    node: str
    replica: int
    replicas: int
    run: str
    args: Mapping[str, Any]
    sockets: tuple[SocketShare, ...]


class ProcessShare(NamedTuple):
    topology: str
    name: str
    host: str
    env: Mapping[str, str]
    #: Its node instances by name, in the process's order.
    instances: Mapping[str, InstanceShare]
    #: Every endpoint its sockets bind or connect, by key.
    endpoints: Mapping[str, EndpointShare]


def share_of(plan: Plan, process: str) -> ProcessShare:
    """What one process needs of the plan: its instances and the endpoints they use."""
    proc = next(p for p in plan.processes if p.name == process)
    instances = {}
    keys: set[str] = set()
    for name in proc.instances:
        inst = plan.instances[name]
        sockets = tuple(
            SocketShare(s.name, s.type.value, tuple(s.subscribe), dict(s.options), tuple(s.binds),
                        tuple(s.connects),
                        tuple(PeerShare(p.instance, p.socket, p.type.value, tuple(p.subscribe), p.endpoint, p.binds)
                              for p in s.peers))
            for s in inst.sockets
        )
        instances[name] = InstanceShare(inst.name, inst.node, inst.replica, inst.replicas, inst.run,
                                        dict(inst.args), sockets)
        keys.update(k for s in inst.sockets for k in (*s.binds, *s.connects))
    endpoints = {
        k: EndpointShare(e.key, e.transport.value, e.address, e.instance, e.socket, e.host, e.secure)
        for k, e in plan.endpoints.items() if k in keys
    }
    return ProcessShare(plan.topology, proc.name, proc.host, dict(proc.env), instances, endpoints)
