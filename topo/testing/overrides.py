"""Editing a topology for a test, before it is loaded: node overrides and probe sockets.

Works on the plain mapping of the file, as ``topo config`` prints it (:func:`resolved`),
so that the result goes through the same loader, validation and plan as any file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from topo.errors import InvalidTopology, TopoError
from topo.file.model import SocketType
from topo.file.sources import Sources, read

PROBE_NODE = "_probe"
PROBE_PROCESS = "_test"
#: A probe of one of these types is the sending (or client) end of its link.
_SENDERS = {SocketType.PUB, SocketType.XPUB, SocketType.PUSH, SocketType.REQ, SocketType.DEALER}


class OverrideError(TopoError):
    """An override or a probe that does not fit the topology."""


@dataclass(frozen=True)
class Probe:
    """A socket of the test, linked to ``target`` (``NODE.SOCKET``) before launch.

    The type says the direction: a SUB or PULL probe receives from the target, a PUB, PUSH,
    REQ or DEALER probe sends to it (a REQ probe to a REP or ROUTER is a client).
    """

    type: str
    target: str
    subscribe: tuple[str, ...] | list[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


def apply(data: dict[str, Any], overrides: Mapping[str, Mapping[str, Any] | None],
           probes: Mapping[str, Probe]) -> dict[str, Any]:
    nodes = data.setdefault("nodes", {})
    if probes and PROBE_NODE in nodes:
        raise OverrideError(f"the topology has a node named {PROBE_NODE!r}, the name the probes use")
    for name, keys in overrides.items():
        if name not in nodes:
            raise OverrideError(f"override of node {name!r}, which is not in the topology")
        if keys is None:  # the node is left out, with its links: a probe may stand in for it
            del nodes[name]
            data["links"] = [ln for ln in data.get("links") or [] if name not in _link_nodes(ln)]
            continue
        node = nodes[name]
        for key, value in keys.items():
            if key in ("args", "env") and isinstance(node.get(key), dict):
                node[key] = {**node[key], **value}
            else:
                node[key] = value
    if probes:
        sockets: dict[str, Any] = {}
        links = data.setdefault("links", []) or []
        for name, probe in probes.items():
            kind = SocketType(probe.type.upper())
            spec: dict[str, Any] = {"type": kind.value}
            if probe.subscribe:
                spec["subscribe"] = list(probe.subscribe)
            if probe.options:
                spec["options"] = dict(probe.options)
            sockets[name] = spec
            ours = f"{PROBE_NODE}.{name}"
            links.append({"from": ours, "to": probe.target} if kind in _SENDERS
                         else {"from": probe.target, "to": ours})
        nodes[PROBE_NODE] = {"run": "topo.testing:probe_placeholder", "process": PROBE_PROCESS,
                             "host": _local_host(data), "sockets": sockets}
        data["links"] = links
    return data


def _link_nodes(link: Any) -> set[str]:
    if isinstance(link, str):
        return {end.strip().split(".", 1)[0] for end in link.split("->")}
    if isinstance(link, Mapping):
        return {str(link.get(k, "")).split(".", 1)[0] for k in ("from", "to")}
    return set()


def _local_host(data: Mapping[str, Any]) -> str:
    hosts = data.get("hosts") or {}
    return "local" if "local" in hosts or not hosts else next(iter(hosts))


def resolved(sources: Sources) -> dict[str, Any]:
    """The topology's plain values as ``topo config`` prints them, to be edited and loaded
    again: read by the same path as ``topo up`` reads it (``${VAR}``, ``.env``, overlays,
    profiles), so a ``$`` left in a value is written ``$$`` (not read twice), and the
    selected nodes' ``profiles:`` are dropped (the copy is read with none selected)."""
    result = read(sources)
    if result.problems or not isinstance(result.data, dict):
        raise InvalidTopology(result.problems)
    data: dict[str, Any] = _escaped(result.data)
    for node in (data.get("nodes") or {}).values():
        if isinstance(node, dict):
            node.pop("profiles", None)
    return data


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def anchored(data: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The values a file means relative to its own directory (``python_path:``), made
    absolute: the copy the harness loads lies in a directory of its own."""
    entries = data.get("python_path")
    if isinstance(entries, str):
        entries = [entries]
    if isinstance(entries, list):
        data = {**data, "python_path": [str(directory.resolve() / e) if isinstance(e, str) else e for e in entries]}
    return data
