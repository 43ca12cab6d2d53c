"""Topology file → :class:`topo.file.model.Topology`, every value keeping its source position.

Reading is three steps: YAML is composed into nodes which carry line and column, with
merges applied (:mod:`topo.file.yamltree`), the tree is checked against the schema
(:mod:`topo.file.structure`), and the checked values become the typed model. Problems are
collected, never raised one at a time, so the user sees every mistake of the file in one
run.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any, Iterable, Mapping

import yaml

from topo.errors import InvalidTopology, Pos, Problem, UsageError
from topo.file.cascade import duplicated, links_unread, misplaced_node_keys, misplaced_problems
from topo.file.interpolate import variables
from topo.file.layers import clean, has_tags, select
from topo.file.model import (
    DEFAULT_MAX_MESSAGE, LINKS_UNREAD, AllocationSpec, ExternalEndpoint, HostSpec, LinkSpec, NodeSpec, OnExit, Ready, Restart, SocketRef, SocketSpec, SocketType,
    Topology, Transport,
)
from topo.file.schema import SCHEMA
from topo.file.structure import INVALID, Checker, Path, _TooLarge, pos_of
from topo.file.yamltree import compose, too_deep

#: The largest topology file read: far beyond any hand-written one (a 10,000-node file is
#: about 1 MB), small enough that reading and composing it stays bounded.
MAX_FILE_BYTES = 16 * 2**20
_SHORT_LINK = re.compile(r"^\s*([\w-]+)\.([\w-]+)\s*->\s*([\w-]+)\.([\w-]+)\s*$")
_DEFAULT_HOST = "local"
_DEFAULT_ADDRESS = "127.0.0.1"


def read_file(path: str) -> tuple[Topology | None, list[Problem]]:
    """Reads and checks the structure of a file; semantic rules are :mod:`topo.file.validate`'s."""
    return load_bytes(read_bounded(path), path)


def read_bounded(path: str) -> bytes:
    """A regular file's bytes, at most :data:`MAX_FILE_BYTES` of them. Anything else is
    refused before a byte is read: a FIFO would block the read forever, ``/dev/zero``
    would fill the memory."""
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to returns at once, to be refused
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise UsageError(f"{path}: cannot read the file: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, a device?)"
        raise UsageError(f"{path}: {what}: a topology file is a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB, the most a topology file may have")
    return data


def load_bytes(data: bytes, path: str) -> tuple[Topology | None, list[Problem]]:
    """The file's bytes as a topology: UTF-8 first, located where it is not."""
    text, problem = decode(data, path)
    if text is None:
        return None, [problem] if problem else []
    return load_text(text, path)


def decode(data: bytes, path: str) -> tuple[str | None, Problem | None]:
    """A file's bytes as text, or the problem at its first byte that is not UTF-8."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        before = data[data.rfind(b"\n", 0, err.start) + 1:err.start]
        col = len(before.decode("utf-8", "replace")) + 1
        return None, Problem(Pos(path, line, col), "the file is not UTF-8 text")


def load_text(text: str, file: str = "<string>", environ: Mapping[str, str] | None = None) -> tuple[Topology | None, list[Problem]]:
    """Every problem of the text as a topology file, and the model if it could be built.

    ``${VAR}`` reads ``environ`` (the process's environment by default) over the ``.env``
    next to ``file``, when ``file`` is one on disk. No profile is selected: a node with
    ``profiles:`` is left out (:func:`topo.file.layers.select`).
    """
    problems: list[Problem] = []
    unread: set[int] = set()
    root = compose(text, file, problems, variables(file, problems, environ), unread)
    if root is not None:
        if has_tags(text):
            clean(root)
        select(root, (), (), problems)
    topology, _ = from_tree(root, file, problems, unread)
    return topology, problems


def from_tree(root: yaml.Node | None, file: str, problems: list[Problem], unread: set[int] | None = None,
              layers: Iterable[str] = ()) -> tuple[Topology | None, Any]:
    """A composed tree (one file's, or several merged: :mod:`topo.file.sources`) as the
    model, and as the plain values it was read from (what ``topo config`` prints); the
    tree's problems are added to ``problems``. ``layers``: the overlays' files, which
    nodes of the tree may name as theirs."""
    if root is None:
        if not problems:
            problems.append(Problem(Pos(file, 1, 1), "the file is empty: it needs at least `topology:` and `nodes:`"))
        return None, None
    if not isinstance(root, yaml.MappingNode):
        problems[:] = [Problem(pos_of(file, root), "the file must be a mapping with `topology:` and `nodes:`, not a list or a value")]
        return None, None
    checker = Checker(file, yaml.constructor.SafeConstructor(), unread, layers)
    try:
        raw = checker.plain(root, (), problems)
    except RecursionError:
        # compose() bounds the depth, so this is a last resort, not a path a file takes.
        problems[:] = [too_deep(Pos(file, 1, 1))]
        return None, None
    except _TooLarge as err:
        problems[:] = [Problem(err.pos, "the file expands to too many values (aliases nested too deep?)")]
        return None, None
    checked = checker.check(raw, SCHEMA, (), problems)
    builder = _Builder(file, checker)
    # mistakes that would otherwise be buried under their consequences (topo.file.cascade)
    misplaced = misplaced_node_keys(root, file, problems)
    problems[:] = misplaced_problems(misplaced, problems)
    builder.broken.update(name for m in misplaced for name in (m.key, m.owner) if name is not None)
    builder.broken.update(duplicated(problems, checker.key_positions))
    if links_unread(raw, checked):
        builder.broken.add(LINKS_UNREAD)
    return builder.topology(checked), raw


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
        allocation = self.allocation(raw.get("hosts"))
        hosts = {} if allocation is not None else self.hosts(raw.get("hosts"))
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
        security = raw.get("security") if isinstance(raw.get("security"), dict) else {}
        curve, max_message = security.get("curve"), security.get("max_message")
        return Topology(
            name=name if isinstance(name, str) else "",
            file=self.file,
            pos=Pos(self.file, 1, 1),
            nodes=nodes,
            hosts=hosts,
            links=links,
            curve=curve if isinstance(curve, bool) else True,
            max_message=max_message if isinstance(max_message, int) and not isinstance(max_message, bool)
            else DEFAULT_MAX_MESSAGE,
            python_path=self.python_path(raw.get("python_path")),
            allocation=allocation,
            broken=frozenset(self.broken),
            at={**self.at((), raw.keys()), **self.entries("python_path", raw.get("python_path"))},
        )

    def python_path(self, raw: Any) -> tuple[str, ...]:
        """Each entry made absolute against the file's directory, as a relative path in a
        file means relative to the file, whatever directory ``topo`` runs in."""
        entries = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        base = os.path.dirname(os.path.abspath(self.file))
        return tuple(os.path.normpath(os.path.join(base, e)) for e in entries if isinstance(e, str))

    def entries(self, key: str, raw: Any) -> dict[str, Pos]:
        """``KEY[i]``: where each entry of a top-level list is written."""
        if not isinstance(raw, list):
            return {}
        return {f"{key}[{i}]": self.c.positions[(key, i)] for i in range(len(raw)) if (key, i) in self.c.positions}

    def allocation(self, raw: Any) -> AllocationSpec | None:
        """``hosts: {from: slurm}``: its hosts are known once topo runs in the allocation."""
        if not isinstance(raw, dict) or not isinstance(raw.get("from"), str):
            return None
        python, interface = raw.get("python"), raw.get("interface")
        return AllocationSpec(raw["from"], self.pos(("hosts",)), python if isinstance(python, str) else None,
                              self.at(("hosts",), raw.keys()), interface if isinstance(interface, str) else None)

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
        if "exec" in value and "run" not in value:
            merged.pop("run", None)  # an exec node does not take the defaults' run:
        merged.update(value)
        run = merged.get("run")
        exec_ = value.get("exec")
        if run is INVALID or exec_ is INVALID or (isinstance(exec_, list) and INVALID in exec_):
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
            hosts=(merged["hosts"],) if isinstance(merged.get("hosts"), str) else (),
            replicas=merged["replicas"] if isinstance(merged.get("replicas"), int) else 1,
            args=merged["args"] if isinstance(merged.get("args"), dict) else {},
            env={str(k): _env_text(v) for k, v in (merged.get("env") or {}).items() if v is not INVALID}
            if isinstance(merged.get("env"), dict) else {},
            restart=Restart.NO if restart in (None, False, INVALID) else Restart(restart),
            on_exit=OnExit(merged["on_exit"]) if isinstance(merged.get("on_exit"), str) else OnExit.CONTINUE,
            max_restarts=merged["max_restarts"] if isinstance(merged.get("max_restarts"), int) else 5,
            restart_window=float(merged["restart_window"]) if isinstance(merged.get("restart_window"), (int, float)) else 60.0,
            at={**at, **self.entries_of(path, "exec", value.get("exec"))},
            exec=tuple(value["exec"]) if isinstance(value.get("exec"), list) and INVALID not in value["exec"] else (),
            ready=Ready(value["ready"]) if isinstance(value.get("ready"), str) else None,
            watchdog=float(value["watchdog"]) if isinstance(value.get("watchdog"), (int, float))
            and not isinstance(value.get("watchdog"), bool) else None,
        )

    def entries_of(self, path: Path, key: str, raw: Any) -> dict[str, Pos]:
        """``KEY[i]``: where each entry of a node's list is written."""
        if not isinstance(raw, list):
            return {}
        return {f"{key}[{i}]": self.c.positions[path + (key, i)] for i in range(len(raw)) if path + (key, i) in self.c.positions}

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
            external=self.external(value.get("external"), path + ("external",)),
            at=self.at(path, value.keys()),
        )

    def external(self, value: Any, path: Path) -> tuple[ExternalEndpoint, ...]:
        """``external: {bind: [...], connect: [...]}``, each endpoint with its position."""
        out: list[ExternalEndpoint] = []
        for key in ("bind", "connect") if isinstance(value, dict) else ():
            items = value.get(key)
            at = path + (key,)
            pairs = [(items, at)] if isinstance(items, str) else \
                [(v, at + (i,)) for i, v in enumerate(items)] if isinstance(items, list) else []
            out += [ExternalEndpoint(v, key == "bind", self.c.positions.get(p) or self.pos(at))
                    for v, p in pairs if isinstance(v, str)]
        return tuple(out)

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
                src_pos=Pos(text.file, text.line, text.col + m.start(1)),
                dst_pos=Pos(text.file, text.line, text.col + m.start(3)),
            )
        if not isinstance(value, dict) or not isinstance(value.get("from"), str) or not isinstance(value.get("to"), str):
            return None
        transport, curve = value.get("transport"), value.get("curve")
        at = self.at(path, value.keys())
        return LinkSpec(
            src=SocketRef(*value["from"].split(".", 1)),
            dst=SocketRef(*value["to"].split(".", 1)),
            pos=pos,
            transport=Transport(transport) if isinstance(transport, str) else None,
            curve=curve if isinstance(curve, bool) else None,
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
