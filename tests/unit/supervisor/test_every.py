"""Every answers as ``all`` does, whatever order nodes change in (it only looks less)."""

from __future__ import annotations

import random

from topo.supervisor.runstate import Every, NodeState, has_ended, was_ready

STATES = ["starting", "bound", "running", "exited", "failed", "stopped", "restarting"]


def test_every_agrees_with_all_through_random_changes_additions_and_removals() -> None:
    rng = random.Random(11)
    for test in (was_ready, has_ended):
        every = Every(test)
        nodes = {f"n{i}": NodeState(f"n{i}", f"p{i}") for i in range(12)}
        for step in range(4000):
            name = rng.choice(list(nodes))
            if rng.random() < 0.02 and len(nodes) > 1:
                del nodes[name]  # topo apply removed it
            elif rng.random() < 0.02:
                nodes[f"new{step}"] = NodeState(f"new{step}", "q")
            else:
                node = nodes[name]
                node.state = rng.choice(STATES)
                node.started = rng.choice([None, 1.0])
            assert every(nodes) is all(test(n) for n in nodes.values())


def test_in_order_changes_look_at_few_nodes() -> None:
    """Nodes ready one after the other, oldest first, asked after each: the newest is the
    one found not ready until it is, so each answer looks at one node."""
    looked: list[str] = []

    def counted(node: NodeState) -> bool:
        looked.append(node.name)
        return was_ready(node)

    nodes = {f"n{i}": NodeState(f"n{i}", "p") for i in range(200)}
    every = Every(counted)
    for node in nodes.values():
        node.state = "running"
        every(nodes)
    assert len(looked) < 3 * len(nodes)  # (a look from the oldest at each: 20,100)
    assert every(nodes)
