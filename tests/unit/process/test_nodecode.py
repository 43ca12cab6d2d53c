"""topo.process.nodecode: each node module imported once per process, in the background; what a
node's code resolves to, or why it does not."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from topo.process.nodecode import start_imports
from topo.plan.share import InstanceShare


def inst(name: str, run: str) -> InstanceShare:
    return InstanceShare(name, name.partition(".")[0], 0, 1, run, {}, ())


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("nc_")]:
        del sys.modules[name]


def test_replicas_share_one_import_and_each_gets_its_function(modules: Path) -> None:
    (modules / "nc_counted.py").write_text("import builtins\nbuiltins.nc_count = getattr(builtins, 'nc_count', 0) + 1\n"
                                          "def work(node): return 'w'\nclass K:\n    def run(node): return 'k'\n")
    code = start_imports([inst("a.0", "nc_counted:work"), inst("a.1", "nc_counted:work"),
                          inst("b", "nc_counted:K.run")], None)
    assert code["a.0"].module is code["a.1"].module is code["b"].module
    assert code["a.0"].done.wait(10)
    import builtins

    assert getattr(builtins, "nc_count") == 1
    del builtins.nc_count  # type: ignore[attr-defined]
    fns: list[Any] = [code[n].fn for n in ("a.0", "a.1", "b")]
    assert [f(None) for f in fns] == ["w", "w", "k"]
    assert all(code[n].error is None for n in code)


def test_a_failed_import_fails_every_node_of_the_module_and_a_bad_name_only_its_own(modules: Path) -> None:
    (modules / "nc_broken.py").write_text("raise RuntimeError('no config')\n")
    (modules / "nc_fine.py").write_text("value = 3\ndef f(node): pass\n")
    code = start_imports([inst("x.0", "nc_broken:f"), inst("x.1", "nc_broken:f"), inst("y", "nc_fine:nothing"),
                          inst("z", "nc_fine:value"), inst("ok", "nc_fine:f")], None)
    for name in code:
        assert code[name].done.wait(10)
    assert [type(code[n].error).__name__ for n in ("x.0", "x.1", "y", "z")] == [
        "RuntimeError", "RuntimeError", "AttributeError", "TypeError"]
    assert code["x.0"].error is code["x.1"].error
    assert code["ok"].error is None and callable(code["ok"].fn)


def test_an_import_in_progress_is_not_done_and_says_so_when_it_ends(modules: Path) -> None:
    release = threading.Event()
    import builtins

    builtins.nc_release = release  # type: ignore[attr-defined]
    (modules / "nc_slow.py").write_text("import builtins\nassert builtins.nc_release.wait(10)\n"
                                       "def f(node): pass\n")
    told = threading.Event()
    try:
        code = start_imports([inst("s", "nc_slow:f")], None)
        code["s"].module.notify = told.set
        assert not code["s"].done.is_set() and code["s"].error is None  # still importing: no verdict
        release.set()
        assert told.wait(10) and code["s"].done.is_set() and code["s"].fn is not None
    finally:
        release.set()
        del builtins.nc_release  # type: ignore[attr-defined]


def test_a_module_already_imported_needs_no_thread() -> None:
    before = threading.active_count()
    code = start_imports([inst("j", "json:dumps")], None)
    assert code["j"].done.is_set() and threading.active_count() == before
    assert code["j"].fn is not None and code["j"].fn([1]) == "[1]"
