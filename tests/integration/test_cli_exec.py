"""The real ``topo`` with exec nodes: checked, planned and drawn; added by ``topo apply``."""

from __future__ import annotations

import json
import os
from pathlib import Path


from conftest import Topo

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


def test_apply_adds_an_exec_node_and_the_run_goes_on(topo: Topo) -> None:
    sock = f"ipc://{topo.tmp}/idle.sock"
    running = ('topology: applyexec\nnodes:\n'
               f'  idle: {{run: "itnodes:block_forever", sockets: {{in: {{type: PULL, external: {{bind: "{sock}"}}}}}}}}\n')
    proc = topo.start("up", topo.file(running))
    topo.wait_for_line(proc, "blocking")
    edited = running + '  prog: {exec: [sh, -c, "echo started; exec sleep 1000"]}\n'
    path = topo.file(edited, "edited.yaml")
    result = topo.run("apply", "applyexec", path)
    assert result.code == 0, result.out + result.err
    topo.wait_for_line(proc, r"prog +\| started")
    assert proc.poll() is None  # the run goes on
    assert topo.run("down", "applyexec").code == 0
    proc.communicate(timeout=30)
