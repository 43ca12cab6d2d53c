"""The test harness itself: probes, waits, failure reports, teardown."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

from conftest import HERE
from topo.testing import HarnessError, Probe, up

pytest_plugins = ["pytester"]

PUBLISH = """
topology: harness-pub
nodes:
  pub: {run: "itnodes:publish_once", sockets: {out: PUB}}
  sub: {run: "itnodes:receive_one", sockets: {in: {type: SUB, subscribe: [""]}}}
links: [pub.out -> sub.in]
"""

PIPELINE = """
topology: harness-pipe
nodes:
  worker:
    run: "itnodes:work"
    replicas: 2
    sockets: {in: PULL, out: PUSH}
  sink: {run: "itnodes:block_forever", sockets: {in: PULL}}
links: [worker.out -> sink.in]
"""


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return str(path)


def test_a_probe_receives_a_publishers_very_first_message(topo_up, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = topo_up(_file(tmp_path, PUBLISH), probes={"feed": Probe("SUB", "pub.out", subscribe=[""])})
    # publish_once sends one message and returns: it reached the probe and the node alike
    assert run.probes["feed"].recv_multipart() == [b"t", b"pub"]
    assert run.wait_for("pub").returned
    assert run.wait_for_output("sub", r"^got pub$") == "got pub"


def test_probes_feed_a_pipeline_and_collect_every_result(tmp_path: Path) -> None:
    source = PIPELINE.replace("links: [worker.out -> sink.in]", "links: []").replace(
        '  sink: {run: "itnodes:block_forever", sockets: {in: PULL}}\n', "")
    with up(_file(tmp_path, source), probes={"tasks": Probe("PUSH", "worker.in"),
                                             "results": Probe("PULL", "worker.out")}) as run:
        for i in range(20):
            run.probes["tasks"].send_string(str(i))
        done_by = [run.probes["results"].recv_string() for _ in range(20)]
    # both workers were connected to the probe before the first task: an even split
    assert sorted(done_by) == ["worker.0"] * 10 + ["worker.1"] * 10
    assert run.outcome.code == 0


def test_a_req_probe_talks_to_a_rep_node_and_overrides_apply(tmp_path: Path) -> None:
    source = """
topology: harness-rep
nodes:
  server: {run: "itnodes:serve", sockets: {rep: REP}}
"""
    with up(_file(tmp_path, source), probes={"api": Probe("REQ", "server.rep")},
            overrides={"server": {"env": {"TOPO_TEST_MARK": "1"}}}) as run:
        run.probes["api"].send(b"ping")
        assert run.probes["api"].recv() == b"ping"
        assert run.plan.processes[0].env == {"TOPO_TEST_MARK": "1"}


def test_a_topology_given_as_a_mapping(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(PUBLISH)
    with up(data, probes={"feed": Probe("SUB", "pub.out", subscribe=["t"])}) as run:
        assert run.probes["feed"].recv_multipart()[1] == b"pub"


def test_a_node_that_cannot_start_fails_the_start_with_its_error(tmp_path: Path) -> None:
    source = PUBLISH.replace('"itnodes:receive_one"', '"no_such_module_for_harness:f"')
    with pytest.raises(HarnessError, match="No module named 'no_such_module_for_harness'"):
        up(_file(tmp_path, source))


FAILING_TEST = """
    from topo.testing import Probe

    def test_inner(topo_up):
        run = topo_up({path!r})
        result = run.wait_for("bad")
        assert result.returned, "bad should have returned"
"""


def test_a_failing_test_reports_the_nodes_output_and_traceback_and_leaves_nothing(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(tempfile.mkdtemp(prefix="th-", dir="/tmp"))
    monkeypatch.setenv("TOPO_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    path = _file(tmp_path, """
topology: harness-fail
nodes:
  bad: {run: "itnodes:boom_on_receive", sockets: {in: PULL}}
  other: {run: "itnodes:talk_then_send", sockets: {out: PUSH}}
links: [other.out -> bad.in]
""")  # bad fails once other has printed: its lines are in its pipe when the test fails
    pytester.makepyfile(test_inner=textwrap.dedent(FAILING_TEST.format(path=path)))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "topo harness-fail: node output" in text
    assert "RuntimeError: boom from bad" in text
    assert "topo harness-fail: failed nodes" in text
    assert "in boom_on_receive\n" in text  # the node's traceback, its own frame
    assert "other | other line 2" in text
    assert "other | other last words" in text  # said as the run stopped: the report waited for it
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before
            and "resource_tracker" not in " ".join(p.cmdline())]  # multiprocessing's own helper
    assert [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    runs = home / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []  # run directory, ipc files: gone
    assert list((home / "logs" / "harness-fail").glob("*/bad.log"))  # the logs stay
    shutil.rmtree(home, ignore_errors=True)
