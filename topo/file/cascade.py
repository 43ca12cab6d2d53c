"""One mistake, one report: the mistakes whose consequences would bury them.

A misspelt ``links:`` leaves every socket without a link; a socket written twice keeps its
second type, which its links may not fit; a ``sockets:`` indented one level
too little reads as a node named ``sockets`` (with unknown keys, no ``run:``) and leaves the
node above it without the sockets its links name. The checks would report every one of
those consequences, the cause drowned among them. This module finds such causes in the
file as read, so that the loader can report each once, with what to do, and mark what it
broke (:attr:`topo.file.model.Topology.broken`) so that no later rule reports its
consequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from topo.errors import Pos, Problem
from topo.file.schema import SCHEMA
from topo.file.structure import INVALID, Path, did_you_mean, pos_of
from topo.file.yamltree import DUPLICATE

#: The keys of a node, which under ``nodes:`` are a sign of an indentation mistake.
NODE_KEYS = frozenset(SCHEMA["$defs"]["node"]["properties"])
_TOP_KEYS = frozenset(SCHEMA["properties"])


def links_unread(raw: Any, checked: Any) -> bool:
    """The file has links that could not be read: ``links:`` is not a list, or one of its
    links is wrong (reported by the schema: which sockets it meant is not known), or it is
    missing and a key written instead looks like it (``link:``)."""
    if not isinstance(raw, dict):
        return False
    if "links" in raw:
        links = checked.get("links") if isinstance(checked, dict) else None
        return raw["links"] is not None and not (isinstance(links, list) and INVALID not in links)
    return any(did_you_mean(key, ["links"]) for key in raw if key not in _TOP_KEYS)


def duplicated(problems: list[Problem], key_positions: Mapping[Path, Pos]) -> set[str]:
    """The nodes and sockets (``node``, ``node.socket``) written twice: YAML keeps the last,
    so what the links say of the first is a consequence, not a mistake of its own."""
    twice = {p.pos for p in problems if p.message.startswith(DUPLICATE)}
    if not twice:
        return set()
    names = set()
    for path, pos in key_positions.items():
        if pos in twice and path[:1] == ("nodes",):
            if len(path) == 2:
                names.add(str(path[1]))
            elif len(path) == 4 and path[2] == "sockets":
                names.add(f"{path[1]}.{path[3]}")
    return names


@dataclass(frozen=True)
class Misplaced:
    """A node's key written at the level of node names: it reads as a node of that name."""

    key: str
    #: The node above it, whose key it most likely is (None: it is the first under ``nodes:``).
    owner: str | None
    #: The column the owner's own keys start at, when it has any.
    column: int | None
    start: Pos
    end: Pos

    def covers(self, pos: Pos) -> bool:
        """Whether a problem at ``pos`` is about the misplaced key or what it holds."""
        return pos.file == self.start.file and \
            (self.start.line, self.start.col) <= (pos.line, pos.col) < (self.end.line, self.end.col)

    def problem(self) -> Problem:
        if self.owner is None:
            return Problem(self.start, f"`{self.key}:` is written where a node's name goes, so it reads as a node named {self.key!r}: a node is `NAME:` with its keys indented under it")
        where = f" (column {self.column}, as its other keys)" if self.column else ""
        return Problem(self.start, f"`{self.key}:` is indented as a node's name, so it reads as a node named {self.key!r}: indent it under node {self.owner!r}{where}")


def misplaced_node_keys(root: yaml.Node, file: str, problems: list[Problem]) -> list[Misplaced]:
    """Keys under ``nodes:`` named like a node's keys whose value is not a node (it holds
    no node key) and has problems: ``sockets:``, ``run:``, ``replicas:``... indented a
    level too little. A node really named ``env`` or ``host`` has a ``run:`` or other node
    keys, or no problem of its own, and stays."""
    return [m for m in _misplaced(root, file) if any(m.covers(p.pos) for p in problems)]


def _misplaced(root: yaml.Node, file: str) -> list[Misplaced]:
    nodes = _value(root, "nodes")
    if not isinstance(nodes, yaml.MappingNode):
        return []
    found: list[Misplaced] = []
    owner: yaml.Node | None = None
    owner_value: yaml.Node | None = None
    for key, value in nodes.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if isinstance(name, str) and name in NODE_KEYS and not _is_node(value):
            column = None
            if isinstance(owner_value, yaml.MappingNode) and owner_value.value and \
                    owner_value.flow_style is not True:
                column = owner_value.value[0][0].start_mark.column + 1
            end = value.end_mark
            found.append(Misplaced(name, owner.value if owner is not None else None, column,
                                   pos_of(file, key), Pos(file, end.line + 1, end.column + 1)))
        else:
            owner, owner_value = key, value
    return found


def _is_node(value: yaml.Node) -> bool:
    return isinstance(value, yaml.MappingNode) and any(
        isinstance(k, yaml.ScalarNode) and k.value in NODE_KEYS for k, _ in value.value)


def _value(mapping: yaml.Node, name: str) -> yaml.Node | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return value  # type: ignore[no-any-return]
    return None


def misplaced_problems(found: list[Misplaced], problems: list[Problem]) -> list[Problem]:
    """``problems`` without those inside a misplaced key, and one problem for each instead."""
    if not found:
        return problems
    kept = [p for p in problems if not any(m.covers(p.pos) for m in found)]
    return kept + [m.problem() for m in found]
