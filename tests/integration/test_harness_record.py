"""``up(..., record=...)``: a test's run recorded as ``topo up --record`` records it, and
the recording named in the report of a failing test."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import HERE, ROOT
from topo.errors import UsageError
from topo.observe.recorded import summarize
from topo.testing import up

pytest_plugins = ["pytester"]

PIPELINE = str(ROOT / "topologies" / "pipeline.yaml")


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_HOME", tempfile.mkdtemp(prefix="th-", dir="/tmp"))
    monkeypatch.syspath_prepend(str(ROOT))  # examples.pipeline, for the nodes' processes too
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))


def test_a_run_recorded_from_a_test_has_every_message(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    with up(PIPELINE, record=path, record_only=["ventilator.tasks", "sink.results"]) as run:
        assert run.wait_for("sink").returned
        assert run.recording == path
    summary = summarize(str(path))
    assert summary.complete
    assert {c.topic: c.messages for c in summary.channels} == {"ventilator/tasks/out": 12, "sink/results/in": 12}
    assert any(line.startswith(f"recorded 24 message(s) to {path}") for line in run.output("topo"))


def test_record_true_is_a_file_of_its_own(tmp_path: Path) -> None:
    with up(PIPELINE, record=True) as run:
        run.wait_for("sink")
    assert run.recording is not None and run.recording.name == "pipeline.mcap"
    assert summarize(str(run.recording)).messages == 48


def test_a_wrong_record_only_name_fails_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--record-only sink\.result: .* did you mean sink\.results\?"):
        up(PIPELINE, record=tmp_path / "x.mcap", record_only=["sink.result"])
    assert not (tmp_path / "x.mcap").exists()


FAILING = """
from topo.testing import up

def test_fixture_run(topo_up):
    run = topo_up({path!r}, record=True)
    run.wait_for("sink")
    assert False, "on purpose"

def test_direct_run(tmp_path):
    with up({path!r}, record=tmp_path / "direct.mcap") as run:
        run.wait_for("sink")
    assert False, "on purpose too"

def test_passing_run(topo_up):
    topo_up({path!r}, record=True).wait_for("sink")
"""


def test_a_failing_tests_report_names_its_recording(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=textwrap.dedent(FAILING.format(path=PIPELINE)))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, passed=1)
    text = result.stdout.str()
    named = [line.split("topo recording: ", 1)[1].strip() for line in text.splitlines() if "topo recording: " in line]
    assert "topo pipeline: recording" in text
    assert len(named) == 2, text
    assert named[0].endswith("topo-run0.mcap") and "test_fixture_run" in named[0]
    assert named[1].endswith("direct.mcap")
    for path in named:
        summary = summarize(path)  # finished before the report named it
        assert summary.complete and summary.messages == 48
