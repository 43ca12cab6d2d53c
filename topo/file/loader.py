"""Topology file → :class:`topo.file.model.Topology`, every value keeping its source position.

Reading is three steps: YAML is composed into nodes (which carry line and column), the
tree is checked against the schema (:mod:`topo.file.structure`), and the checked values become
the typed model. Problems are collected, never raised one at a time, so the user sees
every mistake of the file in one run.
"""

from __future__ import annotations

import re
from pathlib import Path as FsPath
from typing import Any, Mapping

import yaml

from topo.errors import InvalidTopology, Pos, Problem, UsageError
from topo.file.model import (
    HostSpec, LinkSpec, NodeSpec, OnExit, Restart, SocketRef, SocketSpec, SocketType,
    Topology, Transport,
)
from topo.file.schema import SCHEMA
from topo.file.structure import INVALID, Checker, Path, _TooLarge, pos_of

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SHORT_LINK = re.compile(r"^\s*([\w-]+)\.([\w-]+)\s*->\s*([\w-]+)\.([\w-]+)\s*$")
_DEFAULT_HOST = "local"
_DEFAULT_ADDRESS = "127.0.0.1"


def read_file(path: str) -> tuple[Topology | None, list[Problem]]:
    """Reads and checks the structure of a file; semantic rules are :mod:`topo.file.validate`'s."""
    try:
        data = FsPath(path).read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read the file: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        before = data[data.rfind(b"\n", 0, err.start) + 1:err.start]
        col = len(before.decode("utf-8", "replace")) + 1
        return None, [Problem(Pos(path, line, col), "the file is not UTF-8 text")]
    return load_text(text, path)


def load_text(text: str, file: str = "<string>") -> tuple[Topology | None, list[Problem]]:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        return None, [_too_deep(file)]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)
        what = " ".join(p for p in (err.context, err.problem) if p)
        return None, [Problem(pos, f"YAML syntax error: {what}")]
    except yaml.YAMLError as err:
        return None, [Problem(Pos(file, 1, 1), f"YAML error: {err}")]
    if root is None:
        return None, [Problem(Pos(file, 1, 1), "the file is empty: it needs at least `topology:` and `nodes:`")]
    if not isinstance(root, yaml.MappingNode):
        return None, [Problem(pos_of(file, root), "the file must be a mapping with `topology:` and `nodes:`, not a list or a value")]
    ctor = _Constructor()
    problems: list[Problem] = []
    try:
        _prepare(file, root, ctor, problems, set())
        checker = Checker(file, ctor)
        raw = checker.plain(root, (), problems)
    except RecursionError:
        return None, [_too_deep(file)]
    except _TooLarge as err:
        return None, [Problem(err.pos, "the file expands to too many values (aliases nested too deep?)")]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)
        return None, [Problem(pos, f"YAML error: {getattr(err, 'problem', err)}")]
    checked = checker.check(raw, SCHEMA, (), problems)
    builder = _Builder(file, checker)
    return builder.topology(checked), problems


def _too_deep(file: str) -> Problem:
    return Problem(Pos(file, 1, 1), "the file is nested too deep to read")


class _Constructor(yaml.constructor.SafeConstructor):
    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Applies ``<<`` merges keeping only the pair that wins for each key, so that
        merges of merges cannot multiply a mapping's size (a "merge bomb")."""
        super().flatten_mapping(node)
        seen: set[tuple[str, str]] = set()
        kept = []
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in seen:
                    continue
                seen.add((key.tag, key.value))
            kept.append((key, value))
        kept.reverse()
        node.value = kept


def _prepare(file: str, node: yaml.Node, ctor: Any, problems: list[Problem], seen: set[int]) -> None:
    """Reports duplicate keys (YAML would silently keep the last) and applies ``<<`` merges."""
    if id(node) in seen or isinstance(node, yaml.ScalarNode):
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                ident = (key.tag, key.value)
                if ident in first:
                    line = first[ident].start_mark.line + 1
                    problems.append(Problem(pos_of(file, key), f"duplicate key {key.value!r} (first written on line {line})"))
                else:
                    first[ident] = key
        ctor.flatten_mapping(node)
        children = [n for pair in node.value for n in pair]
    else:
        children = list(node.value)
    for child in children:
        _prepare(file, child, ctor, problems, seen)


class _Builder:
    """Turns checked plain values into the model; INVALID parts become ``broken`` names."""

    def __init__(self, file: str, checker: Checker) -> None:
        self.file = file
        self.c = checker
        self.broken: set[str] = set()

    def pos(self, path: Path) -> Pos:
        return self.c.key_positions.get(path) or self.c.positions.get(path) or Pos(self.file, 1, 1)

    def at(self, path: Path, keys: Any) -> dict[str, Pos]:
        return {str(k): self.c.positions[path + (k,)] for k in keys if path + (k,) in self.c.positions}

    def topology(self, raw: Any) -> Topology:
        raw = raw if isinstance(raw, dict) else {}
        hosts = self.hosts(raw.get("hosts"))
        defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
        nodes: dict[str, NodeSpec] = {}
        raw_nodes = raw.get("nodes")
        if isinstance(raw_nodes, dict):
            for name, value in raw_nodes.items():
                nodes[name] = self.node(name, value, defaults)
        links = tuple(
            link
            for i, value in enumerate(raw.get("links") or [] if raw.get("links") is not INVALID else [])
            if (link := self.link(i, value)) is not None
        )
        name = raw.get("topology")
        return Topology(
            name=name if isinstance(name, str) else "",
            file=self.file,
            pos=Pos(self.file, 1, 1),
            nodes=nodes,
            hosts=hosts,
            links=links,
            broken=frozenset(self.broken),
            at=self.at((), raw.keys()),
        )

    def hosts(self, raw: Any) -> dict[str, HostSpec]:
        if not isinstance(raw, dict) or not raw:
            return {_DEFAULT_HOST: HostSpec(_DEFAULT_HOST, _DEFAULT_ADDRESS, Pos(self.file, 1, 1))}
        out = {}
        for name, value in raw.items():
            path: Path = ("hosts", name)
            if not isinstance(value, dict) or not isinstance(value.get("address"), str):
                self.broken.add(f"host:{name}")
                value = {}
            launch = value.get("launch")
            out[name] = HostSpec(
                name=name,
                address=value.get("address", _DEFAULT_ADDRESS),
                pos=self.pos(path),
                launch=tuple(launch) if isinstance(launch, list) and INVALID not in launch else None,
                python=value.get("python") if isinstance(value.get("python"), str) else None,
                at=self.at(path, value.keys()),
            )
        return out

    def node(self, name: str, value: Any, defaults: Mapping[str, Any]) -> NodeSpec:
        path: Path = ("nodes", name)
        if not isinstance(value, dict):
            self.broken.add(name)
            return NodeSpec(name=name, run="", pos=self.pos(path))
        merged = {k: v for k, v in defaults.items() if v is not INVALID}
        for key in ("args", "env"):
            if isinstance(merged.get(key), dict) and isinstance(value.get(key), dict):
                value = {**value, key: {**merged[key], **value[key]}}
        merged.update(value)
        run = merged.get("run")
        if run is INVALID:
            self.broken.add(name)

        at = self.at(("defaults",), defaults.keys())
        at.update(self.at(path, value.keys()))
        sockets: dict[str, SocketSpec] = {}
        raw_sockets = merged.get("sockets")
        sockets_path = path + ("sockets",) if "sockets" in value else ("defaults", "sockets")
        if isinstance(raw_sockets, dict):
            for sname, svalue in raw_sockets.items():
                sockets[sname] = self.socket(name, sname, svalue, sockets_path + (sname,))
        elif raw_sockets is INVALID:
            self.broken.add(name)
        restart = merged.get("restart")
        return NodeSpec(
            name=name,
            run=run if isinstance(run, str) else "",
            pos=self.pos(path),
            sockets=sockets,
            process=_str_or_none(merged.get("process")),
            host=_str_or_none(merged.get("host")),
            replicas=merged["replicas"] if isinstance(merged.get("replicas"), int) else 1,
            args=merged["args"] if isinstance(merged.get("args"), dict) else {},
            env={str(k): _env_text(v) for k, v in (merged.get("env") or {}).items() if v is not INVALID}
            if isinstance(merged.get("env"), dict) else {},
            restart=Restart.NO if restart in (None, False, INVALID) else Restart(restart),
            on_exit=OnExit(merged["on_exit"]) if isinstance(merged.get("on_exit"), str) else OnExit.CONTINUE,
            max_restarts=merged["max_restarts"] if isinstance(merged.get("max_restarts"), int) else 5,
            restart_window=float(merged["restart_window"]) if isinstance(merged.get("restart_window"), (int, float)) else 60.0,
            at=at,
        )

    def socket(self, node: str, name: str, value: Any, path: Path) -> SocketSpec:
        if isinstance(value, str):
            return SocketSpec(name=name, type=SocketType(value), pos=self.pos(path))
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            self.broken.add(f"{node}.{name}")
            return SocketSpec(name=name, type=SocketType.PAIR, pos=self.pos(path))
        subscribe = value.get("subscribe", [])
        if isinstance(subscribe, str):
            subscribe = [subscribe]
        options = value.get("options")
        return SocketSpec(
            name=name,
            type=SocketType(value["type"]),
            pos=self.pos(path),
            subscribe=tuple(s for s in subscribe if isinstance(s, str)) if isinstance(subscribe, list) else (),
            bind=value.get("bind") if isinstance(value.get("bind"), bool) else None,
            options={k: v for k, v in options.items() if v is not INVALID} if isinstance(options, dict) else {},
            at=self.at(path, value.keys()),
        )

    def link(self, index: int, value: Any) -> LinkSpec | None:
        path: Path = ("links", index)
        pos = self.c.positions.get(path, Pos(self.file, 1, 1))
        if isinstance(value, str):
            m = _SHORT_LINK.match(value)
            if m is None:
                return None
            src, dst = SocketRef(m[1], m[2]), SocketRef(m[3], m[4])
            text = self.c.text_positions.get(path, pos)
            return LinkSpec(
                src=src, dst=dst, pos=pos,
                src_pos=Pos(self.file, text.line, text.col + m.start(1)),
                dst_pos=Pos(self.file, text.line, text.col + m.start(3)),
            )
        if not isinstance(value, dict) or not isinstance(value.get("from"), str) or not isinstance(value.get("to"), str):
            return None
        transport = value.get("transport")
        at = self.at(path, value.keys())
        return LinkSpec(
            src=SocketRef(*value["from"].split(".", 1)),
            dst=SocketRef(*value["to"].split(".", 1)),
            pos=pos,
            transport=Transport(transport) if isinstance(transport, str) else None,
            src_pos=at.get("from"),
            dst_pos=at.get("to"),
            at=at,
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def raise_if(problems: list[Problem]) -> None:
    if problems:
        raise InvalidTopology(problems)
