"""``run:`` references resolved without running node code (:mod:`topo.file.runref`).

Each test writes its node modules into a directory of its own and checks a topology
against that one directory as the import path, so nothing depends on what this machine
has installed (except for the standard library cases, which every Python has)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from topo.errors import InvalidTopology, Problem
from topo.file.model import Topology
from topo.file.runref import check_runs, load_resolved, node_sys_path, search_path
from topo.file.validate import load

from ..helpers import at


def topology(tmp_path: Path, nodes: str, extra: str = "") -> Topology:
    path = tmp_path / "t.yaml"
    path.write_text("topology: t\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  ") + extra)
    return load(str(path))


def module(tmp_path: Path, name: str, source: str) -> None:
    """``name`` (dotted: packages made on the way, each with an empty ``__init__``)."""
    parts = name.split(".")
    where = tmp_path / "code"
    for part in parts[:-1]:
        where = where / part
        where.mkdir(parents=True, exist_ok=True)
        (where / "__init__.py").touch()
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{parts[-1]}.py").write_text(textwrap.dedent(source))


def problems(tmp_path: Path, nodes: str, extra: str = "") -> list[Problem]:
    return check_runs(topology(tmp_path, nodes, extra), [str(tmp_path / "code")])


def one(tmp_path: Path, nodes: str) -> Problem:
    found = problems(tmp_path, nodes)
    assert len(found) == 1, found
    return found[0]


# -- modules ----------------------------------------------------------------------------


def test_a_missing_module_is_located_at_the_run_value(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def work(): ...\n")
    p = one(tmp_path, "a:\n  replicas: 10\n  run: nodez:work\n")
    assert at(p) == (5, 10)
    assert p.message == "run: 'nodez:work': no module named 'nodez' (did you mean 'nodes'?)"


def test_a_missing_submodule_suggests_a_sibling_with_its_package(tmp_path: Path) -> None:
    module(tmp_path, "app.pipeline", "def work(): ...\n")
    p = one(tmp_path, "a: {run: app.pipline:work}\n")
    assert p.message == "run: 'app.pipline:work': no module named 'app.pipline' (did you mean 'app.pipeline'?)"


def test_a_missing_package_in_the_middle_is_named(tmp_path: Path) -> None:
    module(tmp_path, "app.pipeline", "def work(): ...\n")
    p = one(tmp_path, "a: {run: app.nope.deep:work}\n")
    assert "no module named 'app.nope'" in p.message


def test_parent_packages_are_not_executed(tmp_path: Path) -> None:
    module(tmp_path, "pkg.nodes", "def work(): ...\n")
    marker = tmp_path / "ran"
    (tmp_path / "code" / "pkg" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    assert problems(tmp_path, "a: {run: pkg.nodes:work}\nb: {run: pkg.nodes:wrok}\n")
    assert not marker.exists()
    assert "pkg" not in sys.modules and "pkg.nodes" not in sys.modules


def test_a_package_that_makes_its_own_path_is_not_second_guessed(tmp_path: Path) -> None:
    module(tmp_path, "pkg.nodes", "def work(): ...\n")
    (tmp_path / "code" / "pkg" / "__init__.py").write_text("__path__.append('/elsewhere')\n")
    assert problems(tmp_path, "a: {run: pkg.other:work}\n") == []


def test_a_submodule_of_a_plain_module_is_accepted(tmp_path: Path) -> None:
    """``os.path`` is no file: ``os`` puts it in sys.modules when imported."""
    module(tmp_path, "plain", "x = 1\n")
    assert problems(tmp_path, "a: {run: plain.sub:f}\n") == []


def test_the_first_module_on_the_path_is_the_one_read(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def work(): ...\n")
    first = tmp_path / "first"
    first.mkdir()
    (first / "nodes.py").write_text("def other(): ...\n")
    t = topology(tmp_path, "a: {run: nodes:work}\n")
    assert check_runs(t, [str(tmp_path / "code")]) == []
    assert "has no 'work'" in check_runs(t, [str(first), str(tmp_path / "code")])[0].message


def test_modules_without_source_and_namespace_packages_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "code" / "ns").mkdir(parents=True)
    assert problems(tmp_path, "a: {run: ns:anything}\nb: {run: sys:anything}\n") == []


def test_modules_inside_namespace_packages_are_found_and_checked(tmp_path: Path) -> None:
    """A directory without ``__init__.py`` above the module (``tests.integration.nodes``
    run from a checkout): found on the path, its function looked up; it once crashed
    ``topo up`` (KeyError from the namespace package's path)."""
    (tmp_path / "code" / "ns" / "inner").mkdir(parents=True)
    (tmp_path / "code" / "ns" / "inner" / "nodes.py").write_text("def idle(node):\n    pass\n")
    assert problems(tmp_path, "a: {run: ns.inner.nodes:idle}\n") == []
    found = problems(tmp_path, "a: {run: ns.inner.nodes:idel}\nb: {run: ns.inner.nodez:idle}\n")
    assert len(found) == 2, found
    assert "module 'ns.inner.nodes' (" in found[0].message and "has no 'idel' (did you mean 'idle'?)" in found[0].message
    assert found[1].message.endswith("no module named 'ns.inner.nodez' (did you mean 'ns.inner.nodes'?)")


def test_a_standard_library_module_is_found_on_sys_path(tmp_path: Path) -> None:
    t = topology(tmp_path, "a: {run: json:dumps}\nb: {run: json:dumsp}\n")
    found = check_runs(t, sys.path)
    assert len(found) == 1 and "module 'json'" in found[0].message and "(did you mean 'dump" in found[0].message


def test_a_syntax_error_is_located_in_the_module(tmp_path: Path) -> None:
    module(tmp_path, "broken", "def work(:\n")
    p = one(tmp_path, "a: {run: broken:work}\n")
    assert p.message.startswith("run: 'broken:work': module 'broken' cannot be imported: ")
    assert "broken.py:1:" in p.message


# -- callables --------------------------------------------------------------------------


def test_a_missing_function_suggests_a_top_level_name(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def worker(): ...\nasync def sink(): ...\n")
    p = one(tmp_path, "a:\n  run: nodes:wroker\n")
    assert at(p) == (4, 10)
    assert p.message.startswith("run: 'nodes:wroker': module 'nodes' (")
    assert p.message.endswith("nodes.py) has no 'wroker' (did you mean 'worker'?)")


@pytest.mark.parametrize("source", [
    "def f(): ...", "async def f(): ...", "class f: ...", "f = print", "f: object = print",
    "import json as f", "from json import dumps as f", "from json import f",
    "try:\n    from fast import f\nexcept ImportError:\n    def f(): ...",
    "if True:\n    f = print", "for f in [print]: pass", "with open('x') as f: pass",
    "from json import *", "def __getattr__(name): ...", "globals()['f'] = print",
    "def make():\n    global f\n    f = print",
])
def test_every_way_a_module_binds_a_name_is_accepted(tmp_path: Path, source: str) -> None:
    module(tmp_path, "nodes", source + "\n")
    assert problems(tmp_path, "a: {run: nodes:f}\n") == []


def test_names_inside_functions_do_not_count(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def outer():\n    def f(): ...\n    g = 1\n")
    assert [p.message for p in problems(tmp_path, "a: {run: nodes:f}\nb: {run: nodes:g}\n")] == [
        "run: 'nodes:f': module 'nodes' (" + str(tmp_path / "code" / "nodes.py") + ") has no 'f'",
        "run: 'nodes:g': module 'nodes' (" + str(tmp_path / "code" / "nodes.py") + ") has no 'g'",
    ]


def test_a_package_name_is_looked_up_in_its_init(tmp_path: Path) -> None:
    module(tmp_path, "pkg.sub", "def f(): ...\n")
    (tmp_path / "code" / "pkg" / "__init__.py").write_text("from .sub import f\n")
    assert problems(tmp_path, "a: {run: pkg:f}\nb: {run: pkg:sub.f}\n") == []
    assert "has no 'g'" in one(tmp_path, "a: {run: pkg:g}\n").message


def test_a_method_is_looked_up_in_its_class(tmp_path: Path) -> None:
    module(tmp_path, "nodes", """\
        class Worker:
            def run(self): ...
            @classmethod
            def start(cls): ...
            class Inner:
                async def go(self): ...
        """)
    assert problems(tmp_path, "a: {run: nodes:Worker.start}\nb: {run: nodes:Worker.Inner.go}\n") == []
    p = one(tmp_path, "a: {run: nodes:Worker.strat}\n")
    assert p.message == "run: 'nodes:Worker.strat': class 'Worker' of module 'nodes' has no 'strat' (did you mean 'start'?)"
    p = one(tmp_path, "a: {run: nodes:Worker.Inner.stop}\n")
    assert "class 'Worker.Inner' of module 'nodes' has no 'stop'" in p.message


@pytest.mark.parametrize("source", [
    "class Worker(Base): ...", "@dataclass\nclass Worker: ...", "class Worker(metaclass=M): ...",
    "Worker = make()", "from base import Worker", "def Worker(): ...",
])
def test_a_method_that_may_come_from_elsewhere_is_accepted(tmp_path: Path, source: str) -> None:
    module(tmp_path, "nodes", source + "\n")
    assert problems(tmp_path, "a: {run: nodes:Worker.start}\n") == []


# -- which nodes, how often -------------------------------------------------------------


def test_one_problem_per_node_and_one_for_nodes_sharing_a_default(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def work(): ...\n")
    found = problems(tmp_path, "a: {replicas: 10}\nb: {replicas: 3}\nc: {run: nodes:wrk, replicas: 4}\n",
                     "defaults: {run: nodez:work}\n")
    assert [at(p) for p in sorted(set(found))] == [(5, 12), (6, 17)]


def test_nodes_on_another_host_are_not_checked(tmp_path: Path) -> None:
    module(tmp_path, "nodes", "def work(): ...\n")
    hosts = "hosts:\n  local: {address: 127.0.0.1}\n  edge: {address: 10.0.0.2}\n"
    found = problems(tmp_path, "a: {run: nope:work}\nb: {run: nope:work, host: edge}\n", hosts)
    assert [at(p) for p in found] == [(3, 12)]


def test_a_reference_of_the_wrong_shape_is_left_to_the_schema(tmp_path: Path) -> None:
    t = topology(tmp_path, "a: {run: nodes:f}\n")
    bad = Topology(**{**t.__dict__, "nodes": {"a": t.nodes["a"].__class__(**{**t.nodes["a"].__dict__, "run": "no-colon"})}})
    assert check_runs(bad, [str(tmp_path)]) == []


# -- the path and the CLI's step --------------------------------------------------------


def test_the_path_is_the_node_processes_then_this_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["/from/pythonpath", str(tmp_path)])
    file = tmp_path / "sub" / "t.yaml"
    assert node_sys_path(str(file)) == (str(tmp_path), str(tmp_path / "sub"))
    assert search_path(str(file)) == [str(tmp_path), str(tmp_path / "sub"), "/from/pythonpath"]


def test_the_supervisor_starts_nodes_with_the_same_path(tmp_path: Path) -> None:
    from topo.supervisor.spawn import default_sys_path

    assert default_sys_path(str(tmp_path / "t.yaml")) == node_sys_path(str(tmp_path / "t.yaml"))


def test_load_resolved_finds_modules_beside_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "here_nodes.py").write_text("def work(): ...\n")
    path = tmp_path / "there" / "t.yaml"
    path.write_text("topology: t\nnodes:\n  a: {run: here_nodes:work}\n  b: {run: here_nodes:wrk}\n")
    with pytest.raises(InvalidTopology) as err:
        load_resolved(str(path))
    assert [at(p) for p in err.value.problems] == [(4, 12)]
    path.write_text("topology: t\nnodes:\n  a: {run: here_nodes:work}\n")
    assert load_resolved(str(path)).nodes["a"].run == "here_nodes:work"


def test_load_alone_does_not_look_at_run(tmp_path: Path) -> None:
    assert topology(tmp_path, "a: {run: m:f}\n").nodes["a"].run == "m:f"


def test_python_path_comes_first_resolved_against_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from topo.file.loader import load_text

    monkeypatch.chdir(tmp_path)
    file = tmp_path / "sub" / "t.yaml"
    t, problems = load_text("topology: t\npython_path: [src, ../lib]\nnodes: {a: {run: 'm:f'}}\n", str(file))
    assert problems == [] and t is not None
    assert t.python_path == (str(tmp_path / "sub" / "src"), str(tmp_path / "lib"))
    assert node_sys_path(str(file), t.python_path)[:3] == (str(tmp_path / "sub" / "src"), str(tmp_path / "lib"), str(tmp_path))
    one, _ = load_text("topology: t\npython_path: src\nnodes: {a: {run: 'm:f'}}\n", str(file))
    assert one is not None and one.python_path == (str(tmp_path / "sub" / "src"),)
