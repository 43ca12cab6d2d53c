"""What a node process imports before its first node runs: the launch cost of every process."""

from __future__ import annotations

import functools
import pickle
import subprocess
import sys
from typing import Any

from conftest import ROOT
from topo.plan import make_plan
from topo.runner import is_async
from topo.boot import Boot
from topo.share import share_of
from topo.validate import load

#: Modules a child must not need: the plan's dataclasses and the model's (and what
#: dataclasses import), whose compilation once cost each process ~30 ms of CPU.
HEAVY = ("topo.plan", "topo.model", "topo.errors", "topo.placement", "dataclasses", "inspect",
         "asyncio", "traceback", "topo.curve")


def test_a_child_unpickles_its_boot_without_the_plans_modules() -> None:
    plan = make_plan(load(str(ROOT / "topologies" / "pipeline.yaml")))
    boot = Boot(share_of(plan, plan.processes[0].name), "ipc://ev", "ipc://cmd", "/nonexistent", 0.0, 1.0, 1)
    probe = (
        "import pickle, sys, multiprocessing.spawn\n"
        "import topo.runtime, topo.runner\n"
        "boot = pickle.loads(sys.stdin.buffer.read())\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(boot.share.name, type(boot.share.instances[next(iter(boot.share.instances))]).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], input=pickle.dumps(boot), capture_output=True,
                         cwd=str(ROOT), timeout=60, check=True).stdout.decode().splitlines()
    assert out[0] == "[]", f"a node process imported {out[0]}"
    assert out[1] == f"{plan.processes[0].name} topo.share"


async def _coroutine(node: Any) -> None:
    pass


def _plain(node: Any) -> None:
    pass


class _AsyncCallable:
    async def __call__(self, node: Any) -> None:
        pass


class _Callable:
    def __call__(self, node: Any) -> None:
        pass


def test_async_nodes_are_told_from_sync_ones_without_inspect() -> None:
    assert is_async(_coroutine) and not is_async(_plain)
    assert is_async(functools.partial(_coroutine)) and not is_async(functools.partial(_plain))
    assert is_async(_AsyncCallable()) and not is_async(_Callable())
    assert not is_async(print)  # a builtin: no code object
