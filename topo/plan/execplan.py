"""The plan's rules for exec nodes: which end of their links binds, who waits for whom.

An exec node is a program topo cannot hold at a gate: it sends as soon as it runs. So it
is started only once every instance it sends to is ready (:func:`exec_waits`), and that
order decides the rest:

- The receiver binds when the sender is an exec node (:func:`exec_binds`): the program
  connects to an endpoint that exists when it starts, and no port has to be reported
  back by it. On a tcp link between an exec node and a Python node, the Python end binds
  whichever sends: its process reports the port the kernel chose, as for any node, and
  the program is handed it. Only a tcp link between two exec nodes (or a ``bind:`` that
  says so) leaves a program to bind ``tcp://ADDR:*``: topo then picks the port when it
  starts the program (:func:`topo.supervisor.execspawn.pick_ports`).
- A Python node's gate does not wait for its links to an exec node that waits for it
  (:func:`waits_for`): that program starts only once the gate is open, and waiting for
  its connection would wait forever. Its readiness on those links is its bind (or its
  connect issued). Toward an exec node that does not wait for it (an exec receiver), a
  Python node keeps its whole gate: a PUB waits for the program's subscriptions, a PUSH
  for its connection.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from topo.file.execnodes import start_order
from topo.file.model import LinkSpec, Topology, Transport


def exec_binds(t: Topology, link: LinkSpec) -> bool | None:
    """Whether the link's ``from`` end binds, when an exec end decides it (after an
    explicit ``bind:``, before the other rules); None when the usual rules decide."""
    a, b = t.nodes[link.src.node], t.nodes[link.dst.node]
    if not a.exec and not b.exec:
        return None
    tcp = link.transport is Transport.TCP or (a.host or t.default_host) != (b.host or t.default_host)
    if a.exec and b.exec:
        return False  # the receiver binds (over tcp, on a port topo picks when it starts)
    if tcp:
        return not a.exec  # the Python end binds: its process reports the port
    return False if a.exec else None


def exec_waits(exec_nodes: Sequence[str], node_of: Mapping[str, str],
               links: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Each exec instance → the instances it starts after: the ``to`` end of each of its
    links (``links``: (from instance, to instance)), Python or exec, not its own node's
    instances. Waits between exec nodes in a cycle are dropped where
    :func:`topo.file.execnodes.start_order` breaks the cycle (``topo check`` warns).
    ``exec_nodes`` in file order: a cycle is broken at its node written first."""
    pairs = list(links)
    node_waits: dict[str, list[str]] = {n: [] for n in exec_nodes}
    for i, j in pairs:
        src, dst = node_of[i], node_of[j]
        if src in node_waits and dst != src and dst not in node_waits[src]:
            node_waits[src].append(dst)
    _, _, dropped = start_order(node_waits)
    waits: dict[str, set[str]] = {i: set() for i, n in node_of.items() if n in node_waits}
    for i, j in pairs:
        a, b = node_of[i], node_of[j]
        if i in waits and a != b and (a, b) not in dropped:
            waits[i].add(j)
    return {name: frozenset(w) for name, w in waits.items()}



def waits_for(waits: Mapping[str, frozenset[str]], peer: str, instance: str) -> bool:
    """Whether ``peer`` is an exec instance that waits for ``instance``: then ``instance``'s
    gate does not wait for their links (see the module's docstring)."""
    return instance in waits.get(peer, ())
