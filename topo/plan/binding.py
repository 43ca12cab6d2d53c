"""Which end of a link binds (the first rule that decides wins):

1. ``bind:`` on either end (``true`` binds, ``false`` makes the other end bind);
   then, on a link of an exec node, :func:`topo.plan.execplan.exec_binds`;
2. what the running plan decided, for a link ``topo apply`` keeps (``keep``: a live
   socket is not made to bind or unbind for an edit elsewhere);
3. the end with more links binds (counted per instance: a PUSH feeding three worker
   replicas has three links, each worker's PULL one), so the many dial the one;
4. a server (REP, ROUTER) binds;
5. the upstream end (the link's ``from``: sender, or client) binds.

Pure, as the rest of the plan.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

from topo.file.model import SERVERS, LinkSpec, Topology
from topo.file.placement import Placed
from topo.plan.execplan import exec_binds


def link_counts(t: Topology, placed: Mapping[str, list[Placed]]) -> dict[str, int]:
    """Links per instance of each declared socket (every instance has the same count)."""
    counts: dict[str, int] = defaultdict(int)
    for link in t.links:
        counts[str(link.src)] += len(placed[link.dst.node])
        counts[str(link.dst)] += len(placed[link.src.node])
    return counts


def src_binds(t: Topology, link: LinkSpec, counts: Mapping[str, int], keep: Mapping[str, bool]) -> bool:
    a = t.nodes[link.src.node].sockets[link.src.socket]
    b = t.nodes[link.dst.node].sockets[link.dst.socket]
    if a.bind is not None:
        return a.bind
    if b.bind is not None:
        return not b.bind
    by_exec = exec_binds(t, link)
    if by_exec is not None:
        return by_exec
    kept = keep.get(f"{link.src} -> {link.dst}")
    if kept is not None:
        return kept
    ca, cb = counts[str(link.src)], counts[str(link.dst)]
    if ca != cb:
        return ca > cb
    if (a.type in SERVERS) != (b.type in SERVERS):
        return a.type in SERVERS
    return True
