"""An example of testing a topology with topo: copy it next to your own topology.

Run it from the repository root with `python3 -m pytest examples/tests`.
"""

from __future__ import annotations

from topo.testing import Probe


def test_workers_square_every_task_fed_by_a_probe(topo_up):  # type: ignore[no-untyped-def]
    # The ventilator and the sink make way for two probes of the test's own: one feeds the
    # workers, one collects their results. The workers wait in their gate until both
    # probes are connected, so not a single task is lost or dealt unevenly.
    run = topo_up(
        "topologies/pipeline.yaml",
        overrides={"ventilator": None, "sink": None, "worker": {"replicas": 2}},
        probes={
            "tasks": Probe("PUSH", "worker.tasks"),
            "results": Probe("PULL", "worker.results"),
        },
    )
    for n in range(10):
        run.probes["tasks"].send_multipart([str(n).encode()])
    results = [run.probes["results"].recv_multipart() for _ in range(10)]
    squares = sorted(int(square) for _worker, _task, square in results)
    assert squares == sorted(n * n for n in range(10))
    # PUSH deals round-robin over every worker connected from the first task on
    assert sorted(w.decode() for w, _, _ in results) == ["worker.0"] * 5 + ["worker.1"] * 5


def test_the_sink_reports_every_result(topo_up):  # type: ignore[no-untyped-def]
    run = topo_up("topologies/pipeline.yaml", overrides={"sink": {"args": {"tasks": 12}}})
    assert run.wait_for("sink", timeout=30).returned
    assert run.output("sink")[-1] == "sink: 12/12 results, sum of squares = 506"
