"""What a node process imports before its first node runs: the launch cost of every process."""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT
from topo.plan.planner import make_plan
from topo.process.runner import is_async
from topo.process.boot import Boot
from topo.plan.share import share_of
from topo.file.validate import load

#: Modules a child must not need: the plan's dataclasses and the model's (and what
#: dataclasses import), whose compilation once cost each process ~30 ms of CPU.
HEAVY = ("topo.plan.planner", "topo.file.model", "topo.errors", "topo.file.placement", "dataclasses", "inspect",
         "asyncio", "traceback", "topo.process.curve")


def test_a_child_unpickles_its_boot_without_the_plans_modules() -> None:
    plan = make_plan(load(str(ROOT / "topologies" / "pipeline.yaml")))
    boot = Boot(share_of(plan, plan.processes[0].name), "ipc://ev", "ipc://cmd", "/nonexistent", 0.0, 1.0, 1)
    probe = (
        "import pickle, sys, multiprocessing.spawn\n"
        "import topo.process.runtime, topo.process.runner, topo.process.wiring\n"
        "boot = pickle.loads(sys.stdin.buffer.read())\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(boot.share.name, type(boot.share.instances[next(iter(boot.share.instances))]).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], input=pickle.dumps(boot), capture_output=True,
                         cwd=str(ROOT), timeout=60, check=True).stdout.decode().splitlines()
    assert out[0] == "[]", f"a node process imported {out[0]}"
    assert out[1] == f"{plan.processes[0].name} topo.plan.share"


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


def test_a_child_starts_importing_its_nodes_code_before_it_imports_zmq(tmp_path: Path) -> None:
    """The prelude (first steps of a node process) starts the node module's import and
    returns with zmq still not imported: a slow module loads while zmq and the runtime do."""
    release = tmp_path / "release"
    os.mkfifo(release)
    # the module's import blocks until the probe writes to the fifo: an import still running
    (tmp_path / "held_module.py").write_text(
        "import os\nopen(os.environ['HELD_RELEASE']).read()\ndef node(node): pass\n")
    file = tmp_path / "t.yaml"
    file.write_text("topology: t\nnodes:\n  held: {run: held_module:node}\n")
    plan = make_plan(load(str(file)))
    result = tmp_path / "result.json"
    probe = (
        "import json, os, pickle, sys\n"
        "from topo.process.prelude import begin\n"
        "boot = pickle.loads(sys.stdin.buffer.read())._replace(parent_pid=os.getppid())\n"
        "prelude = begin(boot)\n"
        "code = prelude.code['held']\n"
        "seen = {'zmq': 'zmq' in sys.modules, 'importing': code.module.is_alive(), 'done': code.done.is_set()}\n"
        f"open({str(release)!r}, 'w').close()\n"
        "seen['done_after'] = code.done.wait(20) and code.error is None and callable(code.fn)\n"
        f"open({str(result)!r}, 'w').write(json.dumps(seen))\n"
    )
    share = share_of(plan, plan.processes[0].name)._replace(env={"HELD_RELEASE": str(release)})
    boot = Boot(share, "ipc://ev", "ipc://cmd", "/nonexistent", 0.0, 1.0, 0, (str(tmp_path), str(ROOT)))
    subprocess.run([sys.executable, "-c", probe], input=pickle.dumps(boot), cwd=str(ROOT), timeout=60, check=True,
                   capture_output=True)
    seen = json.loads(result.read_text())
    assert seen == {"zmq": False, "importing": True, "done": False, "done_after": True}
