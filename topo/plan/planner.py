"""The plan: a validated topology turned into plain data the supervisor and runtimes follow.

Pure: no zmq, no processes, no clock. Everything a run needs to know before it starts is
decided here and can be printed (``topo plan``) and tested without launching anything.

Which end of a link binds: :mod:`topo.plan.binding`.

Endpoints: inproc names come from topology/instance/socket; ipc files are numbered inside
the run's private directory (``{run_dir}`` below; the supervisor keeps it short) so any
name fits the 107-byte socket path limit; tcp binds on the binding host's address with the
port left to the kernel (``:*``) and sent to the connecting side at run time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from topo.file.model import OnExit, Ready, Restart, SocketType, Topology, Transport
from topo.file.placement import Placed, natural_transport, place
from topo.plan.binding import link_counts, src_binds
from topo.plan.execplan import exec_waits, waits_for
from topo.plan.inject import needs_endpoint
from topo.plan.share import (RUN_DIR, EndpointShare, InstanceShare, PeerShare, ProcessShare,
                             SocketShare)

#: ipc file names stay within this many bytes; the supervisor's run directory within
#: :data:`MAX_RUN_DIR`, so the path always fits ``sockaddr_un`` (107 bytes + NUL).
MAX_IPC_NAME = 32
MAX_RUN_DIR = 107 - 1 - MAX_IPC_NAME

#: Sockets that receive (or serve) start first, so senders find them already there.
RECEIVERS = frozenset({SocketType.SUB, SocketType.XSUB, SocketType.PULL, SocketType.REP, SocketType.ROUTER})


@dataclass(frozen=True)
class Endpoint:
    """One address a socket binds. ``address`` may hold ``{run_dir}`` or a ``:*`` port."""

    key: str
    transport: Transport
    address: str
    instance: str
    socket: str
    #: The host of the binding instance (whose public key a dialer must know).
    host: str = ""
    #: A tcp endpoint with CURVE (every one unless the file says ``curve: false``): encrypted,
    #: only the run's keys admitted.
    secure: bool = False
    #: A secure endpoint's frame bound (bytes, the file's ``security.max_message``); 0 for
    #: the others, which topo leaves unbounded (a socket's own ``maxmsgsize`` applies).
    max_message: int = 0


@dataclass(frozen=True)
class Peer:
    """The other end of one link, as one socket sees it."""

    instance: str
    socket: str
    type: SocketType
    #: The peer's subscriptions (for a PUB whose peer is a SUB: what the gate waits for).
    subscribe: tuple[str, ...]
    endpoint: str
    binds: bool
    #: Whether the socket's gate waits for this link: not when the peer is an exec node
    #: that starts only once this instance is ready (:mod:`topo.plan.execplan`).
    wait: bool = True


@dataclass(frozen=True)
class PlannedSocket:
    name: str
    type: SocketType
    subscribe: tuple[str, ...]
    options: Mapping[str, Any]
    binds: tuple[str, ...]
    connects: tuple[str, ...]
    peers: tuple[Peer, ...]
    #: Endpoints outside the topology (``external:``), as written: never in
    #: :attr:`Plan.endpoints` (nobody waits for them), always plain.
    external_binds: tuple[str, ...] = ()
    external_connects: tuple[str, ...] = ()
    #: Its injection endpoint (an ipc address in ``{run_dir}``; :mod:`topo.plan.inject`),
    #: or "" when ``topo send`` dials an endpoint it binds anyway, or cannot inject.
    inject: str = ""


@dataclass(frozen=True)
class Instance:
    name: str
    node: str
    replica: int
    run: str
    process: str
    host: str
    args: Mapping[str, Any]
    restart: Restart
    on_exit: OnExit
    max_restarts: int
    restart_window: float
    #: How many instances the node has (``node.replicas``).
    replicas: int
    sockets: tuple[PlannedSocket, ...]
    #: Where the node's ``run:`` is written (``FILE:LINE:COL``): named once when its code
    #: cannot be imported.
    run_at: str = ""
    #: The node's own ``env:`` (its process's :attr:`Process.env` merges its nodes'): what
    #: ``topo apply`` compares to say which node's environment changed.
    env: Mapping[str, str] = field(default_factory=dict)
    #: An exec node's program and arguments as written (placeholders unexpanded:
    #: :func:`topo.plan.execenv.expand_args`); empty for a Python node.
    exec: tuple[str, ...] = ()
    #: An exec node's ``ready:`` (``started`` or ``notify``); "" for a Python node.
    ready: str = ""
    #: An exec node's ``watchdog:`` in seconds; 0: none.
    watchdog: float = 0.0


@dataclass(frozen=True)
class Process:
    name: str
    host: str
    instances: tuple[str, ...]
    env: Mapping[str, str]


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    launch: tuple[str, ...] | None
    python: str | None


@dataclass(frozen=True)
class PlannedLink:
    src: str
    dst: str
    src_instance: str
    dst_instance: str
    transport: Transport
    endpoint: str
    bind: str
    bind_instance: str
    #: Its endpoint is CURVE-encrypted (see :attr:`Endpoint.secure`).
    secure: bool = False


@dataclass(frozen=True)
class Plan:
    topology: str
    file: str
    hosts: tuple[Host, ...]
    #: In start order: processes holding receivers first.
    processes: tuple[Process, ...]
    instances: Mapping[str, Instance]
    links: tuple[PlannedLink, ...]
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    #: The file's ``python_path:``, absolute: first on each node process's ``sys.path``.
    python_path: tuple[str, ...] = ()
    #: The files merged over ``file`` (:attr:`topo.file.model.Topology.overlays`).
    overlays: tuple[str, ...] = ()

    def for_host(self, name: str) -> Plan:
        """What an agent needs: its host's processes and everything they reference."""
        processes = tuple(p for p in self.processes if p.host == name)
        instances = {i: self.instances[i] for p in processes for i in p.instances}
        keys = {k for inst in instances.values() for s in inst.sockets for k in (*s.binds, *s.connects)}
        return Plan(self.topology, self.file, tuple(h for h in self.hosts if h.name == name), processes,
                    instances, (), {k: self.endpoints[k] for k in keys}, self.python_path)

    @property
    def remote_hosts(self) -> tuple[Host, ...]:
        """Hosts other than the local one that run at least one process."""
        used = {p.host for p in self.processes} - {self.local_host}
        return tuple(h for h in self.hosts if h.name in used)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    @property
    def key_hosts(self) -> tuple[str, ...]:
        """The hosts that get CURVE keys for this run: the local one and every host running
        a process, when some link is CURVE or some host is another (its agent's channel is
        CURVE); none otherwise, and no key is made."""
        if not self.remote_hosts and not any(e.secure for e in self.endpoints.values()):
            return ()
        return tuple(sorted({self.local_host, *(p.host for p in self.processes)}))

    @property
    def local_host(self) -> str:
        """The host ``topo up`` runs on: ``local``, or the only host there is."""
        names = [h.name for h in self.hosts]
        return "local" if "local" in names or len(names) != 1 else names[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "file": self.file,
            **({"overlays": list(self.overlays)} if self.overlays else {}),
            "hosts": [
                {"name": h.name, "address": h.address, "launch": list(h.launch) if h.launch else None}
                for h in self.hosts
            ],
            "processes": [
                {"name": p.name, "host": p.host, "nodes": list(p.instances), "env": dict(p.env)}
                for p in self.processes
            ],
            "nodes": [
                {
                    "name": i.name, "node": i.node, "replica": i.replica, "run": i.run,
                    **({"exec": list(i.exec), "ready": i.ready} if i.exec else {}),
                    **({"watchdog": i.watchdog} if i.watchdog else {}),
                    "process": i.process, "host": i.host, "restart": i.restart.value,
                    "on_exit": i.on_exit.value,
                    "sockets": [
                        {
                            "name": s.name, "type": s.type.value, "subscribe": list(s.subscribe),
                            "bind": [self.endpoints[k].address for k in s.binds],
                            "connect": [self.endpoints[k].address for k in s.connects],
                            **({"external": {"bind": list(s.external_binds), "connect": list(s.external_connects),
                                             "secure": False}}
                               if s.external_binds or s.external_connects else {}),
                        }
                        for s in i.sockets
                    ],
                }
                for i in self.instances.values()
            ],
            "links": [
                {
                    "from": ln.src, "to": ln.dst, "transport": ln.transport.value,
                    "endpoint": ln.endpoint, "bind": ln.bind,
                    "from_instance": ln.src_instance, "to_instance": ln.dst_instance,
                    "bind_instance": ln.bind_instance, "secure": ln.secure,
                }
                for ln in self.links
            ],
        }


def make_plan(t: Topology, keep_binds: Mapping[str, bool] | None = None) -> Plan:
    """The plan of a topology that :func:`topo.file.validate.validate` found no problem in.

    ``keep_binds``: for a live run being edited (``topo apply``), which end of each of its
    links (``NODE.SOCKET -> NODE.SOCKET``) binds, True for the ``from`` end: kept unless a
    ``bind:`` decides, so that a link added elsewhere does not flip, by rule 2's counts,
    the binding end of links that are already connected."""
    placed = place(t)
    counts = link_counts(t, placed)
    endpoints: dict[str, Endpoint] = {}
    ipc_files: list[str] = []  # ipc endpoint keys in order: numbers them without a rescan
    links: list[PlannedLink] = []
    secure: set[str] = set()
    link_keys: list[str] = []  # each planned link's endpoint
    binds: dict[tuple[str, str], list[str]] = defaultdict(list)
    connects: dict[tuple[str, str], list[str]] = defaultdict(list)
    peers: dict[tuple[str, str], list[Peer]] = defaultdict(list)
    for link in t.links:
        up_binds = src_binds(t, link, counts, keep_binds or {})
        for a in placed[link.src.node]:
            for b in placed[link.dst.node]:
                transport = max(natural_transport(a, b), link.transport or Transport.INPROC, key=lambda x: x.rank)
                binder, dialer = (a, b) if up_binds else (b, a)
                bsock = link.src.socket if up_binds else link.dst.socket
                dsock = link.dst.socket if up_binds else link.src.socket
                ep = _endpoint(t, endpoints, binder, bsock, transport, ipc_files)
                if ep.key not in binds[(binder.name, bsock)]:
                    binds[(binder.name, bsock)].append(ep.key)
                if transport is Transport.TCP and (t.curve if link.curve is None else link.curve):
                    secure.add(ep.key)  # one link that wants CURVE makes its endpoint CURVE
                link_keys.append(ep.key)
                if ep.key not in connects[(dialer.name, dsock)]:
                    connects[(dialer.name, dsock)].append(ep.key)
                sa = t.nodes[a.node].sockets[link.src.socket]
                sb = t.nodes[b.node].sockets[link.dst.socket]
                peers[(a.name, sa.name)].append(Peer(b.name, sb.name, sb.type, sb.subscribe, ep.key, not up_binds))
                peers[(b.name, sb.name)].append(Peer(a.name, sa.name, sa.type, sa.subscribe, ep.key, up_binds))
                links.append(PlannedLink(
                    src=str(link.src), dst=str(link.dst), src_instance=f"{a.name}.{link.src.socket}",
                    dst_instance=f"{b.name}.{link.dst.socket}", transport=transport,
                    endpoint=ep.address, bind=str(link.src if up_binds else link.dst),
                    bind_instance=f"{binder.name}.{bsock}",
                ))
    for key in secure:
        endpoints[key] = replace(endpoints[key], secure=True, max_message=t.max_message)
    links = [replace(ln, secure=key in secure) for ln, key in zip(links, link_keys)]
    waits = exec_waits([n.name for n in t.nodes.values() if n.exec], {p.name: p.node for ps in placed.values() for p in ps},
                       [(ln.src_instance.rpartition(".")[0], ln.dst_instance.rpartition(".")[0]) for ln in links])
    instances: dict[str, Instance] = {}
    for node in t.nodes.values():
        for p in placed[node.name]:
            sockets = tuple(
                PlannedSocket(
                    name=s.name, type=s.type, subscribe=s.subscribe, options=dict(s.options),
                    binds=tuple(binds[(p.name, s.name)]), connects=tuple(connects[(p.name, s.name)]),
                    peers=tuple(replace(q, wait=False) if waits_for(waits, q.instance, p.name) else q
                                for q in peers[(p.name, s.name)]),
                    external_binds=tuple(e.address for e in s.external if e.binds),
                    external_connects=tuple(e.address for e in s.external if not e.binds),
                    inject=_ipc_address(f"inject-{p.name}.{s.name}", ipc_files) if needs_endpoint(
                        s.type, [(endpoints[k].transport, endpoints[k].secure) for k in binds[(p.name, s.name)]],
                        [e.address for e in s.external if e.binds]) else "",
                )
                for s in node.sockets.values()
            )
            instances[p.name] = Instance(
                name=p.name, node=node.name, replica=p.replica, run=node.run, process=p.process,
                host=p.host, args=dict(node.args), restart=node.restart, on_exit=node.on_exit,
                max_restarts=node.max_restarts, restart_window=node.restart_window,
                replicas=node.replicas,
                sockets=sockets, run_at=str(node.where("run")), env=dict(node.env),
                exec=node.exec, ready=(node.ready or Ready.STARTED).value if node.exec else "",
                watchdog=node.watchdog or 0.0 if node.exec else 0.0,
            )
    return Plan(
        topology=t.name, file=t.file,
        hosts=tuple(Host(h.name, h.address, h.launch, h.python) for h in t.hosts.values()),
        processes=_processes(t, placed, instances), instances=instances,
        links=tuple(links), endpoints=endpoints, python_path=t.python_path, overlays=t.overlays,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _endpoint(t: Topology, endpoints: dict[str, Endpoint], binder: Placed, socket: str, transport: Transport, ipc_files: list[str]) -> Endpoint:
    key = f"{binder.name}.{socket}/{transport.value}"
    if key in endpoints:
        return endpoints[key]
    if transport is Transport.INPROC:
        address = f"inproc://{t.name}/{binder.name}/{socket}"
    elif transport is Transport.IPC:
        address = _ipc_address(f"{binder.name}.{socket}", ipc_files)
    else:
        host = t.hosts[binder.host].address
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address
        address = f"tcp://{host}:*"
    endpoints[key] = Endpoint(key, transport, address, binder.name, socket, binder.host)
    return endpoints[key]


def _ipc_address(what: str, ipc_files: list[str]) -> str:
    """The next numbered ipc file of the run's directory, named after ``what`` as far as
    :data:`MAX_IPC_NAME` allows (the number alone keeps it unique)."""
    number = len(ipc_files)
    ipc_files.append(what)
    name = f"{number}-{_UNSAFE.sub('_', what)}"[:MAX_IPC_NAME - 5] + ".sock"
    return f"ipc://{RUN_DIR}/{name}"


def _processes(t: Topology, placed: Mapping[str, list[Placed]], instances: Mapping[str, Instance]) -> tuple[Process, ...]:
    members: dict[str, list[str]] = defaultdict(list)
    host: dict[str, str] = {}
    env: dict[str, dict[str, str]] = defaultdict(dict)
    for node in t.nodes.values():
        for p in placed[node.name]:
            members[p.process].append(p.name)
            host[p.process] = p.host
            env[p.process].update(node.env)

    def receives(process: str) -> bool:
        return any(s.type in RECEIVERS for i in members[process] for s in instances[i].sockets)

    order = sorted(members, key=lambda name: not receives(name))
    return tuple(Process(name, host[name], tuple(members[name]), env[name]) for name in order)


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
                        tuple(PeerShare(p.instance, p.socket, p.type.value, tuple(p.subscribe), p.endpoint, p.binds,
                                        p.wait)
                              for p in s.peers),
                        s.external_binds, s.external_connects, s.inject)
            for s in inst.sockets
        )
        instances[name] = InstanceShare(inst.name, inst.node, inst.replica, inst.replicas, inst.run,
                                        dict(inst.args), sockets)
        keys.update(k for s in inst.sockets for k in (*s.binds, *s.connects))
    endpoints = {
        k: EndpointShare(e.key, e.transport.value, e.address, e.instance, e.socket, e.host, e.secure,
                         e.max_message)
        for k, e in plan.endpoints.items() if k in keys
    }
    return ProcessShare(plan.topology, proc.name, proc.host, dict(proc.env), instances, endpoints)
