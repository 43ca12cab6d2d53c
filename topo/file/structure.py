"""Checks a composed YAML tree against :data:`topo.file.schema.SCHEMA`, keeping positions.

It interprets the subset of JSON Schema the schema uses (type, enum, pattern, maxLength,
properties, patternProperties, additionalProperties, propertyNames, required, items,
minimum, maximum, minItems, minProperties, anyOf, $ref), so the schema editors see and the
checks the user gets cannot drift apart. It returns plain Python values in which every part that failed
is replaced by :data:`INVALID`, so later stages can skip what was already reported.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Iterable

import yaml

from topo.errors import Pos, Problem
from topo.file.schema import PATTERN_HINTS, SCHEMA

Path = tuple[Any, ...]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()

#: The only tags a list or a mapping may carry: YAML's own, which plain ones resolve to.
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:omap"})

_KIND_OF_TAG = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
}
_ARTICLE = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "null": "empty", "object": "a mapping", "array": "a list",
}


def pos_of(file: str, node: yaml.Node) -> Pos:
    return Pos(file, node.start_mark.line + 1, node.start_mark.column + 1)


def describe(path: Path) -> str:
    """``nodes.server.sockets.out`` — how a user finds the place in the file by its keys."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    if not isinstance(word, str):
        return ""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _fits(kind: str, wanted: str) -> bool:
    return kind == wanted or (wanted == "number" and kind == "integer")


def _whole(value: float) -> bool:
    return math.isfinite(value) and float(value).is_integer()


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class Checker:
    """One pass over one file's tree; collects problems and the position of every value."""

    def __init__(self, file: str, constructor: yaml.constructor.SafeConstructor, unread: set[int] | None = None,
                 layers: Iterable[str] = ()) -> None:
        self.file = file
        #: The overlays' files (and ``--set``): a node marked with one of them was written
        #: there (:func:`topo.file.layers.relocate`), any other in ``file``.
        self.layers = frozenset(layers)
        self.ctor = constructor
        #: Scalars (by id) whose value is already a reported problem (a variable without a value).
        self.unread = unread or set()
        self.problems: list[Problem] = []
        self.positions: dict[Path, Pos] = {}
        self.key_positions: dict[Path, Pos] = {}
        #: Where a one-line scalar's text starts (after its opening quote, if quoted).
        self.text_positions: dict[Path, Pos] = {}
        #: How many values may be read again through an alias: a few anchors are
        #: normal, a "billion laughs" file would expand without end.
        self._budget = 100_000
        self._seen: set[int] = set()
        self._active: set[int] = set()

    # -- building plain values ---------------------------------------------------------

    def plain(self, node: yaml.Node, path: Path, problems: list[Problem]) -> Any:
        """The node as Python data, with each scalar's kind decided by YAML's rules."""
        if id(node) in self._seen:
            self._budget -= 1
            if self._budget < 0:
                raise _TooLarge(self._node_pos(node))
        else:
            self._seen.add(id(node))
        start = self.positions[path] = self._node_pos(node)
        if isinstance(node, yaml.ScalarNode):
            if id(node) in self.unread:
                return INVALID
            if node.tag not in _KIND_OF_TAG and node.tag != "tag:yaml.org,2002:timestamp":
                problems.append(self._at(node, f"{describe(path)}: unsupported tag {node.tag}"))
                return INVALID
            self.text_positions[path] = Pos(start.file, start.line, start.col + (1 if node.style in ("'", '"') else 0))
            try:
                return self.ctor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError) as err:
                problems.append(self._at(node, f"{describe(path)}: cannot read value ({err})"))
                return INVALID
        if id(node) in self._active:
            problems.append(self._at(node, f"{describe(path)}: an alias refers to itself"))
            return INVALID
        if node.tag not in _COLLECTION_TAGS:  # `!!python/object/apply:... [...]`, `!foo {x: 1}`
            problems.append(self._at(node, f"{describe(path)}: unsupported tag {node.tag}"))
            return INVALID
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.plain(item, path + (i,), problems) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.plain(key_node, path + ("<key>",), problems)
                if isinstance(key, (dict, list)):
                    problems.append(self._at(key_node, f"{describe(path)}: a key must be a scalar"))
                    continue
                self.key_positions[path + (key,)] = self._node_pos(key_node)
                out[key] = self.plain(value_node, path + (key,), problems)
            return out
        finally:
            self._active.discard(id(node))

    # -- checking against the schema ---------------------------------------------------

    def check(self, value: Any, schema: dict[str, Any], path: Path, problems: list[Problem]) -> Any:
        """Returns ``value`` with every failing part replaced by INVALID."""
        if value is INVALID:
            return INVALID
        if "$ref" in schema:
            schema = self._resolve(schema["$ref"])
        if "anyOf" in schema:
            return self._any_of(value, schema["anyOf"], path, problems)
        where = self._pos(path)
        kind = _kind(value)
        if "type" in schema:
            wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if kind == "number" and "integer" in wanted and _whole(value):
                # JSON Schema (so every editor) counts 2.0 as the integer 2.
                value, kind = int(value), "integer"
            if not any(_fits(kind, w) for w in wanted):
                expected = " or ".join(str(_ARTICLE.get(w, w)) for w in wanted)
                problems.append(Problem(where, f"{describe(path)} must be {expected}, not {_ARTICLE.get(kind, kind)}"))
                return INVALID
        if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
            shown = ", ".join("no" if e is False else str(e) for e in schema["enum"] if e is not False or "no" not in schema["enum"])
            problems.append(Problem(where, f"{describe(path)} must be one of {shown}; got {value!r}{did_you_mean(value, schema['enum'])}"))
            return INVALID
        if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
            hint = PATTERN_HINTS.get(schema["pattern"], f"text matching {schema['pattern']}")
            problems.append(Problem(where, f"{describe(path)} must be {hint}; got {value!r}"))
            return INVALID
        if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
            problems.append(Problem(where, f"{describe(path)} is {len(value)} characters long; "
                                           f"at most {schema['maxLength']} (it names files)"))
            return INVALID
        if kind in ("integer", "number") and "minimum" in schema and not value >= schema["minimum"]:  # NaN fails too
            problems.append(Problem(where, f"{describe(path)} must be at least {schema['minimum']}; got {value}"))
            return INVALID
        if kind in ("integer", "number") and "maximum" in schema and not value <= schema["maximum"]:
            problems.append(Problem(where, f"{describe(path)} must be at most {schema['maximum']}; got {value}"))
            return INVALID
        if kind == "object":
            return self._object(value, schema, path, problems)
        if kind == "array":
            if len(value) < schema.get("minItems", 0):
                problems.append(Problem(where, f"{describe(path)} must have at least {schema['minItems']} item(s)"))
                return INVALID
            items = schema.get("items")
            if items is not None:
                return [self.check(v, items, path + (i,), problems) for i, v in enumerate(value)]
        return value

    def _object(self, value: dict[Any, Any], schema: dict[str, Any], path: Path, problems: list[Problem]) -> Any:
        props: dict[str, Any] = schema.get("properties", {})
        patterns: dict[str, Any] = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        out: dict[Any, Any] = {}
        for key, child in value.items():
            key_pos = self.key_positions.get(path + (key,), self._pos(path))
            if names is not None and not self._name_ok(key, names, path, key_pos, problems):
                continue
            if key in props:
                out[key] = self.check(child, props[key], path + (key,), problems)
            elif isinstance(key, str) and any(re.search(p, key) for p in patterns):
                out[key] = child
            elif extra is False:
                where = describe(path)
                problems.append(Problem(key_pos, f"unknown key {key!r} in {where}{did_you_mean(key, props)}"))
            else:
                out[key] = self.check(child, extra, path + (key,), problems) if isinstance(extra, dict) else child
        for key in schema.get("required", []):
            if key not in value:
                problems.append(Problem(self._owner_pos(path), f"{describe(path)}: missing required key {key!r}"))
        if len(value) < schema.get("minProperties", 0):
            problems.append(Problem(self._owner_pos(path), f"{describe(path)} must not be empty"))
        return out

    def _name_ok(self, key: Any, names: dict[str, Any], path: Path, pos: Pos, problems: list[Problem]) -> bool:
        if not isinstance(key, str):
            problems.append(Problem(pos, f"{describe(path)}: key {key!r} must be text: quote it (YAML reads a bare yes, no, on, off, true, false, a number or a date as a value, not as a name)"))
            return False
        if "pattern" in names and not re.search(names["pattern"], key):
            hint = PATTERN_HINTS.get(names["pattern"], names["pattern"])
            problems.append(Problem(pos, f"{describe(path)}: {key!r} is not a valid name: use {hint}"))
            return False
        if len(key) > names.get("maxLength", len(key)):
            problems.append(Problem(pos, f"{describe(path)}: {key[:20]!r}... is {len(key)} characters long; "
                                         f"at most {names['maxLength']} (it names files)"))
            return False
        if "enum" in names and key not in names["enum"]:
            problems.append(Problem(pos, f"unknown key {key!r} in {describe(path)}{did_you_mean(key, names['enum'])}"))
            return False
        return True

    def _any_of(self, value: Any, branches: list[dict[str, Any]], path: Path, problems: list[Problem]) -> Any:
        kind = _kind(value)
        tried: list[tuple[dict[str, Any], list[Problem]]] = []
        for branch in branches:
            resolved = self._resolve(branch["$ref"]) if "$ref" in branch else branch
            local: list[Problem] = []
            result = self.check(value, resolved, path, local)
            if not local:
                return result
            tried.append((resolved, local))
        fitting = [(resolved, local) for resolved, local in tried
                   if kind in self._kinds(resolved) or (kind == "integer" and "number" in self._kinds(resolved))]
        # of two mappings, the one whose required keys are there is what was meant
        # (hosts: {from: slurm, ...} against a mapping of hosts)
        fitting.sort(key=lambda t: not (isinstance(value, dict) and all(k in value for k in t[0].get("required", []))))
        for resolved, local in fitting:
            problems.extend(local)
            return INVALID
        wanted = sorted({k for resolved, _ in tried for k in self._kinds(resolved)})
        expected = " or ".join(_ARTICLE.get(w, w) for w in wanted)
        problems.append(Problem(self._pos(path), f"{describe(path)} must be {expected}, not {_ARTICLE.get(kind, kind)}"))
        return INVALID

    def _kinds(self, schema: dict[str, Any]) -> set[str]:
        if "type" in schema:
            return set(schema["type"] if isinstance(schema["type"], list) else [schema["type"]])
        if "enum" in schema:
            return {_kind(e) for e in schema["enum"]}
        return set()

    def _resolve(self, ref: str) -> dict[str, Any]:
        target: Any = SCHEMA
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return target  # type: ignore[no-any-return]

    def _pos(self, path: Path) -> Pos:
        return self.positions.get(path) or self.key_positions.get(path) or Pos(self.file, 1, 1)

    def _owner_pos(self, path: Path) -> Pos:
        """A missing key is reported where the mapping that lacks it is named."""
        return self.key_positions.get(path) or self._pos(path)

    def _at(self, node: yaml.Node, message: str) -> Problem:
        return Problem(self._node_pos(node), message)

    def _node_pos(self, node: yaml.Node) -> Pos:
        mark = node.start_mark
        file = mark.name if self.layers and mark.name in self.layers else self.file
        return Pos(file, mark.line + 1, mark.column + 1)


class _TooLarge(Exception):
    def __init__(self, pos: Pos) -> None:
        self.pos = pos
