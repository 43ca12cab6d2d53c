"""``topo check --import``: every local node's ``run:`` imported for real.

``topo check`` reads node code without running it (:mod:`topo.file.runref`) and accepts
what only running it could tell: a dependency that is missing, a module that raises when
imported, a name made by a decorator, ``__getattr__`` or ``globals()``. ``--import``
settles those by importing each module, the way its node process will (the same path
first on ``sys.path``), but each in a child process of its own: the import's side effects,
its output and its crash stay there, and a module that never finishes importing costs the
deadline, not a hang. Opt-in, because importing runs the user's code.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from topo.errors import Problem
from topo.file.model import NodeSpec, Topology
from topo.file.runref import search_path

#: Seconds all the imports together may take.
DEFAULT_TIMEOUT = 30.0
#: The most of a child's answer read: a path list and a message per name.
_MAX_ANSWER = 1 << 20

#: The child: imports one module, looks up the names, answers in JSON on the descriptor
#: its last argument names (its stdout and stderr are the import's own).
_CHILD = r"""
import difflib, importlib, json, os, sys
answer = os.fdopen(int(sys.argv[4]), "w")
module, names, path = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path[:0] = [p for p in path if p not in sys.path]
try:
    target = importlib.import_module(module)
except BaseException as err:
    json.dump({"module": f"{type(err).__name__}: {err}"}, answer)
    answer.close()
    os._exit(0)
found = {}
for name in names:
    obj, where = target, module
    try:
        for part in name.split("."):
            if not hasattr(obj, part):
                near = difflib.get_close_matches(part, [n for n in dir(obj) if not n.startswith("_")], 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise LookupError(f"{where} has no {part!r} once imported{hint}")
            obj, where = getattr(obj, part), f"{where}.{part}"
        found[name] = None if callable(obj) else f"{name} is not callable ({type(obj).__name__})"
    except LookupError as err:
        found[name] = str(err)
    except Exception as err:
        found[name] = f"{type(err).__name__}: {err}"
json.dump({"names": found}, answer)
answer.close()
os._exit(0)
"""


def import_problems(t: Topology, timeout: float = DEFAULT_TIMEOUT) -> list[Problem]:
    """One problem per node whose ``run:`` does not import or name a callable, at its
    ``run:`` value. Nodes on other hosts and broken nodes are not looked at."""
    local = "local" if "local" in t.hosts or len(t.hosts) != 1 else next(iter(t.hosts))
    nodes = [n for n in t.nodes.values()
             if n.run and n.name not in t.broken and (n.host or t.default_host) == local]
    by_module: dict[str, list[NodeSpec]] = defaultdict(list)
    for node in nodes:
        by_module[node.run.partition(":")[0]].append(node)
    answers = _import_all(by_module, search_path(t.file, t.python_path), timeout)
    problems = []
    for module, users in by_module.items():
        answer = answers[module]
        for node in users:
            name = node.run.partition(":")[2]
            why = answer if isinstance(answer, str) else answer.get(name)
            if why:
                problems.append(Problem(node.where("run"), f"run: {node.run!r}: {why}"))
    return problems


def _import_all(by_module: dict[str, list[NodeSpec]], path: Sequence[str],
                timeout: float) -> dict[str, str | dict[str, str | None]]:
    """Per module: why it cannot be imported (text), or per name why it is no callable
    (None: it is one). Every child starts at once; all share one deadline."""
    deadline = time.monotonic() + timeout
    children: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for module, users in by_module.items():
            names = sorted({n.run.partition(":")[2] for n in users})
            read_end, write_end = os.pipe()
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, module, json.dumps(names), json.dumps(list(path)),
                     str(write_end)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    pass_fds=(write_end,), start_new_session=True,
                )
            finally:
                os.close(write_end)
            children[module] = (proc, read_end)
        return {module: _answer(module, proc, fd, deadline, timeout) for module, (proc, fd) in children.items()}
    finally:
        for proc, fd in children.values():
            if proc.poll() is None:
                _kill(proc)
            os.close(fd)


def _answer(module: str, proc: subprocess.Popen[bytes], fd: int, deadline: float,
            timeout: float) -> str | dict[str, str | None]:
    data = b""
    while len(data) <= _MAX_ANSWER:
        left = max(0.0, deadline - time.monotonic())  # an answer already there is read
        if not select.select([fd], [], [], left)[0]:
            _kill(proc)
            return (f"importing {module!r} did not finish within {timeout:g}s "
                    "(does it wait for something when imported?)")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    code = proc.wait(max(0.0, deadline - time.monotonic()) + 1.0)
    try:
        answer = json.loads(data)
    except ValueError:
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"importing {module!r} ended its process ({how}) before it could answer"
    if isinstance(answer, dict) and isinstance(answer.get("module"), str):
        return f"importing {module!r} failed: {answer['module']}"
    names = answer.get("names") if isinstance(answer, dict) else None
    if not isinstance(names, dict):
        return f"importing {module!r} gave no answer topo understands"
    return {str(k): (v if isinstance(v, str) else None) for k, v in names.items()}


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The child and whatever it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
