"""Every node's ``run: "module:callable"`` resolved before a run, without running its code.

A typo in ``run:`` used to pass ``topo check`` and fail at ``topo up`` once per instance,
with no line of the file. Here the module is found on the path a node process will import
it from, and the callable is looked up in the module's *source* with :mod:`ast`, so
``topo check`` stays pure: no node code runs, nothing is imported.

Finding a dotted module (``a.b.c``) would, with :func:`importlib.util.find_spec`, import
its parent packages ``a`` and ``a.b``, that is run their ``__init__`` code: a package that
connects to a database or starts a thread at import would do so at ``topo check``. So only
the top name is looked up through :data:`sys.meta_path` (which imports nothing), and each
further part with :class:`importlib.machinery.PathFinder` in its parent's
``submodule_search_locations``: the directories themselves, read, never executed.

This check is a convenience, and a false error would block a run that works: whenever what
an import would do cannot be known statically (a module without source, a package whose
``__init__`` changes ``__path__`` or :data:`sys.modules`, a ``from x import *``, a module
``__getattr__``, an imported or assigned name, a class with bases or decorators), the
reference is accepted. Nodes on another host are not checked: their path is that host's.

Not part of :func:`topo.file.validate.load`: a topology is planned and tested without its
node code (unit tests write ``run: m:f``); the CLI adds this step to ``check``, ``plan`` and
``up`` (:func:`load_resolved`).
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import os
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topo.errors import InvalidTopology, Problem, TopoError
from topo.file import execnodes, validate
from topo.file.diagnostics import excerpts_from_files
from topo.file.model import NodeSpec, Topology
from topo.file.sources import Sources


def node_sys_path(topology_file: str, python_path: Sequence[str] = ()) -> tuple[str, ...]:
    """What a node process puts first on ``sys.path``: the file's ``python_path:`` (a src/
    layout names its package directory there, and means it to win), the current directory
    and the file's directory (``topo up`` hands it to every process it starts)."""
    return tuple(dict.fromkeys([*python_path, os.getcwd(), str(Path(topology_file).resolve().parent)]))


def search_path(topology_file: str, python_path: Sequence[str] = ()) -> list[str]:
    """The whole path a local node process imports from: :func:`node_sys_path`, then this
    process's ``sys.path`` (PYTHONPATH included), which ``multiprocessing``'s spawn hands
    to every child as it is."""
    return list(dict.fromkeys([*node_sys_path(topology_file, python_path), *sys.path]))


#: What a module that is nowhere on the import path (not even a near name) most often means.
NOT_ON_PATH = (" on the import path (python_path:, the current directory, the file's directory, "
               "PYTHONPATH): run topo from the project's root, or name the code's directory "
               "in python_path:")


class UnresolvedRuns(TopoError):
    """At ``topo up``: nodes whose code cannot be imported. The contract makes a node that
    cannot be imported a failed node, exit status 1, said with which node failed: found
    before anything starts, it is still that (``topo check`` and ``topo plan`` say 2, the
    file's status)."""

    exit_code = 1

    def __init__(self, problems: list[Problem], nodes: list[str]) -> None:
        self.problems = sorted(set(problems))
        self.tail = f"node(s) {', '.join(nodes)} cannot be imported: nothing was started"
        super().__init__("\n".join(str(p) for p in self.problems) + "\n" + self.tail)

    def format_message(self) -> str:
        """As :class:`InvalidTopology` shows its problems: each with its source line."""
        return "\n".join([*(p.render() for p in self.problems), self.tail])


def load_resolved(path: str | Sources, *, starting: bool = False, strict: bool | None = None,
                  lenient: bool = False) -> Topology:
    """:func:`topo.file.validate.load`, then every local node's ``run:`` resolved (and every
    local exec node's program found: :func:`topo.file.execnodes.check_programs`): the
    topology, or :class:`InvalidTopology`. The references are looked at once the rest of
    the file is valid: a node the file gets wrong may not have a ``run:`` worth looking
    for, and one problem at a time there reads better than a guess.

    ``starting``: for ``topo up``, which reports them as nodes that cannot be imported
    (:class:`UnresolvedRuns`). ``strict``, ``lenient``: as :func:`topo.file.validate.load`'s; the
    file's warnings are reported with these problems."""
    topology = validate.load(path, strict=strict, lenient=lenient)  # looked up when called: the seam tests replace
    missing = [*missing_python_path(topology), *execnodes.check_programs(topology, _local(topology))]
    if missing:
        raise InvalidTopology([*excerpts_from_files(missing, _files(path)), *topology.warnings])
    unresolved = _unresolved(topology, search_path(topology.file, topology.python_path))
    if unresolved and starting:
        raise UnresolvedRuns([*excerpts_from_files([p for _, p in unresolved], _files(path)), *topology.warnings],
                             [name for name, _ in unresolved])
    if unresolved:
        raise InvalidTopology([*excerpts_from_files([p for _, p in unresolved], _files(path)), *topology.warnings])
    return topology


@dataclass
class _Module:
    """What is known of one module without running it: None fields mean "cannot tell"."""

    name: str
    origin: str | None = None
    #: Its top-level names (None: no source to read); ``open``: more may appear at run time.
    names: dict[str, list[ast.stmt | None]] | None = None
    open: bool = False
    locations: list[str] | None = None
    #: Why it cannot be imported, when that is certain (not found, a syntax error).
    error: str | None = None


def _files(path: str | Sources) -> tuple[str, ...]:
    return (path,) if isinstance(path, str) else path.files


def missing_python_path(t: Topology) -> list[Problem]:
    """A ``python_path:`` entry that is not a directory here: every ``run:`` found through
    it would be a guess, and the node processes would import from it in vain. Only when a
    node runs on this host: another host has its own directories."""
    if not t.python_path or all((n.host or t.default_host) != _local(t) for n in t.nodes.values()):
        return []
    return [Problem(t.at.get(f"python_path[{i}]", t.where("python_path")), f"python_path: {entry} is not a directory")
            for i, entry in enumerate(t.python_path) if not os.path.isdir(entry)]


def _local(t: Topology) -> str:
    return "local" if "local" in t.hosts or len(t.hosts) != 1 else next(iter(t.hosts))


def check_runs(t: Topology, path: Sequence[str]) -> list[Problem]:
    """One problem per node (not per replica) whose ``run:`` surely does not resolve, at
    its ``run:`` value. Nodes on other hosts, broken nodes and nodes without ``run`` are
    skipped."""
    return [problem for _, problem in _unresolved(t, path)]


def _unresolved(t: Topology, path: Sequence[str]) -> list[tuple[str, Problem]]:
    """(node name, its problem) of each node whose ``run:`` surely does not resolve."""
    local = _local(t)
    cache: dict[str, _Module] = {}
    found: list[tuple[str, Problem]] = []
    for node in t.nodes.values():
        if node.name in t.broken or not node.run or (node.host or t.default_host) != local:
            continue
        message = _check(node, list(path), cache)
        if message:
            # without the node's name: nodes taking `run` from `defaults` share one report
            found.append((node.name, Problem(node.where("run"), f"run: {node.run!r}: {message}")))
    return found


def _check(node: NodeSpec, path: list[str], cache: dict[str, _Module]) -> str | None:
    module_name, _, attr = node.run.partition(":")
    parts = module_name.split(".")
    if not attr or not all(p.isidentifier() for p in [*parts, *attr.split(".")]):
        return None  # the schema's pattern reports the shape
    module = cache.get(module_name)
    if module is None:
        module = cache[module_name] = _find(module_name, path)
    if module.error is not None:
        return module.error
    return _lookup(module, attr.split("."), path)


def _find(name: str, path: list[str]) -> _Module:
    """The module ``name`` as ``import`` would find it on ``path``, its parents unexecuted."""
    parts = name.split(".")
    top = _find_top(parts[0], path)
    if top is None:
        near = _near(parts[0], _listing(path, top=True))
        return _Module(name, error=f"no module named {parts[0]!r}{near or NOT_ON_PATH}")
    if top is _UNKNOWN:
        return _Module(name)
    spec, dirs = top, path
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations
        if locations is None or _dynamic_package(spec):
            return _Module(name)  # not a package (os.path), or one that makes its own path
        full = ".".join(parts[: i + 1])
        dirs = _locations(locations, dirs, parts[i - 1])
        sub = _find_sub(full, dirs)
        if sub is None:
            parent = ".".join(parts[:i])
            return _Module(name, error=f"no module named {full!r}{_near(parts[i], _listing(list(locations)), parent + '.')}")
        spec = sub
    return _read(name, spec)


def _locations(locations: Any, parent_dirs: list[str], name: str) -> list[str]:
    """Where a package's submodules are. A namespace package (a directory without
    ``__init__.py``) computes its path from its parent's module in ``sys.modules``, which
    is not imported here: its directories are then those named ``name`` on the path its
    parent was found on."""
    try:
        return list(locations)
    except (KeyError, AttributeError, TypeError, ImportError):
        return [str(Path(d) / name) for d in parent_dirs if (Path(d) / name).is_dir()]


def _find_sub(full: str, dirs: list[str]) -> importlib.machinery.ModuleSpec | None:
    """As ``PathFinder.find_spec``, which, for a namespace package inside another, raises
    KeyError looking for the parent in ``sys.modules``: such a package is then the list
    of the directories named so (their ``__init__``-less union, as ``import`` makes it)."""
    try:
        return importlib.machinery.PathFinder.find_spec(full, dirs)
    except KeyError:
        last = full.rsplit(".", 1)[-1]
        found = [str(Path(d) / last) for d in dirs if (Path(d) / last).is_dir()]
        if not found:
            return None
        spec = importlib.machinery.ModuleSpec(full, None, is_package=True)
        spec.submodule_search_locations = found
        return spec


#: A finder failed: whether the module exists is not known.
_UNKNOWN = importlib.machinery.ModuleSpec("?", None)


def _find_top(name: str, path: list[str]) -> importlib.machinery.ModuleSpec | None:
    """The spec of a top-level module, found as the import system would (every finder of
    :data:`sys.meta_path` in order, the path finder on ``path``); :data:`_UNKNOWN`: cannot
    tell."""
    for finder in sys.meta_path:
        try:
            if finder is importlib.machinery.PathFinder:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
            else:
                spec = finder.find_spec(name, None)
        except Exception:  # noqa: BLE001 - a finder of some plugin: do not guess
            return _UNKNOWN
        if spec is not None:
            return spec
    return None


def _dynamic_package(spec: importlib.machinery.ModuleSpec) -> bool:
    """A package whose ``__init__`` may change where its submodules come from."""
    source = _source(spec)
    return source is not None and any(word in source for word in ("__path__", "sys.modules", "extend_path"))


def _source(spec: importlib.machinery.ModuleSpec) -> str | None:
    if not isinstance(spec.loader, importlib.machinery.SourceFileLoader) or not spec.origin:
        return None
    try:
        return Path(spec.origin).read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _read(name: str, spec: importlib.machinery.ModuleSpec) -> _Module:
    """The module's top-level names from its source; a module without source (an
    extension, a namespace package, a zip) stays unknown."""
    locations = list(spec.submodule_search_locations or []) or None
    source = _source(spec)
    if source is None:
        return _Module(name, locations=locations)
    try:
        tree = ast.parse(source, spec.origin or name)
    except SyntaxError as err:
        return _Module(name, error=f"module {name!r} cannot be imported: {_shown(spec.origin)}:{err.lineno}:{err.offset}: {err.msg}")
    except ValueError:  # null bytes
        return _Module(name, locations=locations)
    names, is_open = _bindings(tree.body)
    is_open = is_open or any(isinstance(n, ast.Global) or _dynamic_call(n) for n in ast.walk(tree))
    return _Module(name, spec.origin, names, is_open, locations)


def _dynamic_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"globals", "vars", "setattr", "exec"}


#: Scopes of their own (a comprehension's names are walked: a ``:=`` there binds here).
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _bindings(body: list[ast.stmt]) -> tuple[dict[str, list[ast.stmt | None]], bool]:
    """The names a block binds in its own scope (also under ``if``/``try``/``for``/``with``),
    each with its definitions (a ``def`` or ``class`` statement, None for anything else);
    True when a ``from m import *`` or a module ``__getattr__`` may bind any other."""
    names: dict[str, list[ast.stmt | None]] = {}
    is_open = False
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.setdefault(node.name, []).append(node)
            is_open = is_open or node.name == "__getattr__"
            continue  # its body is another scope (its decorators bind nothing)
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    is_open = True
                else:
                    names.setdefault(alias.asname or alias.name.split(".")[0], []).append(None)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.setdefault(node.id, []).append(None)
        bound = getattr(node, "name", None)  # except E as x, match captures
        if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping)) and bound:
            names.setdefault(bound, []).append(None)
        if isinstance(node, ast.MatchMapping) and node.rest:
            names.setdefault(node.rest, []).append(None)
        todo.extend(ast.iter_child_nodes(node))
    return names, is_open


def _lookup(module: _Module, attrs: list[str], path: list[str]) -> str | None:
    """Why ``attrs`` (``func`` or ``Class.method``) is surely not in the module, or None."""
    if module.names is None or module.open:
        return None
    first = attrs[0]
    defs = module.names.get(first)
    if defs is None:
        if module.locations and importlib.machinery.PathFinder.find_spec(f"{module.name}.{first}", module.locations):
            return None  # a submodule: there when something imported it
        where = f" ({_shown(module.origin)})" if module.origin else ""
        return f"module {module.name!r}{where} has no {first!r}{_near(first, module.names)}"
    scopes: list[ast.stmt | None] = list(defs)
    trail = first
    for attr in attrs[1:]:
        if any(not isinstance(d, ast.ClassDef) for d in scopes):
            return None  # an import, an assignment, a function: not followed
        found: list[ast.stmt | None] = []
        members: set[str] = set()
        for cls in scopes:
            assert isinstance(cls, ast.ClassDef)
            names, is_open = _bindings(cls.body)
            if is_open or cls.decorator_list or cls.keywords or any(not _is_object(b) for b in cls.bases):
                return None  # inherited or added: cannot tell
            found.extend(names.get(attr, []))
            members.update(names)
        if not found:
            return f"class {trail!r} of module {module.name!r} has no {attr!r}{_near(attr, members)}"
        scopes = found
        trail = f"{trail}.{attr}"
    return None


def _is_object(base: ast.expr) -> bool:
    return isinstance(base, ast.Name) and base.id == "object"


def _listing(path: Sequence[str], top: bool = False) -> list[str]:
    """Module names in the directories of ``path``, read from the directory listings."""
    found = [m.name for m in pkgutil.iter_modules(list(path))]
    return [*found, *sys.builtin_module_names] if top else found


def _near(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the closest name, without private ones unless asked."""
    pool = [c for c in choices if not c.startswith("_") or word.startswith("_")]
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        by_lower = {c.lower(): c for c in pool}
        lowered = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
        close = [by_lower[lowered[0]]] if lowered else []
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _shown(origin: str | None) -> str:
    """A module's file as the user would write it: relative to here when under here."""
    if not origin:
        return "?"
    try:
        return os.path.relpath(origin) if Path(origin).resolve().is_relative_to(Path.cwd()) else origin
    except (OSError, ValueError):
        return origin
