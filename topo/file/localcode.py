"""The local source files a node's code is made of: the file its ``run:`` module is, and
those of the local modules it imports, found by reading their source, never running it.

``topo up --watch`` restarts a node when one of these files is saved. Local means found
directly on the roots given (the node processes' own path head: the file's
``python_path:``, the current directory, the file's directory), not in the standard
library or site-packages, which are found elsewhere on ``sys.path`` and are not edited
while a run goes on.

Read statically, with :mod:`ast`, rather than asked of the node processes after they
imported their code: a module whose last save broke it (a syntax error, a bad import)
never reports anything, yet it is exactly the one whose next save must restart its node;
and the supervisor runs no node code. The price: an import made from a string
(``importlib.import_module(name)``) is not seen; every ``import`` statement is, wherever
it stands (inside a function, under ``if``), which may count a module a run never
imports: a save of it restarts a node needlessly, never the other way round.
"""

from __future__ import annotations

import ast
import importlib.machinery
from collections.abc import Iterable, Sequence
from pathlib import Path

#: At most this many files for one node (its imports are hostile until checked: a tree
#: of generated modules must not keep the reading going).
MAX_FILES = 2000


def node_files(module: str, roots: Sequence[str], skip: Iterable[str] = ()) -> frozenset[str]:
    """The resolved paths of the local source files module ``module`` (dotted) is made of,
    with the local modules it imports and their packages' ``__init__`` files. ``skip``:
    directories whose files are never counted (topo's own package)."""
    skipped = tuple(str(Path(s).resolve()) for s in skip)
    seen: set[str] = set()
    files: set[str] = set()
    todo = [module]
    while todo and len(files) < MAX_FILES:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for path, is_package in _found(name, roots):
            if path.startswith(skipped) or path in files:
                continue
            files.add(path)
            todo.extend(_imports(path, name, is_package))
    return frozenset(files)


def _found(name: str, roots: Sequence[str]) -> list[tuple[str, bool]]:
    """The source files an import of ``name`` executes (each package's ``__init__`` on the
    way, then the module), found on ``roots`` only; [] for a module that is not local."""
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        return []
    out: list[tuple[str, bool]] = []
    dirs: list[str] = list(roots)
    for i in range(len(parts)):
        try:
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), dirs)
        except (ImportError, KeyError, ValueError, OSError):
            return out
        if spec is None:
            return out
        locations = spec.submodule_search_locations
        if spec.origin and spec.origin.endswith(".py") and spec.has_location:
            out.append((str(Path(spec.origin).resolve()), locations is not None))
        if i < len(parts) - 1:
            if locations is None:
                return out
            dirs = list(locations)
    return out


def _imports(path: str, name: str, is_package: bool) -> list[str]:
    """The module names the file ``path`` (module ``name``) imports; a ``from m import n``
    names ``m.n`` too (``n`` may be a submodule)."""
    try:
        tree = ast.parse(Path(path).read_bytes(), path)
    except (SyntaxError, ValueError, OSError, RecursionError):
        return []  # broken now: what it imported stays watched through its old readers
    package = name if is_package else name.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                if not anchor:
                    continue
                base = f"{anchor}.{base}" if base else anchor
            if base:
                out.append(base)
            out.extend(f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*")
    return out
