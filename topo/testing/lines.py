"""What a test's run says, kept for the test: the supervisor's reporter in the harness.

Every line the nodes and topo write (also to the run's log files, as ``topo up`` does:
``topo logs`` reads them) and a copy of each node's state, under one condition variable
the harness's waits sleep on.
"""

from __future__ import annotations

import copy
import threading

from topo.supervisor.output import LogFiles
from topo.supervisor.runstate import NodeState


class Lines:
    """The supervisor's reporter: keeps every line and a copy of every node's state."""

    def __init__(self, logs: LogFiles) -> None:
        self.logs = logs
        self.cond = threading.Condition()
        self.lines: list[tuple[str, str, bool]] = []
        self.states: dict[str, NodeState] = {}

    def output(self, name: str, line: str, err: bool) -> None:
        with self.cond:
            self.lines.append((name, line, err))
            self.logs.write(name, line, err)  # as `topo up` does: `topo logs` reads them
            self.cond.notify_all()

    def system(self, text: str) -> None:
        self.output("topo", text, False)

    def changed(self, node: NodeState) -> None:
        with self.cond:
            self.states[node.name] = copy.copy(node)
            self.cond.notify_all()
