"""Drawings of a plan, for ``topo graph``: a Mermaid flowchart or a Graphviz digraph.

Every node instance is drawn inside its process, inside its host; every instance-level
link is an edge from its ``from`` instance to its ``to`` instance, labelled with the two
sockets, their types, the transport and a SUB's topics (``updates→feed PUB→SUB ipc;
topics: "weather"``), and drawn solid for inproc, dotted or dashed for ipc and thick for
tcp. An endpoint outside the topology (a socket's ``external:``) is a hexagon outside
the hosts, its edge labelled with the socket and whether it binds or connects.

Pure functions from a :class:`topo.plan.planner.Plan` to text. Ids are derived from names by an
injective escape (``_`` → ``__``, ``.`` → ``_d``, ``-`` → ``_h``) behind a prefix per kind
(``h_`` host, ``p_`` process, ``n_`` instance; ``x_N`` numbers the external endpoints), so ``client.0``, ``client_0`` and
``client-0`` never collide with each other or with a keyword such as ``end`` or ``node``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from topo.file.model import SocketType, Transport
from topo.plan.planview import ARROW, pattern, socket_types

if TYPE_CHECKING:
    from topo.plan.planner import Plan, Process

_ESCAPES = {"_": "__", ".": "_d", "-": "_h"}
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

_MERMAID_ARROWS = {Transport.INPROC: "-->", Transport.IPC: "-.->", Transport.TCP: "==>"}
_DOT_STYLES = {Transport.INPROC: "solid", Transport.IPC: "dashed", Transport.TCP: "bold"}


def node_id(kind: str, name: str) -> str:
    """A graph id for a ``kind`` (``h`` host, ``p`` process, ``n`` instance) and a name:
    letters, digits and ``_`` only, distinct for distinct (kind, name) pairs."""
    return f"{kind}_" + "".join(
        c if c in _SAFE else _ESCAPES.get(c) or f"_u{ord(c):06x}" for c in name
    )


def to_mermaid(plan: Plan) -> str:
    """A Mermaid flowchart (``flowchart LR``) of the plan."""
    lines = [
        "---",
        f"title: {json.dumps(f'topology {plan.topology}')}",
        "---",
        "flowchart LR",
        "  %% solid: inproc, dotted: ipc, thick: tcp",
    ]
    for host, address, processes in _layout(plan):
        lines.append(f'  subgraph {node_id("h", host)} ["{_mermaid_text(f"host {host} ({address})")}"]')
        for proc in processes:
            lines.append(f'    subgraph {node_id("p", proc.name)} ["{_mermaid_text(f"process {proc.name}")}"]')
            # an exec node (a program in any language): the subroutine shape
            lines += [f'      {node_id("n", i)}[["{_mermaid_text(i)}"]]' if plan.instances[i].exec
                      else f'      {node_id("n", i)}("{_mermaid_text(i)}")' for i in proc.instances]
            lines.append("    end")
        lines.append("  end")
    for src, dst, label, transport in _edges(plan):
        arrow = _MERMAID_ARROWS[transport]
        lines.append(f'  {node_id("n", src)} {arrow}|"{_mermaid_text(label)}"| {node_id("n", dst)}')
    shown: set[str] = set()
    for ext in _externals(plan):
        if ext.id not in shown:
            shown.add(ext.id)
            lines.append(f'  {ext.id}{{{{"{_mermaid_text(ext.text)}"}}}}')
        ends = (ext.id, node_id("n", ext.instance)) if ext.binds else (node_id("n", ext.instance), ext.id)
        lines.append(f'  {ends[0]} {_MERMAID_ARROWS[ext.transport]}|"{_mermaid_text(ext.label)}"| {ends[1]}')
    return "".join(line + "\n" for line in lines)


def to_dot(plan: Plan) -> str:
    """A Graphviz digraph of the plan, hosts and processes as nested clusters."""
    lines = [
        f"digraph {_dot_text(plan.topology)} {{",
        f"  label={_dot_text(f'topology {plan.topology}')};",
        "  labelloc=t;",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        "  // edges: solid inproc, dashed ipc, bold tcp",
    ]
    for host, address, processes in _layout(plan):
        lines.append(f"  subgraph cluster_{node_id('h', host)} {{")
        lines.append(f"    label={_dot_text(f'host {host} ({address})')};")
        lines.append('    style=filled; fillcolor="#f2f2f2"; color="#999999";')
        for proc in processes:
            lines.append(f"    subgraph cluster_{node_id('p', proc.name)} {{")
            lines.append(f"      label={_dot_text(f'process {proc.name}')};")
            lines.append('      style="rounded,filled"; fillcolor=white; color="#666666";')
            lines += [f"      {node_id('n', i)} [label={_dot_text(i)}, shape=component, style=solid];"
                      if plan.instances[i].exec else f"      {node_id('n', i)} [label={_dot_text(i)}];"
                      for i in proc.instances]
            lines.append("    }")
        lines.append("  }")
    for src, dst, label, transport in _edges(plan):
        lines.append(
            f"  {node_id('n', src)} -> {node_id('n', dst)} "
            f"[label={_dot_text(label)}, style={_DOT_STYLES[transport]}];"
        )
    shown: set[str] = set()
    for ext in _externals(plan):
        if ext.id not in shown:
            shown.add(ext.id)
            lines.append(f"  {ext.id} [label={_dot_text(ext.text)}, shape=hexagon, style=dashed];")
        ends = (ext.id, node_id("n", ext.instance)) if ext.binds else (node_id("n", ext.instance), ext.id)
        lines.append(f"  {ends[0]} -> {ends[1]} [label={_dot_text(ext.label)}, style={_DOT_STYLES[ext.transport]}];")
    lines.append("}")
    return "".join(line + "\n" for line in lines)


def _layout(plan: Plan) -> Iterator[tuple[str, str, list[Process]]]:
    """Hosts that run something, each with its address and processes, in plan order."""
    by_host: dict[str, list[Process]] = {}
    for proc in plan.processes:
        by_host.setdefault(proc.host, []).append(proc)
    addresses = {h.name: h.address for h in plan.hosts}
    for host in [h.name for h in plan.hosts] + [h for h in by_host if h not in addresses]:
        if host in by_host:
            yield host, addresses.get(host, "?"), by_host[host]


def _edges(plan: Plan) -> Iterator[tuple[str, str, str, Transport]]:
    """(from instance, to instance, label, transport) of every instance-level link. The
    label names the two sockets, their types and the transport as ``topo plan`` does
    (``updates→updates PUB→SUB tcp+curve``), and what a subscribing end lets through: a
    SUB's filters are what most often makes a drawn link carry nothing."""
    types = socket_types(plan)
    topics = {f"{inst.name}.{sock.name}": sock.subscribe
              for inst in plan.instances.values() for sock in inst.sockets}
    for ln in plan.links:
        names = f"{ln.src_instance.rsplit('.', 1)[1]}{ARROW}{ln.dst_instance.rsplit('.', 1)[1]}"
        transport = ln.transport.value + ("+curve" if ln.secure else "")
        label = f"{names} {pattern(types, ln.src_instance, ln.dst_instance)} {transport}"
        if types[ln.dst_instance] in (SocketType.SUB, SocketType.XSUB):
            label += f"; {_topics(topics[ln.dst_instance])}"
        yield _instance(ln.src_instance), _instance(ln.dst_instance), label, ln.transport


class _External(NamedTuple):
    """An endpoint outside the topology, drawn outside the hosts, and its edge."""

    id: str
    text: str
    instance: str
    label: str
    transport: Transport
    binds: bool


def _externals(plan: Plan) -> Iterator[_External]:
    """Every external endpoint of every instance. One a socket binds is that host's own
    (``tcp://*:5555`` on two hosts is two ports) and points at its socket, as its clients
    do; one sockets connect to is one peer, however many dial it."""
    ids: dict[tuple[str, str], str] = {}
    for inst in plan.instances.values():
        for sock in inst.sockets:
            for binds, addresses in ((True, sock.external_binds), (False, sock.external_connects)):
                for address in addresses:
                    transport = Transport.IPC if address.startswith("ipc://") else Transport.TCP
                    text = f"external {address}" + (f" on host {inst.host}" if binds else "")
                    label = f"{sock.name} {sock.type.value} {'binds' if binds else 'connects'}; {transport.value}, plain"
                    key = (inst.host if binds else "", address)
                    ext_id = ids.setdefault(key, f"x_{len(ids)}")
                    yield _External(ext_id, text, inst.name, label, transport, binds)


def _topics(subscribe: tuple[str, ...]) -> str:
    if "" in subscribe:
        return "topics: all"
    if not subscribe:
        return "topics: none"
    return "topics: " + ", ".join(json.dumps(t, ensure_ascii=False) for t in subscribe)


def _instance(instance_socket: str) -> str:
    """``client.0`` of ``client.0.updates``: socket names never contain a dot."""
    return instance_socket.rsplit(".", 1)[0]


def _mermaid_text(text: str) -> str:
    """Text safe inside a Mermaid ``"..."`` string (entity codes for what would end it)."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("\n", " ")


def _dot_text(text: str) -> str:
    """A double-quoted DOT string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
