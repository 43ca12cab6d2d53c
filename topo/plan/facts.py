"""A plan as the plain, comparable facts ``topo apply`` diffs: what each instance, process,
host and link is, and nothing of where it happens to be bound.

Why not the plan itself, or its ``to_json``: the running plan lives in the run's
supervisor and reaches ``topo apply`` as JSON, and ``to_json`` (what ``topo plan --json``
prints and a recording keeps) leaves out what a change can be made of (``args``, a node's
own ``env``, its restart settings, socket options). Why not addresses: two plannings of
the same file need not give an unchanged link the same one. An ipc file is numbered in
the order the planner meets endpoints (``3-worker.in.sock``), so adding one node renumbers
every endpoint after it; a tcp port is the kernel's choice at bind time (``:*``); the run
directory is only ``{run_dir}`` here. A link is therefore known by its two ends
(``INSTANCE.SOCKET``) and compared by transport, which end binds, and security; an
endpoint by its key (binding ``INSTANCE.SOCKET/TRANSPORT``), which the planner derives
from names alone.

Values a user writes freely (``args``, socket ``options``) are kept as canonical JSON text
(keys sorted, anything JSON cannot say as its ``repr``), so equal values compare equal
whichever side of the control socket they were made on.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from topo.plan.planner import Plan


def canonical(value: Any) -> str:
    """One text per value: keys sorted; what JSON cannot say (a YAML date) as its repr."""
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))


def facts_of(plan: Plan) -> dict[str, Any]:
    """The facts of ``plan``: JSON-able, and what :func:`topo.plan.diff.diff` compares."""
    return {
        "topology": plan.topology,
        "python_path": list(plan.python_path),
        "hosts": {h.name: {"address": h.address, "launch": list(h.launch) if h.launch else None,
                           "python": h.python} for h in plan.hosts},
        "processes": {p.name: {"host": p.host, "instances": list(p.instances), "env": dict(p.env)}
                      for p in plan.processes},
        "instances": {
            i.name: {
                "node": i.node, "replica": i.replica, "replicas": i.replicas, "run": i.run,
                "process": i.process, "host": i.host, "args": canonical(dict(i.args)), "env": dict(i.env),
                "restart": i.restart.value, "on_exit": i.on_exit.value, "max_restarts": i.max_restarts,
                "restart_window": i.restart_window, "exec": list(i.exec), "ready": i.ready,
                "sockets": {
                    s.name: {"type": s.type.value, "subscribe": list(s.subscribe),
                             "options": canonical(dict(s.options)),
                             "external": sorted([*(f"bind {a}" for a in s.external_binds),
                                                 *(f"connect {a}" for a in s.external_connects)])}
                    for s in i.sockets
                },
            }
            for i in plan.instances.values()
        },
        "links": {
            f"{ln.src_instance} -> {ln.dst_instance}": {
                "from": ln.src_instance, "to": ln.dst_instance, "transport": ln.transport.value,
                "binds": ln.bind_instance, "secure": ln.secure,
                "max_message": _max_message(plan, f"{ln.bind_instance}/{ln.transport.value}"),
            }
            for ln in plan.links
        },
    }


def _max_message(plan: Plan, key: str) -> int:
    endpoint = plan.endpoints.get(key)
    return endpoint.max_message if endpoint is not None else 0


def endpoint_of(link: Mapping[str, Any]) -> str:
    """A link's endpoint key, as the planner names it: the binding socket and transport."""
    return f"{link['binds']}/{link['transport']}"


def kept_binds(facts: Mapping[str, Any]) -> dict[str, bool]:
    """Which end of each running link binds, per link as written (``NODE.SOCKET ->
    NODE.SOCKET``: True, its ``from`` end), for :func:`topo.plan.planner.make_plan`'s
    ``keep_binds``: an edit then rewires no link it did not change."""
    instances = facts["instances"]
    out: dict[str, bool] = {}
    for link in facts["links"].values():
        src_inst, _, src_sock = link["from"].rpartition(".")
        dst_inst, _, dst_sock = link["to"].rpartition(".")
        if src_inst in instances and dst_inst in instances:
            key = f"{instances[src_inst]['node']}.{src_sock} -> {instances[dst_inst]['node']}.{dst_sock}"
            out[key] = link["binds"] == link["from"]
    return out


class BadFacts(ValueError):
    """Facts that are not what :func:`facts_of` makes (from a foreign or broken run)."""


_SHAPE: dict[str, type] = {"topology": str, "python_path": list, "hosts": dict, "processes": dict,
                           "instances": dict, "links": dict}
_INSTANCE: dict[str, type | tuple[type, ...]] = {
    "node": str, "replica": int, "replicas": int, "run": str, "process": str, "host": str, "args": str,
    "env": dict, "restart": str, "on_exit": str, "max_restarts": int, "restart_window": (int, float),
    "exec": list, "ready": str, "sockets": dict}
_SOCKET: dict[str, type] = {"type": str, "subscribe": list, "options": str, "external": list}
_LINK: dict[str, type] = {"from": str, "to": str, "transport": str, "binds": str, "secure": bool,
                          "max_message": int}


def checked(data: Any) -> dict[str, Any]:
    """Facts received from a run, checked for the shape :func:`facts_of` gives (nothing
    outside is trusted): :class:`BadFacts` otherwise."""
    _fields(data, _SHAPE, "facts")
    for name, proc in data["processes"].items():
        _fields(proc, {"host": str, "instances": list, "env": dict}, f"process {name}")
    for name, host in data["hosts"].items():
        _fields(host, {"address": str}, f"host {name}")
    for name, inst in data["instances"].items():
        _fields(inst, _INSTANCE, f"instance {name}")
        if inst["process"] not in data["processes"]:
            raise BadFacts(f"instance {name}: no process {inst['process']!r}")
        for sname, sock in inst["sockets"].items():
            _fields(sock, _SOCKET, f"socket {name}.{sname}")
    for key, link in data["links"].items():
        _fields(link, _LINK, f"link {key}")
        for end in (link["from"], link["to"]):
            if end.rpartition(".")[0] not in data["instances"]:
                raise BadFacts(f"link {key}: no instance for {end!r}")
        if link["binds"] not in (link["from"], link["to"]):
            raise BadFacts(f"link {key}: binds neither of its ends")
    return dict(data)


def _fields(data: Any, shape: Mapping[str, type | tuple[type, ...]], what: str) -> None:
    if not isinstance(data, dict):
        raise BadFacts(f"{what}: not a mapping")
    for key, kind in shape.items():
        if not isinstance(data.get(key), kind):
            raise BadFacts(f"{what}: {key!r} missing or of the wrong type")
