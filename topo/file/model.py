"""The topology as typed, immutable data, each piece remembering where it was written.

The model is what the loader produces and every later stage reads. It knows nothing of
zmq or processes, so it can be built, checked and planned in a test in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Mapping

from topo.errors import Pos, Problem

#: The largest frame (bytes) an endpoint served with CURVE takes unless the file's
#: ``security.max_message`` or the socket's ``maxmsgsize`` says otherwise. libzmq reads a
#: whole frame, a stranger's handshake included, before CURVE can refuse its sender: the
#: bound is what a stranger can make a node hold. 64 MiB: above any message a tcp link
#: of a topo user was seen to need, far below what hurts a machine.
DEFAULT_MAX_MESSAGE = 64 * 2**20
#: A smaller bound would refuse CURVE's own handshake frames (the largest is some 250 bytes).
MIN_MAX_MESSAGE = 1024


class SocketType(str, Enum):
    PUB = "PUB"
    SUB = "SUB"
    XPUB = "XPUB"
    XSUB = "XSUB"
    PUSH = "PUSH"
    PULL = "PULL"
    REQ = "REQ"
    REP = "REP"
    DEALER = "DEALER"
    ROUTER = "ROUTER"
    PAIR = "PAIR"


#: For each sending/client side, the receiving/server sides libzmq lets it talk to.
#: A link is written from the first to the second: ``PUB -> SUB``, ``REQ -> REP``.
VALID_PAIRS: Mapping[SocketType, frozenset[SocketType]] = MappingProxyType(
    {
        SocketType.PUB: frozenset({SocketType.SUB, SocketType.XSUB}),
        SocketType.XPUB: frozenset({SocketType.SUB, SocketType.XSUB}),
        SocketType.PUSH: frozenset({SocketType.PULL}),
        SocketType.REQ: frozenset({SocketType.REP, SocketType.ROUTER}),
        SocketType.DEALER: frozenset({SocketType.REP, SocketType.ROUTER, SocketType.DEALER}),
        SocketType.ROUTER: frozenset({SocketType.ROUTER}),
        SocketType.PAIR: frozenset({SocketType.PAIR}),
    }
)

#: Sockets that serve requests: on a tie they are the end that binds.
SERVERS = frozenset({SocketType.REP, SocketType.ROUTER})


class Restart(str, Enum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class OnExit(str, Enum):
    CONTINUE = "continue"
    STOP = "stop"


class Transport(str, Enum):
    """Ordered from narrowest to widest: a link may only be widened."""

    INPROC = "inproc"
    IPC = "ipc"
    TCP = "tcp"

    @property
    def rank(self) -> int:
        return _TRANSPORT_RANK[self]


_TRANSPORT_RANK = {Transport.INPROC: 0, Transport.IPC: 1, Transport.TCP: 2}


@dataclass(frozen=True)
class ExternalEndpoint:
    """An endpoint outside the topology, as written under a socket's ``external:``: the
    socket binds it for peers topo does not start (``binds``), or connects out to it."""

    address: str
    binds: bool
    pos: Pos


@dataclass(frozen=True)
class SocketSpec:
    name: str
    type: SocketType
    pos: Pos
    subscribe: tuple[str, ...] = ()
    bind: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: ``external:``: endpoints outside the topology (plain, never gated on).
    external: tuple[ExternalEndpoint, ...] = ()
    #: Where each written key's value is, for messages that point at it.
    at: Mapping[str, Pos] = field(default_factory=dict)

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    run: str
    pos: Pos
    sockets: Mapping[str, SocketSpec] = field(default_factory=dict)
    process: str | None = None
    host: str | None = None
    replicas: int = 1
    args: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    restart: Restart = Restart.NO
    on_exit: OnExit = OnExit.CONTINUE
    #: More restarts than this within ``restart_window`` seconds: the node is flapping,
    #: topo gives up on it and the run fails.
    max_restarts: int = 5
    restart_window: float = 60.0
    at: Mapping[str, Pos] = field(default_factory=dict)
    #: ``exec: [program, arg, ...]``: a program in any language instead of ``run:``
    #: (:mod:`topo.file.execnodes`); empty for a Python node.
    exec: tuple[str, ...] = ()
    #: ``ready:`` of an exec node (:class:`Ready`); None when not written.
    ready: "Ready | None" = None
    #: ``hosts: all`` as written (``("all",)``); once an allocation is resolved
    #: (:mod:`topo.file.allocation`), the hosts its instances take in turn.
    hosts: tuple[str, ...] = ()
    #: ``watchdog:`` of an exec node: seconds between the program's ``WATCHDOG=1``; None: none.
    watchdog: float | None = None

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)


class Ready(str, Enum):
    """When an exec node counts as ready: once started, or once it says ``READY=1`` on
    ``NOTIFY_SOCKET`` (systemd's sd_notify protocol)."""

    STARTED = "started"
    NOTIFY = "notify"


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    pos: Pos
    launch: tuple[str, ...] | None = None
    python: str | None = None
    at: Mapping[str, Pos] = field(default_factory=dict)

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)


@dataclass(frozen=True)
class AllocationSpec:
    """``hosts: {from: slurm}``: the hosts are the nodes of the allocation ``topo up`` runs
    in, known only then (:mod:`topo.file.allocation`)."""

    kind: str
    pos: Pos
    python: str | None = None
    at: Mapping[str, Pos] = field(default_factory=dict)
    #: ``interface:``: the nodes' addresses are theirs on it, read on each node.
    interface: str | None = None
    #: Once resolved: the job, its nodes in Slurm's order, and whether they are stand-ins
    #: (not inside an allocation: ``topo check`` and ``topo plan`` still show a placement).
    job: str = ""
    nodes: tuple[str, ...] = ()
    stand_in: bool = False

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)


@dataclass(frozen=True)
class SocketRef:
    """``NODE.SOCKET`` as written in a link."""

    node: str
    socket: str

    def __str__(self) -> str:
        return f"{self.node}.{self.socket}"


@dataclass(frozen=True)
class LinkSpec:
    src: SocketRef
    dst: SocketRef
    pos: Pos
    transport: Transport | None = None
    #: ``curve:`` as written: None follows the file's ``security.curve``.
    curve: bool | None = None
    src_pos: Pos | None = None
    dst_pos: Pos | None = None
    at: Mapping[str, Pos] = field(default_factory=dict)

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)


#: In :attr:`Topology.broken`: the file's links could not be read (``links:`` misspelt, or
#: not a list), so no socket is reported as having no link: the first mistake is the one.
LINKS_UNREAD = "<links>"


@dataclass(frozen=True)
class Topology:
    name: str
    file: str
    pos: Pos
    nodes: Mapping[str, NodeSpec] = field(default_factory=dict)
    hosts: Mapping[str, HostSpec] = field(default_factory=dict)
    links: tuple[LinkSpec, ...] = ()
    #: ``security.curve``: tcp links are CURVE unless a link says otherwise.
    curve: bool = True
    #: ``security.max_message``: the frame bound of endpoints served with CURVE.
    max_message: int = DEFAULT_MAX_MESSAGE
    #: ``python_path:``, each directory absolute (resolved against the file's directory):
    #: put first on every local node process's ``sys.path``.
    python_path: tuple[str, ...] = ()
    #: ``node`` or ``node.socket`` names whose definition was itself invalid: later rules
    #: skip them so one mistake is reported once, not again by every rule that touches it.
    broken: frozenset[str] = field(default_factory=frozenset)
    at: Mapping[str, Pos] = field(default_factory=dict)
    #: The files merged over ``file``, in order (``topo up FILE -f OVERLAY``).
    overlays: tuple[str, ...] = ()
    #: ``node.socket`` → the node at the other end of a link of the file that was
    #: dropped with that node (its profile not selected, or ``!reset``).
    unlinked_by: Mapping[str, str] = field(default_factory=dict)
    #: What :func:`topo.file.validate.load` found that does not stop a run (severity
    #: warning), in file order: the commands print them, ``--strict`` refuses the file.
    warnings: tuple[Problem, ...] = ()
    #: ``hosts: {from: slurm}`` (:class:`AllocationSpec`); None for hosts written out.
    allocation: AllocationSpec | None = None

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)

    @property
    def default_host(self) -> str:
        """The host a node without ``host:`` runs on: ``local``, or the only host."""
        if "local" in self.hosts or not self.hosts:
            return "local"
        if len(self.hosts) == 1:
            return next(iter(self.hosts))
        return "local"
