"""The real ``topo`` resolving every ``run:`` before it plans or starts anything.

Node modules come from PYTHONPATH here (the fixture puts tests/integration on it, as a
user's shell would), from the file's directory and from the current directory: the places
a node process imports from."""

from __future__ import annotations

import re
from pathlib import Path

import psutil

from conftest import Topo

TYPO = """\
topology: typo
nodes:
  source:
    run: itnodes:vent
    args: {tasks: 3}
    sockets: {out: PUSH}
  worker:
    run: itnode:work
    replicas: 10
    sockets: {in: PULL, out: PUSH}
  sink:
    run: itnodes:colect
    sockets: {in: PULL}
links:
  - source.out -> worker.in
  - worker.out -> sink.in
"""

EXPECTED = [
    ":8:10: run: 'itnode:work': no module named 'itnode' (did you mean 'itnodes'?)",
    ":12:10: run: 'itnodes:colect': module 'itnodes' (",
]


def located(path: str, err: str) -> list[str]:
    return [line[len(path):] for line in err.splitlines() if line.startswith(path + ":")]


def test_check_reports_each_node_once_at_its_run(topo: Topo) -> None:
    path = topo.file(TYPO)
    result = topo.run("check", path)
    assert result.code == 2 and result.out == ""
    lines = located(path, result.err)
    assert len(lines) == 2, result.err  # one for the ten replicas of worker
    assert lines[0] == EXPECTED[0]
    assert lines[1].startswith(EXPECTED[1]) and lines[1].endswith("itnodes.py) has no 'colect' (did you mean 'collect'?)")
    assert result.err.splitlines()[-1] == "2 problems"
    assert "Traceback" not in result.err


def test_plan_refuses_the_same_file(topo: Topo) -> None:
    path = topo.file(TYPO)
    result = topo.run("plan", path)
    assert result.code == 2 and located(path, result.err)[0] == EXPECTED[0]


def test_up_fails_before_starting_anything(topo: Topo) -> None:
    path = topo.file(TYPO)
    result = topo.run("up", path)
    assert result.code == 1, result.err  # SPEC: a node that cannot be imported fails the run: 1
    assert located(path, result.err)[0] == EXPECTED[0]
    assert "cannot be imported: nothing was started" in result.err
    assert result.out == ""
    assert topo.run_dirs() == [] and not (topo.home / "logs").exists()


def test_modules_beside_the_file_and_on_pythonpath_run(topo: Topo, tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def done(node):\n    print('mine ran', flush=True)\n")
    path = topo.file("""\
        topology: found
        nodes:
          a: {run: "mine:done"}
          b: {run: "itnodes:publish_once", sockets: {out: PUB}}
          c: {run: "itnodes:receive_one", sockets: {in: {type: SUB, subscribe: [t]}}}
        links:
          - b.out -> c.in
        """)
    assert topo.run("check", path).code == 0
    result = topo.run("up", path, timeout=60)
    assert result.code == 0, result.err
    assert "mine ran" in result.out


def test_no_run_check_leaves_it_to_the_run(topo: Topo) -> None:
    path = topo.file(TYPO)
    assert topo.run("check", "--no-run-check", path).code == 0
    result = topo.run("up", "--no-run-check", path, timeout=60)
    assert result.code == 1  # each node's import fails in its process
    assert "itnode" in result.out + result.err


BROKEN_DEP = """\
topology: brokendep
nodes:
  worker:
    run: needsdep:work
    replicas: 4
    sockets: {out: PUSH}
  sink:
    run: itnodes:collect
    sockets: {in: PULL}
links:
  - worker.out -> sink.in
"""


def test_a_module_failing_to_import_is_told_once_for_all_its_replicas(topo: Topo, tmp_path: Path) -> None:
    # found by the check (it exists), fails when imported: the run tells it once, located
    (tmp_path / "needsdep.py").write_text("import no_such_dependency_here\n\ndef work(node):\n    pass\n")
    path = topo.file(BROKEN_DEP)
    result = topo.run("up", path, timeout=60)
    assert result.code == 1, result.err
    told = [line.split(" | ", 1)[1] for line in result.out.splitlines() if "cannot be imported" in line]
    assert told == [f"{path}:4:10: worker: run: needsdep:work cannot be imported "
                    "(every one of its 4 instances)"], result.out
    assert result.out.count("Traceback (most recent call last)") == 1, result.out
    # the other instances fail alike (or are stopped first): not a word more of them
    assert len(re.findall(r"^topo +\| worker\.\d failed: ", result.out, re.M)) == 1, result.out


def test_a_run_module_missing_at_run_time_names_the_import_path(topo: Topo) -> None:
    path = topo.file(TYPO)
    result = topo.run("up", "--no-run-check", path, timeout=60)
    assert result.code == 1
    hint = [line for line in result.out.splitlines() if "is not on the import path" in line]
    assert len(hint) == 1, result.out  # once for the ten replicas
    assert "itnode is not on the import path of local's node processes: " in hint[0]
    assert str(Path(path).parent) in hint[0] and "python_path:" in hint[0]


def test_python_path_puts_a_src_layout_on_the_import_path(topo: Topo, tmp_path: Path) -> None:
    package = tmp_path / "src" / "srcpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def hello(node):\n    print('from src', flush=True)\n")
    path = topo.file("""\
        topology: srclayout
        python_path: [src]
        nodes:
          a: {run: "srcpkg:hello"}
        """)
    assert topo.run("check", path).code == 0  # cwd is the repository root, not tmp_path
    result = topo.run("up", path, timeout=60)
    assert result.code == 0, result.err
    assert "from src" in result.out


def test_a_python_path_that_is_not_a_directory_is_located(topo: Topo) -> None:
    path = topo.file("""\
        topology: srclayout
        python_path:
          - src
        nodes:
          a: {run: "itnodes:collect"}
        """)
    for command in ("check", "up"):
        result = topo.run(command, path)
        assert result.code == 2, result.err
        assert f"{path}:3:5: python_path: {Path(path).parent / 'src'} is not a directory" in result.err


DYNAMIC = '''\
import os, sys
print("printed while imported")
globals()["made"] = lambda node: None  # a name only running the module makes
if os.environ.get("TOPO_TEST_IMPORT_HANG"):
    with open(os.environ["TOPO_TEST_IMPORT_HANG"], "w") as f:
        f.write(str(os.getpid()))
    import time
    time.sleep(3600)  # a module that waits on import: the check's deadline ends it
'''

IMPORTED = """\
topology: imported
nodes:
  ok: {run: "dynmod:made"}
  typo: {run: "dynmod:mdae"}
  dep: {run: "needsdep:work", replicas: 3}
"""


def test_check_import_imports_for_real_what_reading_cannot_tell(topo: Topo, tmp_path: Path) -> None:
    (tmp_path / "dynmod.py").write_text(DYNAMIC)
    (tmp_path / "needsdep.py").write_text("import no_such_dependency_here\n\ndef work(node):\n    pass\n")
    path = topo.file(IMPORTED)
    assert topo.run("check", path).code == 0  # reading the code accepts all three
    result = topo.run("check", "--import", path)
    assert result.code == 2, result.err
    assert located(path, result.err) == [
        ":4:15: run: 'dynmod:mdae': dynmod has no 'mdae' once imported (did you mean 'made'?)",
        ":5:14: run: 'needsdep:work': importing 'needsdep' failed: ModuleNotFoundError: "
        "No module named 'no_such_dependency_here'",
    ]
    assert "printed while imported" not in result.out + result.err  # the import's output is its own


def test_check_import_ends_an_import_that_never_finishes(topo: Topo, tmp_path: Path) -> None:
    (tmp_path / "dynmod.py").write_text(DYNAMIC)
    pid_file = tmp_path / "hanging.pid"
    topo.env["TOPO_TEST_IMPORT_HANG"] = str(pid_file)
    path = topo.file("topology: hang\nnodes:\n  ok: {run: \"dynmod:made\"}\n")
    result = topo.run("check", "--import", "--import-timeout", "2", path)
    assert result.code == 2
    assert located(path, result.err) == [
        ":3:13: run: 'dynmod:made': importing 'dynmod' did not finish within 2s "
        "(does it wait for something when imported?)"]
    hanging = int(pid_file.read_text())
    assert not psutil.pid_exists(hanging) or psutil.Process(hanging).status() == psutil.STATUS_ZOMBIE
