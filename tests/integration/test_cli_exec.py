"""The real ``topo`` with exec nodes: checked, planned and drawn; not started yet, and
refused before anything starts (no half-run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import Topo
from topo.errors import UsageError
from topo.testing import up

FILE = """\
topology: polyglot
nodes:
  producer:
    exec: [./producer.sh, "--out={sockets.out}"]
    ready: notify
    sockets: {out: PUSH}
  worker:
    exec: [./worker.sh]
    sockets: {in: PULL}
links:
  - producer.out -> worker.in
"""


def _programs(tmp: Path, mode: int = 0o755) -> None:
    for name in ("producer.sh", "worker.sh"):
        (tmp / name).write_text("#!/bin/sh\nexit 0\n")
        (tmp / name).chmod(mode)


def test_check_plan_and_graph_show_exec_nodes(topo: Topo) -> None:
    path = topo.file(FILE)
    _programs(Path(path).parent)
    checked = topo.run("check", path)
    assert checked.code == 0, checked.err
    planned = topo.run("plan", path)
    assert planned.code == 0 and "exec: ./producer.sh '--out={sockets.out}' (ready: notify)" in planned.out
    nodes = {n["name"]: n for n in json.loads(topo.run("plan", "--json", path).out)["nodes"]}
    assert nodes["worker"]["exec"] == ["./worker.sh"] and nodes["worker"]["ready"] == "started"
    assert 'n_worker[["worker"]]' in topo.run("graph", path).out


def test_check_finds_programs_missing_or_not_executable(topo: Topo) -> None:
    path = topo.file(FILE)
    (Path(path).parent / "worker.sh").write_text("#!/bin/sh\n")
    os.chmod(Path(path).parent / "worker.sh", 0o644)
    result = topo.run("check", path)
    assert result.code == 2
    assert f"{path}:4:12: node 'producer': program './producer.sh' not found" in result.err
    assert f"{path}:8:12: node 'worker': program './worker.sh' is not executable" in result.err


def test_up_refuses_exec_nodes_before_anything_starts(topo: Topo) -> None:
    path = topo.file(FILE)
    _programs(Path(path).parent)
    result = topo.run("up", path)
    assert result.code == 2
    assert "not yet: exec nodes are checked and planned, not started yet (producer, worker)" in result.err
    assert "Traceback" not in result.err


def test_the_harness_refuses_them_too(topo: Topo) -> None:
    path = topo.file(FILE)
    _programs(Path(path).parent)
    with pytest.raises(UsageError, match="not yet: exec nodes"):
        with up(path):
            pass


def test_apply_refuses_to_add_an_exec_node_and_the_run_goes_on(topo: Topo) -> None:
    sock = f"ipc://{topo.tmp}/idle.sock"
    running = ('topology: applyexec\nnodes:\n'
               f'  idle: {{run: "itnodes:block_forever", sockets: {{in: {{type: PULL, external: {{bind: "{sock}"}}}}}}}}\n')
    proc = topo.start("up", topo.file(running))
    topo.wait_for_line(proc, "blocking")
    edited = running + "  prog: {exec: [./worker.sh]}\n"
    path = topo.file(edited, "edited.yaml")
    _programs(Path(path).parent)
    result = topo.run("apply", "applyexec", path)
    assert result.code != 0, result.out
    assert "not yet: exec nodes are checked and planned, not started yet (prog)" in result.out + result.err
    assert proc.poll() is None  # the run is untouched
    assert topo.run("down", "applyexec").code == 0
    proc.communicate(timeout=30)
