"""A remote process's output, as its agent reads it from pipes (issue 13): its last words
before a hard exit are shown and logged as a local process's are (test_output_faults.py)."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from conftest import Topo
from hostnet import Network, host_network, hosts_block, hosts_emptied, requires_netns

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net1() -> Iterator[Network]:
    with host_network(1) as net:
        yield net


def _log(topo: Topo, topology: str, node: str) -> str:
    [path] = (topo.home / "logs" / topology).glob(f"*/{node}.log")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("run", "words", "code"), [
    ("outnodes:bye_then_exit", ["bye from a dying process"], 3),
    ("outnodes:raw_then_exit", ["words of a subprocess", "raw words on fd 1"], 4),
])
def test_a_remote_process_s_last_words_before_a_hard_exit_are_shown_and_logged(
        topo: Topo, net1: Network, run: str, words: list[str], code: int) -> None:
    path = topo.file(f"""
        topology: xlast
        {hosts_block(net1)}
        nodes:
          lw: {{run: "{run}", host: h1}}
          other: {{run: outnodes:idle}}
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=90)
    assert result.code == 1, result.out + result.err
    shown = [m.group(1) for m in re.finditer(r"^lw@h1 +\| (.*)$", result.out, re.M)]
    assert shown == words, result.out
    # said before its end, as for a local process
    failed = result.out.index(f"lw failed: its process lw exited with status {code}")
    assert result.out.index(words[-1]) < failed, result.out
    log = _log(topo, "xlast", "lw")
    assert all(word in log for word in words), log
    hosts_emptied(net1, 10)


def test_a_remote_flood_is_shown_and_logged_whole_and_in_order(topo: Topo, net1: Network) -> None:
    """Faster than the supervisor reads: the node waits in ``print`` while the agent's way
    to the supervisor is full, and no line is dropped on the way."""
    lines = 60_000
    path = topo.file(f"""
        topology: xflood
        {hosts_block(net1)}
        nodes:
          big: {{run: outnodes:bigout, host: h1, args: {{lines: {lines}}}, on_exit: stop}}
          other: {{run: outnodes:idle}}
        """.replace("\n        ", "\n"))
    result = topo.run("up", path, "--ready-timeout", "30", timeout=120)
    assert result.code == 0, result.err
    numbers = [int(n) for n in re.findall(r"^big@h1 +\| (\d{8}) x", result.out, re.M)]
    assert numbers == list(range(lines)), f"{len(numbers)} of {lines} lines shown"
    assert re.search(r"^big@h1 +\| LAST LINE$", result.out, re.M)
    logged = [int(n) for n in re.findall(r"(\d{8}) x", _log(topo, "xflood", "big"))]
    assert logged == list(range(lines)), f"{len(logged)} of {lines} lines logged"
    hosts_emptied(net1, 10)
