"""Nodes of the `topo logs` tests: numbered lines, then returning or waiting to be stopped."""

from __future__ import annotations

import time
from typing import Any


def count(node: Any) -> None:
    for i in range(node.args.get("lines", 3)):
        print(f"{node.name} line {i}", flush=True)


def count_then_idle(node: Any) -> None:
    count(node)
    while node.running:
        time.sleep(0.05)  # waiting to be stopped


def silent(node: Any) -> None:
    while node.running:
        time.sleep(0.05)  # prints nothing, ever
