"""Output faults of issue 13, from the outside: real ``topo up`` runs whose nodes print what
no encoder takes, print fast, print until stopped, die right after printing; and a
``topo up`` whose stdout nobody reads."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HERE, ROOT, Topo, processes_with_home
from topo.file.validate import load
from topo.plan.planner import make_plan
from topo.supervisor.runstate import NodeState
from topo.supervisor.supervise import Supervisor


def _outcome(topo: Topo, topology: str) -> dict[str, object]:
    [path] = (topo.home / "logs" / topology).glob("*/outcome.json")
    return json.loads(path.read_text())


def _log(topo: Topo, topology: str, node: str) -> str:
    [path] = (topo.home / "logs" / topology).glob(f"*/{node}.log")
    return path.read_text(encoding="utf-8")


def test_a_lone_surrogate_is_shown_replaced_and_the_run_goes_on(topo: Topo) -> None:
    f = topo.file("""
        topology: surr
        nodes:
          s: {run: outnodes:surrogate, on_exit: stop}
          other: {run: outnodes:idle}
    """)
    r = topo.run("up", f, "--grace", "5")
    assert r.code == 0, r.out + r.err
    assert "internal error" not in r.err
    lines = r.out.splitlines()
    assert any(line.endswith("| before") for line in lines), r.out
    assert any(line.endswith("| value: \ufffd") for line in lines), r.out
    assert any(line.endswith("| after") for line in lines), r.out
    assert "other" in r.out and "SIGKILL" not in r.out
    outcome = _outcome(topo, "surr")
    assert outcome["code"] == 0
    assert outcome["nodes"]["s"] == "exited"  # type: ignore[index]
    assert "value: \ufffd" in _log(topo, "surr", "s")


class _Broken:
    """A reporter with a bug: it raises on the first line of output."""

    def output(self, name: str, line: str, err: bool) -> None:
        raise RuntimeError("reporter bug")

    def changed(self, node: NodeState) -> None:
        pass

    def system(self, text: str) -> None:
        pass


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="to-", dir="/tmp"))  # short: ipc paths fit
    monkeypatch.setenv("TOPO_HOME", str(path))
    try:
        yield path
    finally:
        for proc in processes_with_home(path):
            proc.kill()
        shutil.rmtree(path, ignore_errors=True)


def test_outcome_json_records_an_internal_error_as_such(home: Path) -> None:
    """A bug in the supervisor's loop is exit 70 in outcome.json too, never 0."""
    (home / "f.yaml").write_text("topology: bug\nnodes:\n  s: {run: outnodes:surrogate}\n")
    plan = make_plan(load(str(home / "f.yaml")))
    supervisor = Supervisor(plan, _Broken(), ready_timeout=30, grace=2, sys_path=(str(HERE), str(ROOT)))
    with pytest.raises(RuntimeError, match="reporter bug"):
        supervisor.run()
    [path] = (home / "logs" / "bug").glob("*/outcome.json")
    outcome = json.loads(path.read_text())
    assert outcome["code"] == 70
    assert "reporter bug" in outcome["reason"]
