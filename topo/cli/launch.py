"""``topo up``: a validated file, a supervisor, the terminal and the log files.

Kept apart from the CLI so the CLI stays free of logic and of heavy imports, and from the
supervisor so that the supervisor knows nothing of terminals (the test harness gives it
another reporter).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from topo.supervisor import rundir
from topo.supervisor.output import LogFiles, Printer, format_duration, summary_table
from topo.plan.planner import make_plan
from topo.supervisor.prestart import prestart
from topo.supervisor.spawn import default_sys_path
from topo.supervisor.terminal import STALL, Terminal
from topo.file.validate import load

if TYPE_CHECKING:
    from topo.supervisor.runstate import NodeState, Outcome


class TerminalReporter:
    """Every line to the terminal, prefixed, and to the node's log file."""

    def __init__(self, printer: Printer, logs: LogFiles, terminal: Terminal | None = None) -> None:
        self.printer: Printer | None = printer
        self.logs = logs
        #: The printer's stream when it is a file descriptor, written by a thread of its own.
        self.terminal = terminal

    def hold_until(self) -> float | None:
        """Until when the supervisor may leave output unread: the terminal is behind."""
        return self.terminal.hold_until() if self.terminal is not None else None

    def output(self, name: str, line: str, err: bool) -> None:
        self.logs.write(name, line, err)
        if self.printer is not None:
            self._show(self.printer.line, name, line, err)

    def _show(self, write: Any, *args: Any) -> None:
        """A closed terminal (``topo up | head``) ends the display, not the run: the
        lines still go to the log files."""
        if self.printer is None:
            return
        try:
            write(*args)
        except BrokenPipeError:
            self.printer = None
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nor at exit, when Python flushes stdout
            os.close(devnull)

    def changed(self, node: NodeState) -> None:
        pass

    def system(self, text: str) -> None:
        for line in text.splitlines():
            self.logs.write("topo", line)
            if self.printer is not None:
                self._show(self.printer.system, line)


def up(file: str, *, ready_timeout: float, grace: float, color: bool | None = None,
       stream: TextIO | None = None) -> int:
    stream = stream or sys.stdout
    plan = make_plan(load(file))
    rd = rundir.create(plan.topology)
    sys_path = default_sys_path(file)
    # the processes start before the supervisor and what it imports (zmq, psutil) exist:
    # their start-up runs alongside the rest of this one's (topo.supervisor.prestart)
    early = prestart(plan, rd, ready_timeout=ready_timeout, grace=grace, sys_path=sys_path)
    try:
        from topo.hosts.remotes import Hosts
        from topo.supervisor.supervise import EXIT_SIGINT, EXIT_SIGTERM, Supervisor

        hosts = {i.host for i in plan.instances.values()}
        labels = {name: f"{name}@{i.host}" for name, i in plan.instances.items()} if len(hosts) > 1 else {}
        terminal = _terminal(stream)
        # a Terminal offers what a Printer uses of a stream: write, flush, isatty, fileno
        printer = Printer(cast(TextIO, terminal) if terminal else stream, [*plan.instances, "topo"], color, labels)
        logs = LogFiles(rd.log_dir, on_failure=printer.system)
        reporter = TerminalReporter(printer, logs, terminal)
        supervisor = Supervisor(plan, reporter, ready_timeout=ready_timeout, grace=grace,
                                sys_path=sys_path, run_dir=rd, prestarted=early, hosts=Hosts)
        if terminal is not None:
            terminal.on_room = supervisor.wake
            terminal.notice = lambda n: printer.system_text(
                f"{n} line(s) not shown: the terminal was not reading (the log files have every line)")
    except BaseException:
        if early is not None:
            early.kill()
        rd.remove()
        raise

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if supervisor.code is not None:
            supervisor.hurry()
        else:
            supervisor.request_stop(EXIT_SIGINT, "Ctrl-C")

    # A background job of a non-interactive shell starts with SIGINT ignored: set ours anyway.
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: supervisor.request_stop(EXIT_SIGTERM, "SIGTERM")),
    }
    started = time.monotonic()
    try:
        outcome = supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logs.close()
    _summary(reporter, outcome, time.monotonic() - started)
    try:
        printer.flush()
    except BrokenPipeError:
        pass
    if terminal is not None:
        terminal.drain(STALL)  # all of it for a reader that reads; a stalled one is left
    return outcome.code


def _terminal(stream: TextIO) -> Terminal | None:
    """A :class:`Terminal` over ``stream``'s file descriptor, or None for a stream without
    one (a test's StringIO, written directly)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    stream.flush()  # what Python buffered comes first
    return Terminal(fd, getattr(stream, "encoding", None) or "utf-8")


def _summary(reporter: TerminalReporter, outcome: Outcome, elapsed: float) -> None:
    rows = []
    for node in outcome.nodes.values():
        ran = (node.ended or time.monotonic()) - node.started if node.started else 0.0
        result = node.state if node.state != "exited" else "returned"
        if node.error:  # a failure's error, or a note on how it stopped (ignored the stop)
            first = node.error.splitlines()[0]
            result = f"failed: {first}" if node.state == "failed" else f"{result} ({first})"
        rows.append((node.name, result, ran))
    reporter.system(f"stopped: {outcome.reason or 'done'} after {format_duration(elapsed)} (exit {outcome.code})")
    reporter.system(summary_table(rows))
