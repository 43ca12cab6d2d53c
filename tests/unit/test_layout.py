"""The layout is the architecture: packages in pipeline order, imports pointing one way.

Every import in topo's own code counts, wherever it stands (module top, inside a function,
under ``if TYPE_CHECKING:``): each is a dependency a reader must follow. Read with ``ast``,
so nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import topo

ROOT = Path(topo.__file__).resolve().parent

#: The packages, lowest first. A module may import its own package and those before it.
ORDER = ["errors", "file", "plan", "process", "observe", "supervisor", "hosts", "cli", "testing"]
#: Packages that only read and compute: no zmq, no process started.
PURE = {"errors", "file", "plan"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The topo modules (and ``zmq``) one file imports. ``from topo.x import y`` names the
    module ``topo.x.y`` when that is a module, else ``topo.x``."""
    found: set[str] = set()
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            if name == "zmq" or name.startswith("zmq."):
                found.add("zmq")
            elif name.startswith("topo"):
                while name not in known and "." in name:
                    name = name.rpartition(".")[0]
                if name in known and name != here:
                    found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) for name, path in mods.items()}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_belongs_to_a_package_of_the_pipeline() -> None:
    loose = [m for m in modules() if package_of(m) not in ORDER and m not in (
        "topo", "topo.__main__", "topo.agent", "topo.nodes")]
    assert not loose, f"modules outside the pipeline's packages: {loose}"


def test_imports_point_down_the_pipeline() -> None:
    upward = []
    for module, deps in graph().items():
        mine = package_of(module)
        if mine not in ORDER:
            continue
        for dep in deps - {"zmq"}:
            theirs = package_of(dep)
            if theirs in ORDER and ORDER.index(theirs) > ORDER.index(mine):
                upward.append(f"{module} imports {dep}")
    assert not upward, "imports against the pipeline's order:\n" + "\n".join(sorted(upward))


def test_the_file_and_the_plan_use_no_zmq() -> None:
    users = sorted(m for m, deps in graph().items() if package_of(m) in PURE and "zmq" in deps)
    assert not users, f"zmq imported where only data is: {users}"


def test_no_import_cycles() -> None:
    deps = {m: d - {"zmq"} for m, d in graph().items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(deps.get(module, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(deps):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The walker itself: a relative import, a lazy one and a TYPE_CHECKING one all count."""
    pkg = tmp_path / "topo" / "plan"
    pkg.mkdir(parents=True)
    (tmp_path / "topo" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from topo.plan import a\n    import topo.cli.main\n")
    known = {"topo", "topo.plan", "topo.plan.a", "topo.plan.b", "topo.cli.main"}
    global ROOT
    saved, ROOT = ROOT, tmp_path / "topo"
    try:
        assert imports(pkg / "a.py", known) == {"topo.plan.b"}
        assert imports(pkg / "b.py", known) == {"topo.plan.a", "topo.cli.main"}
    finally:
        ROOT = saved


def test_the_paths_users_write_still_work() -> None:
    """Moving a module must not move what users import or run (docs/architecture.md)."""
    import importlib.util

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on

    for name in ("topo.testing", "topo.errors", "topo.agent", "topo.testing.pytest_plugin", "topo.nodes"):
        assert importlib.util.find_spec(name) is not None, name
    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
    for target in (project["scripts"]["topo"], project["entry-points"]["pytest11"]["topo"]):
        module = target.split(":")[0]
        assert importlib.util.find_spec(module) is not None, target
    assert "from topo.hosts.agent import main" in (ROOT / "agent.py").read_text()
    assert "from topo.observe.replay import replay" in (ROOT / "nodes.py").read_text()
