"""Nodes of the output-fault tests (issue 13): output that is odd, fast, endless or the
last thing a process does."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def idle(node: Any) -> None:
    while node.running:
        time.sleep(0.05)  # a node with nothing to do, waiting to be stopped


def surrogate(node: Any) -> None:
    """A lone surrogate is a valid Python str that no UTF-8 encoder accepts."""
    print("before")
    print("value: " + json.loads('"\\ud800"'))
    print("after")


def bigout(node: Any) -> None:
    for i in range(node.args.get("lines", 500_000)):
        print(f"{i:08d} " + "x" * 90)
    print("LAST LINE")


def flood(node: Any) -> None:
    """Prints as fast as it can until stopped."""
    line = "y" * 100
    while node.running:
        print(line)


def last_words(node: Any) -> None:
    for i in range(5):
        print(f"line {i} before crash")
    os.write(2, b"fd2: last words\n")
    os._exit(3)


def escapes(node: Any) -> None:
    print("plain\rOVERWRITE \x1b[2J\x1b[31mred\x1b[0m bell\x07 end")


def bye_then_exit(node: Any) -> None:
    """A last line printed and flushed, then an exit that runs no Python clean-up."""
    print("bye from a dying process", flush=True)
    os._exit(3)


def raw_then_exit(node: Any) -> None:
    """Last words that never pass through Python's streams: a subprocess writing to the fd 1
    it inherited, then a raw write to fd 1 (as a C library's), then a hard exit."""
    import subprocess

    subprocess.run(["sh", "-c", "echo words of a subprocess"], check=True)
    os.write(1, b"raw words on fd 1\n")
    os._exit(4)
