"""Nodes of the broken-environment tests."""

from __future__ import annotations

from typing import Any


def print_lines(node: Any) -> None:
    """``count`` lines of about 100 bytes, then ``LAST LINE``; returns."""
    for i in range(node.args["count"]):
        print(f"{i:08d} " + "x" * 90)
    print("LAST LINE", flush=True)


def exit_quietly(node: Any) -> None:
    """``SystemExit()`` with no argument: a failure whose message is empty."""
    raise SystemExit()
