"""Where an applied plan's new parts live: ipc files no running socket has bound, and the
import path of the processes started from now on (:mod:`topo.supervisor.applying`)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from topo.plan.planner import MAX_IPC_NAME, Plan
from topo.plan.share import RUN_DIR


def unique_ipc(new: Plan, old: Plan, bound: dict[str, str]) -> Plan:
    """``new`` with each ipc endpoint it adds named by a file no endpoint of the run uses
    (bound now, or planned by ``old``)."""
    used = {_file(a) for a in bound.values()} | {_file(e.address) for e in old.endpoints.values()}
    changed: dict[str, str] = {}
    number = len(used)
    for key, ep in new.endpoints.items():
        if key in old.endpoints or not ep.address.startswith(f"ipc://{RUN_DIR}/"):
            continue
        name = _file(ep.address)
        slug = re.sub(r"^\d+-", "", name).removesuffix(".sock")
        while name in used:  # the planner's way of naming, with a number no file has
            name = f"{number}-{slug}"[:MAX_IPC_NAME - 5] + ".sock"
            number += 1
        used.add(name)
        if name != _file(ep.address):
            changed[key] = f"ipc://{RUN_DIR}/{name}"
    if not changed:
        return new
    endpoints = {k: replace(e, address=changed.get(k, e.address)) for k, e in new.endpoints.items()}
    by_address = {new.endpoints[k].address: a for k, a in changed.items()}
    links = tuple(replace(ln, endpoint=by_address.get(ln.endpoint, ln.endpoint)) for ln in new.links)
    return replace(new, endpoints=endpoints, links=links)


def import_path(sys_path: tuple[str, ...], old: Plan, new: Plan) -> tuple[str, ...]:
    """The node processes' ``sys.path`` head for the processes started from now on: the
    new ``python_path:`` instead of the old, then what ``topo up`` put there (its current
    directory, its file's), then the new file's directory if it is another."""
    kept = [p for p in sys_path if p not in old.python_path]
    extra = [str(Path(new.file).resolve().parent)] if Path(new.file).is_file() else []
    return tuple(dict.fromkeys([*new.python_path, *kept, *extra]))


def _file(address: str) -> str:
    return address.rpartition("/")[2]


def record_file(rd: Any, plan: Plan) -> None:
    """``run.json`` names the file the run now follows (``topo ps`` shows it); ``rd``: the
    run's :class:`topo.supervisor.rundir.RunDir`, if it has one."""
    from topo.supervisor.rundir import overlays_info, read_info

    info = read_info(rd.path) if rd is not None else None
    if rd is None or info is None:
        return
    for key in ("topology", "run_id", "log_dir", "sockets", "cwd", "overlays"):
        info.pop(key, None)
    rd.write_info(**{**info, "file": str(Path(plan.file).resolve()), **overlays_info(plan.overlays)})
