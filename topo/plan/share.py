"""One process's share of the plan, as the process itself sees it: plain tuples and strings.

Every node process unpickles what it is sent before it can do anything, and unpickling
imports the modules that define it. The plan's own classes are frozen dataclasses over the
model's enums, whose definitions alone cost a child some 30 ms of CPU at start-up (each
dataclass is compiled when its module is imported), multiplied by every process of a run.
So a child is sent this instead: the same fields under the same names, as named tuples,
socket types and transports as their string values. Only the supervisor side (which has
the plan anyway) builds one, with :func:`topo.plan.planner.share_of`.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

#: Stands for the run directory in ipc addresses until a process knows the real one.
RUN_DIR = "{run_dir}"

#: Socket types (the values of :class:`topo.file.model.SocketType`) the runtime tests for.
PUB, SUB, PULL = "PUB", "SUB", "PULL"
#: The transport (a :class:`topo.file.model.Transport` value) bound and connected in-process.
INPROC = "inproc"


def inject_key(instance: str, socket: str) -> str:
    """What a process reports a socket's injection endpoint under, among the endpoints it
    bound: never a plan endpoint's key, which ends in a transport."""
    return f"{instance}.{socket}/inject"


class EndpointShare(NamedTuple):
    key: str
    transport: str
    address: str
    instance: str
    socket: str
    host: str
    secure: bool
    #: The frame bound of a secure endpoint (bytes; 0: none of topo's).
    max_message: int = 0


class PeerShare(NamedTuple):
    instance: str
    socket: str
    type: str
    subscribe: tuple[str, ...]
    endpoint: str
    binds: bool
    #: Whether the gate waits for this link (not for an exec peer that waits for us).
    wait: bool = True


class SocketShare(NamedTuple):
    name: str
    type: str
    subscribe: tuple[str, ...]
    options: Mapping[str, Any]
    binds: tuple[str, ...]
    connects: tuple[str, ...]
    peers: tuple[PeerShare, ...]
    #: Endpoints outside the topology (the file's ``external:``), as written: bound, or
    #: connected to, once the socket's gate is open; plain, never waited for.
    external_binds: tuple[str, ...] = ()
    external_connects: tuple[str, ...] = ()
    #: Its injection endpoint for ``topo send`` (:mod:`topo.plan.inject`), or "": bound
    #: before the others, plain, reported under :func:`inject_key`.
    inject: str = ""


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
