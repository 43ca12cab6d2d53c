"""Nodes for the start-up fault tests: they do nothing until the run stops."""

from __future__ import annotations

import time
from typing import Any


def idle(node: Any) -> None:
    """Runs until stopped (the issue's ``idle``: the workload, not a wait for a condition)."""
    while node.running:
        time.sleep(0.05)


def announce(node: Any) -> None:
    print(f"{node.name} function called", flush=True)
    idle(node)
