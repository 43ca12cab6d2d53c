"""When an exec node's program may start: once every instance it sends to is ready.

topo cannot hold a program's sends at a gate, so it holds the program: an exec process
is not spawned with the others but waits, ``held``, until every instance it sends to
(:func:`topo.plan.execenv.instance_waits`) is ready, or has ended for good, and every
endpoint it connects to is bound (a ``tcp://ADDR:*`` has its port only then). The
supervisor's loop asks :meth:`ExecStarts.due` at each turn; the program then starts at
once (:mod:`topo.supervisor.execspawn`). A program reports nothing: what a Python node's
runtime would report (hello, bound, ready, how it ended) the supervisor tells itself
(:meth:`topo.supervisor.transitions.Transitions._program_started`,
:meth:`~topo.supervisor.transitions.Transitions._program_ended`).
"""

from __future__ import annotations

from typing import Collection, Mapping

from topo.plan.execenv import instance_waits
from topo.plan.planner import Plan
from topo.supervisor.runstate import TERMINAL, NodeState, ProcState


class ExecStarts:
    """The exec processes of a plan, and the start rule."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.waits = instance_waits(plan) if any(i.exec for i in plan.instances.values()) else {}

    def is_program(self, proc: ProcState) -> bool:
        """Whether ``proc`` runs an exec node's program (rather than Python nodes)."""
        return any(self.plan.instances[i].exec for i in proc.instances if i in self.plan.instances)

    def waiting_for(self, proc: ProcState, nodes: Mapping[str, NodeState]) -> list[str]:
        """The instances ``proc``'s program still waits for: neither ready nor ended."""
        return sorted(w for name in proc.instances for w in self.waits.get(name, ())
                      if nodes[w].state != "running" and nodes[w].state not in TERMINAL)

    def due(self, proc: ProcState, nodes: Mapping[str, NodeState], bound: Collection[str],
            needs: Collection[str]) -> bool:
        """Whether a held program may start now."""
        return not self.waiting_for(proc, nodes) and all(k in bound for k in needs)
