"""Edits across hosts by the two other ways than ``topo apply``: ``topo up --watch`` (a
saved file moves the workers to another host and back) and the harness's ``run.apply``.
Network namespaces stand for the machines (test_apply_hosts' pipeline: feed → 2 workers
→ tally); each step waits on a real signal (an output line, an apply's return)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import Topo
from hostnet import Network, host_network, hosts_emptied, requires_netns
from test_apply_hosts import agent_of, batch, in_namespace, pipeline, stop
from test_edit import pids, tell

pytestmark = [requires_netns, pytest.mark.slow]


@pytest.fixture
def net1() -> Iterator[Network]:
    with host_network(1) as net:
        yield net


def save(path: str, text: str) -> None:
    """As an editor saves: a new file renamed over the old one."""
    tmp = f"{path}.swp"
    Path(tmp).write_text(text)
    os.replace(tmp, path)


def test_a_save_moves_the_workers_to_another_host_and_back(topo: Topo, net1: Network) -> None:
    ctl = str(topo.home / "ctl")
    path = topo.file(pipeline(net1, ctl, workers="local"))
    proc = topo.start("up", "--watch", "--no-color", path, "--ready-timeout", "30")
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    assert agent_of(net1, 0) is None  # nothing runs on h1 yet: no agent
    local = batch(topo, proc, ctl, 1, 50)
    assert not local & in_namespace(net1, 0)

    save(path, pipeline(net1, ctl, workers="h1"))
    lines = "".join(topo.wait_for_lines(proc, [r"topo +\| topo\.yaml applied in \d", r"topo +\| = \d+ unchanged"]))
    assert "! host h1 added: its agent is launched" in lines, lines
    moved = batch(topo, proc, ctl, 2, 50)  # through workers that run on h1 now
    assert len(moved) == 2 and moved <= in_namespace(net1, 0), (moved, in_namespace(net1, 0))
    workers = {pids(topo, "xedit")[f"worker.{i}"][0] for i in range(2)}
    assert workers == moved

    save(path, pipeline(net1, ctl, workers="local"))
    lines = "".join(topo.wait_for_lines(proc, [r"topo +\| topo\.yaml applied in \d", r"topo +\| = \d+ unchanged"]))
    assert "! host h1 no longer used" in lines, lines
    back = batch(topo, proc, ctl, 3, 50)
    assert not back & moved and in_namespace(net1, 0) == set()  # its agent left with its processes
    stop(proc, net1)


def file(text: str) -> dict[str, Any]:
    """The pipeline as a mapping, as a test writes one: its node code's directory named for
    the hosts (a mapping has no directory of its own; a remote node imports from the
    project's root, then python_path)."""
    source: dict[str, Any] = yaml.safe_load(text)
    source["python_path"] = [str(Path(__file__).parent)]
    return source


def test_run_apply_moves_the_workers_to_another_host(tmp_path: Path, net1: Network,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from topo.testing import up

    home = tempfile.mkdtemp(prefix="th-", dir="/tmp")  # short: ipc paths fit in it
    monkeypatch.setenv("TOPO_HOME", home)
    ctl = str(tmp_path / "ctl")
    try:
        with up(file(pipeline(net1, ctl, workers="local")), ready_timeout=30) as run:
            assert agent_of(net1, 0) is None
            diff = run.apply(file(pipeline(net1, ctl, workers="h1")))
            # the links to the workers become tcp: their other ends restart with them
            assert sorted(p.name for p in diff.processes) == ["feed", "tally", "worker.0", "worker.1"], diff
            assert "host h1 added: its agent is launched" in diff.notes, diff.notes
            on_h1 = in_namespace(net1, 0)
            assert agent_of(net1, 0) is not None
            with run.tap("tally.in") as tally:
                tell(ctl, "2 20")
                got = [tally.next(timeout=20) for _ in range(20)]
            through = {int(m.frames[0].split()[3]) for m in got}  # "BATCH I COUNT PID"
            assert len(through) == 2 and through <= on_h1, (through, on_h1)
            assert run.stop().code == 0
        hosts_emptied(net1, 10)
    finally:
        shutil.rmtree(home, ignore_errors=True)
