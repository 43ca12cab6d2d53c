"""Where every instance runs: replicas expanded, processes and hosts assigned.

Both validation (a link's transport may not be narrower than its ends' placement) and
planning need this, so it lives apart from either.
"""

from __future__ import annotations

from dataclasses import dataclass

from topo.file.model import NodeSpec, Topology, Transport


@dataclass(frozen=True)
class Placed:
    """One instance of a node and where it runs."""

    name: str
    node: str
    replica: int
    process: str
    host: str


def instance_names(node: NodeSpec) -> list[str]:
    """``worker`` for a single instance; ``worker.0``, ``worker.1``… for replicas."""
    if node.replicas == 1:
        return [node.name]
    return [f"{node.name}.{i}" for i in range(node.replicas)]


def place(topology: Topology) -> dict[str, list[Placed]]:
    """Instances of every node, by node name.

    A node without ``process`` gets a process per instance, named like the instance;
    replicas of a node that names a process all live in that process.
    """
    out: dict[str, list[Placed]] = {}
    for node in topology.nodes.values():
        host = node.host or topology.default_host
        # hosts: all, resolved: the instances take the allocation's hosts in turn
        spread = node.hosts if node.hosts and all(h in topology.hosts for h in node.hosts) else (host,)
        out[node.name] = [
            Placed(name, node.name, i, node.process or name, spread[i % len(spread)])
            for i, name in enumerate(instance_names(node))
        ]
    return out


def natural_transport(a: Placed, b: Placed) -> Transport:
    if a.host != b.host:
        return Transport.TCP
    if a.process != b.process:
        return Transport.IPC
    return Transport.INPROC
