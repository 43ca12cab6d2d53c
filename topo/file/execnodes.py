"""Nodes in any language: ``exec: [program, arg, ...]`` instead of ``run:``.

An exec node is a program topo starts and hands its wiring in the environment
(:mod:`topo.plan.execenv` computes it). What can be known of one from the file alone is
checked here, each problem located like any other: ``run:`` and ``exec:`` together,
``ready:`` on a Python node, an exec node grouped in a ``process:`` with others (a program
is a process of its own), ``{sockets.NAME}`` placeholders naming no socket, two sockets
whose plain variables would have the same name; and the start order among exec nodes
(each waits for the receivers of its links), with a warning for a cycle of senders.
Whether the program exists is a question about this machine: :func:`check_programs`.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Iterable, Mapping

from topo.errors import Problem
from topo.file.diagnostics import warning
from topo.file.model import LinkSpec, NodeSpec, Topology, Transport

#: ``{sockets.NAME}``, ``{sockets.NAME.bind}``, ``{sockets.NAME.connect}``, ``{sockets.NAME.type}``.
PLACEHOLDER = re.compile(r"\{sockets\.([A-Za-z_][A-Za-z0-9_-]*)(?:\.(bind|connect|type))?\}")
#: Anything that starts like a placeholder: each must be a whole, valid one.
_OPENING = re.compile(r"\{sockets\.[^}]*\}?")
#: The prefix of the plain variables of one socket: ``TOPO_SOCKET_<NAME>_TYPE`` ...
SOCKET_VAR_PREFIX = "TOPO_SOCKET_"


def socket_var(name: str) -> str:
    """The stem of a socket's plain variables: its name upper-cased, each '-' as '_' (the
    only character of a socket name a shell variable cannot hold)."""
    return SOCKET_VAR_PREFIX + name.upper().replace("-", "_")


def placeholders(arg: str) -> list[tuple[int, str | None, str | None]]:
    """Each ``{sockets...}`` in one argument: (column offset, socket name, part), the name
    None when the text is not a valid placeholder."""
    out: list[tuple[int, str | None, str | None]] = []
    for m in _OPENING.finditer(arg):
        whole = PLACEHOLDER.fullmatch(m.group(0))
        out.append((m.start(), whole.group(1), whole.group(2)) if whole else (m.start(), None, None))
    return out


def check(t: Topology, problems: list[Problem]) -> None:
    """The file-only rules of exec nodes (see the module's docstring)."""
    members: dict[str, list[str]] = {}
    for node in t.nodes.values():
        if node.process is not None:
            members.setdefault(node.process, []).append(node.name)
    for node in t.nodes.values():
        if node.name in t.broken:
            continue
        if "ready" in node.at and not node.exec:
            problems.append(Problem(node.where("ready"), f"node {node.name!r}: `ready:` is for exec nodes; a Python node is ready once its sockets are"))
        if "watchdog" in node.at and not node.exec:
            problems.append(Problem(node.where("watchdog"), f"node {node.name!r}: `watchdog:` is for exec nodes (a program that sends WATCHDOG=1 on NOTIFY_SOCKET)"))
        if not node.exec:
            continue
        if node.run:
            problems.append(Problem(node.where("exec"), f"node {node.name!r} has both `run:` (line {node.where('run').line}) and `exec:` (line {node.where('exec').line}): a node is Python code or a program, remove one"))
        if node.process is not None and len(members.get(node.process, ())) > 1:
            others = [n for n in members[node.process] if n != node.name]
            problems.append(Problem(node.where("process"), f"node {node.name!r} is an exec node, a program in a process of its own: it cannot share process {node.process!r} with {', '.join(others)}"))
        elif node.process is not None and node.replicas > 1:
            problems.append(Problem(node.where("process"), f"node {node.name!r} is an exec node with {node.replicas} replicas, each a program in a process of its own: remove `process:`"))
        _placeholders(node, problems)
        _variables(node, problems)


def _placeholders(node: NodeSpec, problems: list[Problem]) -> None:
    for i, arg in enumerate(node.exec):
        pos = node.at.get(f"exec[{i}]", node.where("exec"))
        for _, name, _part in placeholders(arg):
            if name is None:
                problems.append(Problem(pos, f"node {node.name!r}: exec argument {arg!r} has a placeholder that is not "
                                             "{sockets.NAME}, {sockets.NAME.bind}, {sockets.NAME.connect} or {sockets.NAME.type}"))
            elif name not in node.sockets:
                known = ", ".join(node.sockets) or "none"
                problems.append(Problem(pos, f"node {node.name!r}: exec argument {arg!r} names socket {name!r}, which the node does not declare (its sockets: {known})"))


def _variables(node: NodeSpec, problems: list[Problem]) -> None:
    seen: dict[str, str] = {}
    for sock in node.sockets.values():
        var = socket_var(sock.name)
        if var in seen:
            problems.append(Problem(sock.pos, f"node {node.name!r}: sockets {seen[var]!r} and {sock.name!r} would both be handed to the program as {var}_*: rename one"))
        seen.setdefault(var, sock.name)


def resolve_program(program: str, topology_file: str, path: str | None = None) -> str | None:
    """Where the program is, as a shell finds it: a name with a '/' is a path (relative to
    the topology file's directory), a bare name is looked up on ``PATH``. None: not found
    (or, for a bare name, nothing executable of that name on ``PATH``)."""
    if "/" in program:
        full = os.path.join(os.path.dirname(os.path.abspath(topology_file)), program)
        return os.path.normpath(full) if os.path.lexists(full) else None
    return shutil.which(program, path=path)


def check_programs(t: Topology, local: str, path: str | None = None) -> list[Problem]:
    """Each local exec node whose program is missing or not executable here, at its
    ``exec:`` value. Nodes on other hosts are not looked at: that host has its own files."""
    problems: list[Problem] = []
    for node in t.nodes.values():
        if not node.exec or node.name in t.broken or (node.host or t.default_host) != local:
            continue
        program = node.exec[0]
        pos = node.at.get("exec[0]", node.where("exec"))
        found = resolve_program(program, t.file, path)
        if found is None:
            where = "relative to the topology file's directory" if "/" in program else "on PATH"
            problems.append(Problem(pos, f"node {node.name!r}: program {program!r} not found ({where})"))
        elif os.path.isdir(found):
            problems.append(Problem(pos, f"node {node.name!r}: program {program!r} is a directory ({found})"))
        elif not os.access(found, os.X_OK):
            problems.append(Problem(pos, f"node {node.name!r}: program {program!r} is not executable ({found}): chmod +x it"))
    return problems


def sends_to(t: Topology, links: Iterable[LinkSpec] | None = None) -> dict[str, list[str]]:
    """Each exec node → the nodes it must wait for: the ``to`` end of each of its links
    (the receiver, or the server), in file order, each once."""
    out: dict[str, list[str]] = {n.name: [] for n in t.nodes.values() if n.exec}
    for link in t.links if links is None else links:
        if link.src.node in out and link.dst.node in t.nodes and link.dst.node != link.src.node \
                and link.dst.node not in out[link.src.node]:
            out[link.src.node].append(link.dst.node)
    return out


def start_order(waits: Mapping[str, list[str]]) -> tuple[list[str], list[list[str]], set[tuple[str, str]]]:
    """The order exec nodes start in (each after the exec nodes it sends to), the cycles
    found, and the waits dropped to break them: (order, cycles, dropped (sender, receiver)).
    A cycle is broken at its node written first in the file (``waits``' order): it
    starts without waiting for the others of the cycle."""
    remaining = [n for n in waits]
    order: list[str] = []
    cycles: list[list[str]] = []
    dropped: set[tuple[str, str]] = set()
    while remaining:
        started = set(order)
        free = [n for n in remaining if all(r in started or r not in waits for r in waits[n])]
        if free:
            order.extend(free)
            remaining = [n for n in remaining if n not in free]
            continue
        cycle = _cycle_from(remaining[0], waits, set(remaining))
        first = next(n for n in remaining if n in cycle)  # (remaining[0] may only wait on it)
        cycles.append(cycle[cycle.index(first):] + cycle[:cycle.index(first)])
        dropped.update((first, r) for r in waits[first] if r in waits and r not in started)
        order.append(first)
        remaining.remove(first)
    return order, cycles, dropped


def _cycle_from(start: str, waits: Mapping[str, list[str]], among: set[str]) -> list[str]:
    """A cycle through the stuck nodes, followed from ``start`` (every stuck node waits for
    another stuck node, so the walk comes back to a node it has seen)."""
    path: list[str] = [start]
    while True:
        nxt = next(r for r in waits[path[-1]] if r in among)
        if nxt in path:
            return path[path.index(nxt):]
        path.append(nxt)


def check_links(t: Topology, links: list[LinkSpec], problems: list[Problem]) -> None:
    """The links of exec nodes: a CURVE one is refused (a program is not handed the run's
    keys), and each cycle of exec senders gets a warning naming it and the order chosen."""
    for link in links:
        ends = [t.nodes[r.node] for r in (link.src, link.dst)]
        if not any(n.exec for n in ends):
            continue
        hosts = {n.host or t.default_host for n in ends}
        tcp = link.transport is Transport.TCP or len(hosts) > 1
        if tcp and (t.curve if link.curve is None else link.curve):
            exe = next(n.name for n in ends if n.exec)
            problems.append(Problem(link.where("curve") if "curve" in link.at else link.pos,
                                    f"link {link.src} -> {link.dst} is tcp with CURVE, and {exe} is an exec node, which is not "
                                    "handed the run's keys: give the link `curve: false` (plain, unauthenticated)"))
    _cycle_warnings(t, links, problems)


def _cycle_warnings(t: Topology, links: Iterable[LinkSpec], problems: list[Problem]) -> None:
    waits = sends_to(t, links)
    order, cycles, dropped = start_order(waits)
    for cycle in cycles:
        first = t.nodes[cycle[0]]
        skipped = sorted(r for s, r in dropped if s == cycle[0])
        problems.append(warning(first.where("exec"), f"exec nodes {' -> '.join([*cycle, cycle[0]])} send to each other in a cycle: "
                                                     f"they start in the order {', '.join(order)} ({cycle[0]} does not wait for {', '.join(skipped)})"))


def local_host(t: Topology) -> str:
    return "local" if "local" in t.hosts or len(t.hosts) != 1 else next(iter(t.hosts))

