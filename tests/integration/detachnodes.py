"""Nodes of the `topo up -d` / `topo attach` tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def fail_when_told(node: Any) -> None:
    """Runs until the file ``args.trigger`` exists, then fails: a run that ends badly at a
    moment the test chooses (after it has attached)."""
    trigger = Path(node.args["trigger"])
    while node.running and not trigger.exists():
        time.sleep(0.02)  # the node's own workload loop, as lognodes' idle ones
    if trigger.exists():
        print(f"{node.name} told to fail", flush=True)
        raise RuntimeError("told to fail")
