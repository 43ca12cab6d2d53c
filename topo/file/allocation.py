"""Hosts from a Slurm allocation: ``hosts: {from: slurm}`` made into hosts written out.

Inside an allocation (``salloc``, ``sbatch``) the hosts are the allocation's nodes, known
only when topo runs there. What topo learns of them (:class:`Allocation`: the nodes in
Slurm's order, their addresses, the node ``topo up`` runs on) comes from outside this
package, which starts no process: the command line installs a function that asks Slurm
(:func:`use`, :mod:`topo.hosts.slurm`), and :func:`resolve` turns the file into one whose
hosts are written out, so that validation, ``topo plan`` and ``topo up`` see ordinary hosts.

The placement rule, in file order of the nodes:

- no ``host:``: the host ``topo up`` runs on (``local``), as for any file;
- ``host: slurm[N]``: the allocation's Nth node (from 0, in Slurm's order of the nodes);
- ``host: any``: the allocation's node with the fewest instances so far, once the
  others are placed (the first of them on a tie), one ``any`` node after the other;
- ``hosts: all``: the node's replicas over the allocation's nodes in turn (replica i on
  node i modulo their number).

The allocation's node ``topo up`` runs on (a batch script runs on the first) is the host
named ``local``; its other nodes are hosts named as Slurm names them, started with
``srun --jobid JOB --nodes=1 --ntasks=1 -w NODE --overlap --quiet``: each agent is a job
step of the allocation, sharing its CPUs with the others, ended by ``scancel`` with them.
``topo up`` run from a machine outside the allocation (``salloc`` on a login node) is
``local`` there and puts no node on it unless a node says nothing of ``host:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

from topo.errors import Problem
from topo.file.diagnostics import warning
from topo.file.model import AllocationSpec, HostSpec, NodeSpec, Topology

#: ``host: slurm[N]``.
NODE_INDEX = re.compile(r"^slurm\[([0-9]+)\]$")
#: Stand-in nodes when topo does not run in an allocation (``topo check`` on a laptop):
#: this many at least, more if a node names a higher ``slurm[N]``.
STAND_INS = 2
#: TEST-NET-1 (RFC 5737): addresses that belong to no machine.
_STAND_IN_NET = "192.0.2."


@dataclass(frozen=True)
class SlurmNode:
    name: str
    #: Where its tcp endpoints bind and its peers dial it (Slurm's NodeAddr, resolved).
    address: str


@dataclass(frozen=True)
class Allocation:
    """What topo learnt of the allocation it runs in."""

    job: str
    nodes: tuple[SlurmNode, ...]
    #: The node ``topo up`` runs on, when it is one of the allocation's (None: a login node).
    here: str | None
    #: This machine's address as the nodes reach it: where the supervisor binds.
    local_address: str
    #: The Python that runs the agents when the file names none: ``topo up``'s own (a
    #: cluster's nodes share its file system, the virtual environment included).
    python: str
    stand_in: bool = False


#: Asks the cluster (installed by the command line: :func:`use`); None: not in an allocation.
Discover = Callable[[AllocationSpec], "Allocation | None"]
_discover: list[Discover] = []


def use(discover: Discover | None) -> None:
    """Installs how an allocation is discovered (None: none is; stand-ins are planned)."""
    _discover[:] = [discover] if discover is not None else []


def expand_nodelist(text: str) -> list[str]:
    """Slurm's host list syntax, as ``scontrol show hostnames`` expands it: ``n[01-03],x``
    is n01, n02, n03, x; several bracket groups multiply (``r[1-2]n[1-2]``); zero padding
    is kept. :class:`ValueError` for text that is not a host list."""
    names: list[str] = []
    for item in _split_top(text.strip()):
        if item:
            names.extend(_expand_item(item))
    return names


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{text!r}: ']' without '['")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"{text!r}: '[' without ']'")
    parts.append(text[start:])
    return parts


def _expand_item(item: str) -> list[str]:
    open_ = item.find("[")
    if open_ < 0:
        return [item]
    close = item.index("]", open_)
    head, ranges, tail = item[:open_], item[open_ + 1:close], item[close + 1:]
    out: list[str] = []
    for part in ranges.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"{item!r}: {part!r} is not a number or a range")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first or last - first > 100_000:
            raise ValueError(f"{item!r}: {part!r} is not a range from low to high")
        width = len(lo) if lo.startswith("0") else 0
        for n in range(first, last + 1):
            out.extend(head + str(n).zfill(width) + rest for rest in _expand_item(tail))
    return out


def stand_in(spec: AllocationSpec, topology: Topology, python: str = "python3") -> Allocation:
    """Nodes ``node0``... at addresses of no machine: enough for every ``slurm[N]``."""
    needed = max([STAND_INS, *(int(m[1]) + 1 for n in topology.nodes.values()
                                 if n.host and (m := NODE_INDEX.match(n.host)))])
    nodes = tuple(SlurmNode(f"node{i}", f"{_STAND_IN_NET}{10 + i}") for i in range(min(needed, 200)))
    return Allocation("JOBID", nodes, None, f"{_STAND_IN_NET}1", python, stand_in=True)


def srun_prefix(job: str, node: str) -> tuple[str, ...]:
    """How an agent starts on ``node``: a step of the job on that node alone, sharing the
    allocation's CPUs with the other steps (``--overlap``), quiet about itself."""
    return ("srun", f"--jobid={job}", "--nodes=1", "--ntasks=1", "-w", node, "--overlap", "--quiet")


def resolve(t: Topology) -> tuple[Topology, list[Problem]]:
    """The topology with the allocation's hosts written out and every node's host named
    (unchanged without ``hosts: {from: ...}``), and the problems of its placement."""
    problems: list[Problem] = []
    spec = t.allocation
    if spec is None:
        for node in t.nodes.values():
            if node.hosts:
                problems.append(Problem(node.where("hosts"), f"node {node.name!r}: `hosts: all` spreads replicas over "
                                        "the nodes of a Slurm allocation: it needs `hosts: {from: slurm}`"))
            elif node.host and NODE_INDEX.match(node.host):
                problems.append(Problem(node.where("host"), f"node {node.name!r}: `host: {node.host}` names a node of a "
                                        "Slurm allocation: it needs `hosts: {from: slurm}`"))
        return t, problems
    found = _discover[0](spec) if _discover else None
    alloc = found if found is not None else stand_in(spec, t)
    if alloc.stand_in:
        problems.append(warning(spec.where("from"), "hosts: {from: slurm}, but topo does not run in a Slurm allocation "
                                f"(no SLURM_JOB_ID): placed on {len(alloc.nodes)} stand-in nodes "
                                f"{', '.join(n.name for n in alloc.nodes[:3])}{'...' if len(alloc.nodes) > 3 else ''}; "
                                "run topo up under salloc or sbatch"))
    hosts = _hosts(spec, alloc)
    pool = [_name(n.name, alloc) for n in alloc.nodes]
    nodes: dict[str, NodeSpec] = {}
    for node in t.nodes.values():
        if node.hosts:
            if node.host is not None:
                problems.append(Problem(node.where("hosts"), f"node {node.name!r}: `host:` and `hosts: all` both say "
                                        "where it runs: keep one"))
            elif node.process is not None and node.replicas > 1 and len(pool) > 1:
                problems.append(Problem(node.where("hosts"), f"node {node.name!r}: `hosts: all` spreads replicas over "
                                        f"hosts, but they share process {node.process!r}, which runs on one host"))
            nodes[node.name] = replace(node, host=None, hosts=tuple(pool))
            continue
        host = node.host
        if host is not None and (m := NODE_INDEX.match(host)):
            index = int(m[1])
            if index >= len(pool):
                problems.append(Problem(node.where("host"), f"node {node.name!r}: `host: {host}`, but the allocation "
                                        f"has {len(pool)} node(s) (slurm[0] to slurm[{len(pool) - 1}])"))
                host = None
            else:
                host = pool[index]
        elif host is not None and host == alloc.here:
            host = "local"  # the node topo up runs on, named as Slurm names it
        nodes[node.name] = replace(node, host=host)
    _place_any(nodes, pool)
    resolved = replace(spec, job=alloc.job, nodes=tuple(n.name for n in alloc.nodes), stand_in=alloc.stand_in)
    return replace(t, hosts=hosts, nodes=nodes, allocation=resolved), problems


def _place_any(nodes: dict[str, NodeSpec], pool: list[str]) -> None:
    """``host: any``, in file order: the allocation's node with the fewest instances so
    far (those placed otherwise counted first), the first of them on a tie."""
    load = dict.fromkeys(pool, 0)
    for node in nodes.values():
        if node.hosts:
            for i in range(node.replicas):
                load[node.hosts[i % len(node.hosts)]] += 1
        elif (node.host or "local") in load:
            load[node.host or "local"] += node.replicas
    for name, node in nodes.items():
        if node.host == "any" and not node.hosts:
            host = min(pool, key=lambda h: load[h])  # min keeps the first of equals
            load[host] += node.replicas
            nodes[name] = replace(node, host=host)


def _name(node: str, alloc: Allocation) -> str:
    return "local" if node == alloc.here else node


def _hosts(spec: AllocationSpec, alloc: Allocation) -> dict[str, HostSpec]:
    local_address = next((n.address for n in alloc.nodes if n.name == alloc.here), alloc.local_address)
    hosts = {"local": HostSpec("local", local_address, spec.pos)}
    for node in alloc.nodes:
        if node.name != alloc.here:
            hosts[node.name] = HostSpec(node.name, node.address, spec.pos, srun_prefix(alloc.job, node.name),
                                        spec.python or alloc.python)
    return hosts
