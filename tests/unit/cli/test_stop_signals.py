"""``topo up``'s stop signals (topo.cli.launch.StopSignals) and a starting run in ``topo ps``."""

from __future__ import annotations

import os
import signal

from topo.cli.client import format_ps
from topo.cli.launch import StopSignals
from topo.supervisor.runstate import EXIT_OK, EXIT_SIGHUP, EXIT_SIGINT


class FakeSupervisor:
    def __init__(self) -> None:
        self.code: int | None = None
        self.asked: list[tuple[int, str]] = []
        self.hurried = 0

    def request_stop(self, code: int, reason: str) -> None:
        self.asked.append((code, reason))
        if self.code is None:
            self.code = code

    def hurry(self) -> None:
        self.hurried += 1


def test_a_signal_before_the_supervisor_exists_is_kept_and_passed_on() -> None:
    before = signal.getsignal(signal.SIGHUP)
    with StopSignals() as signals:
        assert not signals.requested()
        os.kill(os.getpid(), signal.SIGHUP)  # handled before kill returns (main thread)
        assert signals.pending == (EXIT_SIGHUP, "SIGHUP (terminal closed)") and signals.requested()
        supervisor = FakeSupervisor()
        signals.attach(supervisor)  # type: ignore[arg-type]
        assert supervisor.asked == [signals.pending]
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C once stopping: the grace period ends
        assert supervisor.hurried == 1
    assert signal.getsignal(signal.SIGHUP) is before


def test_a_second_ctrl_c_before_the_supervisor_hurries_it_and_sigusr1_is_topo_down() -> None:
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        supervisor = FakeSupervisor()
        signals.attach(supervisor)  # type: ignore[arg-type]
        assert supervisor.asked == [(EXIT_SIGINT, "Ctrl-C")] and supervisor.hurried == 1
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert signals.pending == (EXIT_OK, "stopped by topo down")


def test_ps_shows_a_starting_run() -> None:
    text = format_ps([{"run": "t/1", "file": "/x/t.yaml", "pid": 42, "starting": True, "nodes": []}])
    assert "t/1  (/x/t.yaml, supervisor pid 42)" in text and "starting" in text
