"""Rules that relate parts of a topology to each other; structure is the schema's job.

Each rule appends located problems and never stops at the first, and rules skip names the
loader already marked broken, so a single typo is reported once. Some rules find what can
run but likely not as meant: they add warnings (:func:`topo.file.diagnostics.warning`),
which ``--strict`` makes errors.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections import defaultdict
from dataclasses import replace
from typing import Iterable, Mapping

from topo.errors import Pos, Problem
from topo.file import allocation, execnodes, external
from topo.file.diagnostics import settle, strict_default, warning
from topo.file.sources import Resolved, Sources, read
from topo.file.model import LINKS_UNREAD, VALID_PAIRS, LinkSpec, SocketRef, SocketSpec, SocketType, Topology, Transport
from topo.file.placement import Placed, natural_transport, place
from topo.file.structure import did_you_mean


def load(path: str | Sources, *, strict: bool | None = None, lenient: bool = False) -> Topology:
    """The validated topology of a file (or of a file with overlays, ``--set`` values and
    profiles: :class:`topo.file.sources.Sources`), its warnings in ``warnings``; or
    :class:`topo.errors.InvalidTopology` with every problem, each with its source line.
    ``strict`` (default: ``TOPO_STRICT``): a warning is an error. ``lenient``: a socket
    with no link is a warning (:func:`unlinked`)."""
    topology = resolve(path, strict=strict, lenient=lenient).topology
    assert topology is not None  # resolve raised otherwise
    return topology


def resolve(path: str | Sources, *, strict: bool | None = None, lenient: bool = False) -> Resolved:
    """:func:`load`, with the plain values the model was read from (``topo config``)."""
    resolved = read(Sources((path,)) if isinstance(path, str) else path)
    problems = resolved.problems
    if resolved.topology is not None:
        placed, placing = allocation.resolve(resolved.topology)  # hosts: {from: slurm} written out
        resolved = replace(resolved, topology=placed)
        problems.extend(placing)
        problems.extend(validate(placed))
    topology = settle(resolved.topology, problems, resolved.texts, strict_default() if strict is None else strict,
                      lenient)
    return replace(resolved, topology=topology)


def validate(t: Topology) -> list[Problem]:
    problems: list[Problem] = []
    _hosts(t, problems)
    _processes(t, problems)
    _sockets(t, problems)
    external.check(t, problems)
    execnodes.check(t, problems)
    good_links = _links(t, problems)
    execnodes.check_links(t, good_links, problems)
    _link_counts(t, good_links, problems)
    _binding(t, good_links, problems)
    if not _size(t, good_links, problems):  # before anything expands the replicas
        _transports(t, good_links, problems)
    return problems


#: A run's size: instances in all, and connections a link makes (its two ends' replicas
#: multiplied). Planning a link costs in proportion to the second, so a few bytes of YAML
#: (``replicas: 1000`` at both ends of one link) would cost minutes and gigabytes.
#: ``TOPO_MAX_INSTANCES`` and ``TOPO_MAX_LINK_PAIRS`` raise them, for the user who runs topo
#: (not the file's author).
MAX_INSTANCES = 20_000
MAX_LINK_PAIRS = 100_000


def _limit(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _size(t: Topology, links: Iterable[LinkSpec], problems: list[Problem]) -> bool:
    """True when the topology is too big to plan (each excess reported where it is)."""
    most, pairs_most = _limit("TOPO_MAX_INSTANCES", MAX_INSTANCES), _limit("TOPO_MAX_LINK_PAIRS", MAX_LINK_PAIRS)
    found = False
    total = 0
    for node in t.nodes.values():
        total += node.replicas
        if total > most:
            problems.append(Problem(node.where("replicas"), f"the topology has more than {most} instances with node {node.name!r} ({total} so far): the most topo plans (TOPO_MAX_INSTANCES raises it)"))
            found = True
            break
    for link in links:
        pairs = t.nodes[link.src.node].replicas * t.nodes[link.dst.node].replicas
        if pairs > pairs_most:
            problems.append(Problem(link.pos, f"link {link.src} -> {link.dst} makes {pairs} connections ({t.nodes[link.src.node].replicas} x {t.nodes[link.dst.node].replicas} replicas), more than {pairs_most} (TOPO_MAX_LINK_PAIRS raises it)"))
            found = True
    return found


#: Names topo uses itself: its own output prefix and log file.
RESERVED_NODE_NAMES = frozenset({"topo"})


def _hosts(t: Topology, problems: list[Problem]) -> None:
    for host in t.hosts.values():
        if not valid_address(host.address):
            problems.append(Problem(host.where("address"), f"hosts.{host.name}.address: {host.address!r} is not an IP address or a host name"))
    for node in t.nodes.values():
        if node.name in RESERVED_NODE_NAMES:
            problems.append(Problem(node.pos, f"node name {node.name!r} is reserved by topo (its own messages and logs use it): choose another"))
        if not node.run and not node.exec and node.name not in t.broken:  # `run` may come from `defaults`
            problems.append(Problem(node.pos, f"nodes.{node.name}: missing required key 'run' (a Python function) or 'exec' (a program)"))
        if node.host is not None and node.host not in t.hosts:
            problems.append(Problem(node.where("host"), f"node {node.name!r}: no host named {node.host!r}{did_you_mean(node.host, t.hosts)}"))
        elif node.host is None and t.default_host not in t.hosts and node.name not in t.broken:
            problems.append(Problem(node.pos, f"node {node.name!r} needs `host:`: there are several hosts and none is named 'local'"))


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def valid_address(address: str) -> bool:
    """An IP address (v4, v6) or a host name (RFC 1123 labels). The address is dialled and
    bound, and ``ssh ADDRESS`` is the default launch: text starting with '-' would be read
    as one of ssh's options (``-oProxyCommand=...`` runs a command here)."""
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        pass
    name = address[:-1] if address.endswith(".") else address
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def _processes(t: Topology, problems: list[Problem]) -> None:
    """Nodes sharing a process must agree on the host and on environment variables."""
    members: dict[str, list[str]] = defaultdict(list)
    for node in t.nodes.values():
        if node.process is not None:
            members[node.process].append(node.name)
    for node in t.nodes.values():
        if node.process is None and node.replicas == 1 and node.name in members:
            problems.append(Problem(node.pos, f"node {node.name!r} has no `process:`, so its own process is named {node.name!r}, but nodes {', '.join(members[node.name])} name a process {node.name!r}: give it `process: {node.name}` to join them, or rename the process"))
    for process, names in members.items():
        first = t.nodes[names[0]]
        env: dict[str, tuple[str, str]] = {}
        for name in names:
            node = t.nodes[name]
            host = node.host or t.default_host
            if host != (first.host or t.default_host):
                problems.append(Problem(node.where("host"), f"node {name!r} is in process {process!r} with {first.name!r}, which runs on host {first.host or t.default_host!r}, not {host!r}: a process runs on one host"))
            for key, value in node.env.items():
                if key in env and env[key][1] != value:
                    # the values are not shown: environment variables carry passwords
                    problems.append(Problem(node.where("env"), f"node {name!r} and node {env[key][0]!r} set {key} to different values, and both run in process {process!r}: one process has one environment"))
                env.setdefault(key, (name, value))


_OPTION_OWNERS = {"xpub": SocketType.XPUB, "xsub": SocketType.XSUB, "router": SocketType.ROUTER,
                  "req": SocketType.REQ}


def _sockets(t: Topology, problems: list[Problem]) -> None:
    for node in t.nodes.values():
        for sock in node.sockets.values():
            if f"{node.name}.{sock.name}" in t.broken:
                continue
            if "subscribe" in sock.at and sock.type is not SocketType.SUB:
                problems.append(Problem(sock.where("subscribe"), f"{node.name}.{sock.name}: `subscribe` is for SUB sockets, and this one is {sock.type.value}" + (" (an XSUB subscribes by sending messages from the node's code)" if sock.type is SocketType.XSUB else "")))
            for option in sock.options:
                owner = _OPTION_OWNERS.get(option.split("_", 1)[0])
                # a declared PUB is an XPUB underneath; NODROP touches no subscription
                pub_ok = option == "xpub_nodrop" and sock.type is SocketType.PUB
                if owner is not None and sock.type is not owner and not pub_ok:
                    problems.append(Problem(sock.where("options"), f"{node.name}.{sock.name}: option {option!r} is for {owner.value} sockets, and this one is {sock.type.value}" + (" (a declared PUB's subscriptions are topo's business)" if sock.type is SocketType.PUB else "")))
            if sock.type is SocketType.SUB and not sock.subscribe:
                problems.append(_subscribes_to_nothing(node.name, sock))
            if sock.type is SocketType.PAIR and node.replicas > 1:
                problems.append(Problem(node.where("replicas"), f"{node.name}.{sock.name}: a PAIR socket has exactly one peer, so its node cannot have replicas"))


def _subscribes_to_nothing(node: str, sock: SocketSpec) -> Problem:
    """A SUB without topics receives nothing, without a word from ZeroMQ: the classic trap.
    It may be meant (the node's code subscribes), so it is a warning."""
    if "subscribe" in sock.at:
        return warning(sock.where("subscribe"), f"SUB socket {node}.{sock.name} subscribes to nothing (`subscribe: []`): it receives no message unless the node's code subscribes; `subscribe: \"\"` receives everything")
    return warning(sock.pos, f"SUB socket {node}.{sock.name} has no `subscribe:`, so it subscribes to nothing: it receives no message unless the node's code subscribes; `subscribe: \"\"` receives everything")


def _resolve(t: Topology, ref: SocketRef, pos: Pos, problems: list[Problem]) -> SocketSpec | None:
    node = t.nodes.get(ref.node)
    if node is None:
        problems.append(Problem(pos, f"link names node {ref.node!r}, which does not exist{did_you_mean(ref.node, t.nodes)}"))
        return None
    sock = node.sockets.get(ref.socket)
    if sock is None:
        if ref.node not in t.broken:
            problems.append(Problem(pos, f"link names socket {ref.socket!r} of node {ref.node!r}, which has no such socket{did_you_mean(ref.socket, node.sockets)}"))
        return None
    if str(ref) in t.broken:
        return None
    return sock


def _links(t: Topology, problems: list[Problem]) -> list[LinkSpec]:
    """Problems of each link on its own; returns the links the later rules can trust."""
    good: list[LinkSpec] = []
    seen: dict[tuple[SocketRef, SocketRef], LinkSpec] = {}
    for link in t.links:
        src = _resolve(t, link.src, link.src_pos or link.pos, problems)
        dst = _resolve(t, link.dst, link.dst_pos or link.pos, problems)
        if src is None or dst is None:
            continue
        if link.src == link.dst:
            problems.append(Problem(link.pos, f"link {link.src} -> {link.dst} links a socket to itself: link it to another socket"))
            continue
        key = (link.src, link.dst)
        if key in seen:
            problems.append(Problem(link.pos, f"link {link.src} -> {link.dst} is written twice (first on line {seen[key].pos.line})"))
            continue
        seen[key] = link
        if dst.type not in VALID_PAIRS.get(src.type, frozenset()):
            problems.append(Problem(link.pos, _pair_message(link, src.type, dst.type)))
            continue
        good.append(link)
    return good


def _pair_message(link: LinkSpec, a: SocketType, b: SocketType) -> str:
    base = f"link {link.src} -> {link.dst}: {a.value} -> {b.value} is not a valid pair"
    if a in VALID_PAIRS.get(b, frozenset()):
        return f"{base}; links go from sender to receiver and from client to server: write {link.dst} -> {link.src}"
    targets = VALID_PAIRS.get(a)
    if targets:
        return f"{base}; a {a.value} links to {' or '.join(sorted(x.value for x in targets))}"
    senders = sorted(x.value for x, ys in VALID_PAIRS.items() if a in ys)
    return f"{base}; a {a.value} receives links from {' or '.join(senders)}"


def _link_counts(t: Topology, links: Iterable[LinkSpec], problems: list[Problem]) -> None:
    used: dict[str, int] = defaultdict(int)
    for link in t.links:
        used[str(link.src)] += 1
        used[str(link.dst)] += 1
    for node in t.nodes.values():
        for sock in node.sockets.values():
            ref = f"{node.name}.{sock.name}"
            if ref in t.broken:
                continue
            if used[ref] == 0:
                problem = unlinked(t, ref, sock)
                if problem is not None:
                    problems.append(problem)
            elif sock.type is SocketType.PAIR and used[ref] > 1:
                problems.append(Problem(sock.pos, f"PAIR socket {ref} has {used[ref]} links; a PAIR has exactly one"))
            elif sock.type is SocketType.PAIR and used[ref] + len(sock.external) > 1:
                problems.append(Problem(sock.pos, f"PAIR socket {ref} has {used[ref]} link(s) and {len(sock.external)} external endpoint(s); a PAIR has exactly one peer"))


def unlinked(t: Topology, ref: str, sock: SocketSpec) -> Problem | None:
    """What a socket no link names is: the one place that says it.

    An error, as a socket without a peer is most often a forgotten link (``--lenient``
    shows it as a warning while a file is edited: a link commented out). A warning when
    the file's links to it went with a node left out by a profile or a ``!reset``: the
    selection is meant. Nothing when it has external endpoints (its peers are outside)
    or when the file's links could not be read at all (that mistake is reported, not its
    every consequence). A socket left without a link is created and connected to nothing.
    """
    if LINKS_UNREAD in t.broken or "external" in sock.at:
        return None
    what = f"socket {ref} ({sock.type.value}) has no link"
    gone = t.unlinked_by.get(ref)
    if gone is not None:
        return warning(sock.pos, f"{what} in this selection: its links go to {gone}, which is left out "
                                 "(a profile not selected, or !reset); it is created and connected to nothing")
    return Problem(sock.pos, f"{what}: add one under `links:` or remove the socket", lenient=True)


def _binding(t: Topology, links: Iterable[LinkSpec], problems: list[Problem]) -> None:
    for link in links:
        a = t.nodes[link.src.node].sockets[link.src.socket]
        b = t.nodes[link.dst.node].sockets[link.dst.socket]
        if a.bind is not None and a.bind == b.bind:
            what = "bind" if a.bind else "connect"
            problems.append(Problem(link.pos, f"link {link.src} -> {link.dst}: both ends are set to {what} (`bind: {str(a.bind).lower()}`); one end must bind and the other connect"))


def _transports(t: Topology, links: Iterable[LinkSpec], problems: list[Problem]) -> None:
    placed = place(t)
    for link in links:
        hosts = _hosts_of(t, placed, (link.src.node, link.dst.node))
        if link.curve and link.transport is not Transport.TCP and len(hosts) == 1:
            problems.append(Problem(link.where("curve"), f"link {link.src} -> {link.dst}: `curve: true` on a link that is not tcp (both ends run on host {hosts.pop()!r}); CURVE protects tcp links only: add `transport: tcp`, or remove `curve`"))
        if link.transport is None or link.src.node not in placed or link.dst.node not in placed:
            continue
        pairs = ((a, b) for a in placed[link.src.node] for b in placed[link.dst.node])
        for a, b in pairs:
            needed = natural_transport(a, b)
            if link.transport.rank < needed.rank:
                problems.append(Problem(link.where("transport"), f"link {link.src} -> {link.dst}: transport {link.transport.value} is too narrow: {a.name} runs in process {a.process!r} on host {a.host!r} and {b.name} in process {b.process!r} on host {b.host!r}, which needs {needed.value} or wider"))
                break


def _hosts_of(t: Topology, placed: Mapping[str, list[Placed]], nodes: Iterable[str]) -> set[str]:
    """Every host the instances of ``nodes`` run on (a node spread over an allocation's
    hosts, ``hosts: all``, runs on several); empty if a node is unknown."""
    hosts: set[str] = set()
    for node in nodes:
        if node not in t.nodes:
            return set()
        hosts |= {p.host for p in placed[node]} if placed.get(node) else {_host(t, node)}
    return hosts


def _host(t: Topology, node: str) -> str:
    return t.nodes[node].host or t.default_host
