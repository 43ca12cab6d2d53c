"""The pytest plugin (registered through the ``pytest11`` entry point): the ``topo_up``
fixture, and the nodes' output and tracebacks in the report of a failing test.

    def test_first_message(topo_up):
        run = topo_up("topologies/pubsub.yaml",
                      probes={"feed": Probe("SUB", "publisher.out", subscribe=[""])})
        assert run.probes["feed"].recv_multipart()[0] == b"weather."

Every run the fixture starts is stopped after the test, passed or failed; after a failed
one, before its report is made, so that the report has everything the nodes said. A run
recorded (``up(..., record=...)``, with the fixture or not) is named in the report of a
failing test: a section ``topo recording`` with the MCAP file's path (``record=True``
with the fixture puts the file in the test's own temporary directory).
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterator

import pytest

_RUNS = pytest.StashKey[list[Any]]()
#: Every run started while the test ran, with the fixture or not.
_STARTED = pytest.StashKey[list[Any]]()


@pytest.fixture
def topo_up(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """A function with the signature of :func:`topo.testing.up`; runs end with the test."""
    from topo.testing import up

    runs: list[Any] = []
    request.node.stash[_RUNS] = runs

    def start(source: Any, **kwargs: Any) -> Any:
        if kwargs.get("record") is True:
            kwargs["record"] = request.getfixturevalue("tmp_path") / f"topo-run{len(runs)}.mcap"
        run = up(source, **kwargs)
        runs.append(run)
        return run

    yield start
    for run in reversed(runs):
        run.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, None]:
    """The runs started during the test, whichever way: for their recordings' paths."""
    from topo import testing

    started: list[Any] = []
    item.stash[_STARTED] = started
    testing._listeners.append(started.append)
    try:
        yield
    finally:
        testing._listeners.remove(started.append)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    runs = item.stash.get(_RUNS, [])
    if report.failed:
        recorded = [run for run in item.stash.get(_STARTED, []) if getattr(run, "recording", None) is not None]
        for run in recorded:
            if run in runs:
                run.stop()  # (the fixture's): its file finished before the report names it
            report.sections.append((f"topo {run.plan.topology}: recording", f"topo recording: {run.recording}"))
    if not report.failed or not runs:
        return
    for run in runs:
        # stopped first (the fixture's stop after the test is then nothing more): every line
        # the nodes wrote, in flight when the test failed, is read to the end and reported
        run.stop()
        report.sections.append((f"topo {run.plan.topology}: node output", "\n".join(run.output())))
        failed = [r for r in (run.result(n) for n in run.plan.instances) if r.failed]
        if failed:
            text = "\n\n".join(f"{r.name}: {r.error}\n{r.traceback or ''}".rstrip() for r in failed)
            report.sections.append((f"topo {run.plan.topology}: failed nodes", text))
