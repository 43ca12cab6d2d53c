"""``topo up`` starts its processes before the supervisor exists (topo.supervisor.prestart): before zmq
is imported, adopted by the supervisor afterwards, and never left behind."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import topo.cli.launch
import topo.supervisor.supervise
from conftest import HERE, ROOT, Topo
from topo.supervisor import rundir
from topo.plan.planner import make_plan
from topo.supervisor.prestart import Prestarted, can_prestart, prestart
from topo.supervisor.runstate import NodeState
from topo.file.validate import load

PAIR = """\
topology: early
nodes:
  pub: {run: "itnodes:publish_once", sockets: {out: PUB}}
  sub: {run: "itnodes:receive_one", sockets: {in: {type: SUB, subscribe: [t]}}}
links: [pub.out -> sub.in]
"""


class Quiet:
    """A reporter that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def output(self, name: str, line: str, err: bool) -> None:
        self.lines.append(f"{name}: {line}")

    def changed(self, node: NodeState) -> None:
        pass

    def system(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tp-", dir="/tmp"))  # short: ipc paths fit
    monkeypatch.setenv("TOPO_HOME", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_topo_up_starts_its_processes_before_it_imports_zmq(topo: Topo) -> None:
    file = topo.file(PAIR)
    probe = textwrap.dedent("""\
        import sys
        import topo.cli.launch, topo.supervisor.spawn
        seen = []
        real = topo.supervisor.spawn.start
        def spy(boot):
            seen.append("zmq" in sys.modules)
            return real(boot)
        topo.supervisor.spawn.start = spy
        code = topo.cli.launch.up(sys.argv[1], ready_timeout=30, grace=5)
        print("zmq imported at each start:", seen, "exit", code)
        """)
    done = subprocess.run([sys.executable, "-c", probe, file], env=topo.env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert "zmq imported at each start: [False, False] exit 0" in done.stdout, done.stdout + done.stderr


def test_the_supervisor_adopts_the_processes_started_before_it(home: Path) -> None:
    plan = make_plan(load(str(_write(home, PAIR))))
    rd = rundir.create(plan.topology)
    early = prestart(plan, rd, ready_timeout=30, grace=5, sys_path=(str(HERE), str(ROOT)))
    assert early is not None and list(early.procs) == [p.name for p in plan.processes]
    reporter = Quiet()
    supervisor = topo.supervisor.supervise.Supervisor(plan, reporter, ready_timeout=30, grace=5, run_dir=rd,
                                            sys_path=(str(HERE), str(ROOT)), prestarted=early)
    outcome = supervisor.run()
    assert outcome.code == 0, reporter.lines
    assert "sub: got pub" in reporter.lines
    assert {name: p.pid for name, p in supervisor.procs.items()} == {n: p.pid for n, p in early.procs.items()}
    assert supervisor.started == early.started


def test_a_failure_before_the_supervisor_runs_leaves_no_process(home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Prestarted] = []

    def spy(*args: Any, **kwargs: Any) -> Prestarted | None:
        early = prestart(*args, **kwargs)
        assert early is not None
        started.append(early)
        return early

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no supervisor today")

    monkeypatch.setattr(topo.cli.launch, "prestart", spy)
    monkeypatch.setattr(topo.supervisor.supervise, "Supervisor", broken)
    with pytest.raises(RuntimeError, match="no supervisor today"):
        topo.cli.launch.up(str(_write(home, PAIR)), ready_timeout=30, grace=5)
    assert started and all(not p.is_alive() for p in started[0].procs.values())
    assert not list((home / "runs").iterdir())


def test_a_run_across_hosts_is_not_prestarted(home: Path) -> None:
    plan = make_plan(load(str(_write(home, """\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {address: 10.0.0.2, launch: [ssh, edge]}
        nodes:
          vent: {run: m:f, sockets: {out: PUSH}}
          far: {run: m:f, host: edge, sockets: {in: PULL}}
        links: [vent.out -> far.in]
        """))))
    assert not can_prestart(plan)
    assert can_prestart(make_plan(load(str(_write(home, PAIR)))))


def _write(home: Path, text: str) -> Path:
    path = home / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_process_retries_its_control_connect_within_milliseconds() -> None:
    """Its supervisor may bind after it connects: libzmq's default retry (100 ms and more)
    would be the delay of every prestarted run that wins the race against the bind."""
    import zmq

    from topo.process.boot import Boot
    from topo.process.capture import Capture
    from topo.process.prelude import Prelude
    from topo.process.runtime import CONTROL_RECONNECT_MS, ProcessRuntime
    from topo.plan.share import share_of

    plan = make_plan(load(str(ROOT / "topologies" / "pipeline.yaml")))
    # the prelude's products, made by hand: its real steps would take over this process's output
    prelude = Prelude(queue.SimpleQueue(), Capture(lambda *_: None, "x"), {})
    rt = ProcessRuntime(Boot(share_of(plan, plan.processes[0].name), "ipc://ev", "ipc://cmd", "/nonexistent",
                             0.0, 1.0, 1), prelude)
    try:
        push = rt._control.socket(zmq.PUSH)
        assert push.getsockopt(zmq.RECONNECT_IVL) == CONTROL_RECONNECT_MS <= 10
        push.close(linger=0)
    finally:
        rt.capture.close()
        rt._control.term()
        rt.ctx.term()
