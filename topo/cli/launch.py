"""``topo up``: a validated file, a supervisor, the terminal and the log files.

Kept apart from the CLI so the CLI stays free of logic and of heavy imports, and from the
supervisor so that the supervisor knows nothing of terminals (the test harness gives it
another reporter).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from topo.cli.sourceopts import Checking
from topo.errors import UsageError
from topo.supervisor import rundir
from topo.supervisor.output import LogFiles, Printer, format_duration, summary_table
from topo.plan.planner import make_plan
from topo.supervisor.prestart import prestart
from topo.supervisor.spawn import default_sys_path
from topo.supervisor.runstate import EXIT_OK, EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGTERM
from topo.supervisor.terminal import STALL, Terminal
from topo.file.runref import load_resolved
from topo.file.sources import Sources
from topo.file.validate import load

if TYPE_CHECKING:
    from topo.cli.detach import StatusPipe
    from topo.supervisor.recorder import RunRecorder
    from topo.supervisor.runstate import NodeState, Outcome
    from topo.supervisor.supervise import Supervisor
    from topo.supervisor.watching import Watcher


class TerminalReporter:
    """Every line to the terminal, prefixed, and to the node's log file."""

    def __init__(self, printer: Printer, logs: LogFiles, terminal: Terminal | None = None) -> None:
        self.printer: Printer | None = printer
        self.logs = logs
        #: The printer's stream when it is a file descriptor, written by a thread of its own.
        self.terminal = terminal
        #: Called after each of topo's lines (``topo up -d``: :mod:`topo.cli.detach`).
        self.after_system: Callable[[], None] | None = None

    def hold_until(self) -> float | None:
        """Until when the supervisor may leave output unread: the terminal is behind."""
        return self.terminal.hold_until() if self.terminal is not None else None

    def batch(self) -> AbstractContextManager[None]:
        """Lines shown inside reach the log files together (one turn of the supervisor's loop)."""
        return self.logs.batch()

    def output(self, name: str, line: str, err: bool) -> None:
        self.logs.write(name, line, err)
        if self.printer is not None:
            self._show(self.printer.line, name, line, err)

    def _show(self, write: Any, *args: Any) -> None:
        """A closed terminal (``topo up | head``, or a terminal window closed: EIO after
        its SIGHUP) ends the display, not the run: the lines still go to the log files."""
        if self.printer is None:
            return
        try:
            write(*args)
        except OSError:  # BrokenPipeError, EIO
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
        if self.after_system is not None:
            self.after_system()


class StopSignals:
    """``topo up``'s stop signals, handled from its first step to its last.

    Each signal only records a stop request (and wakes the supervisor's loop once there is
    one); none raises. Before, a Ctrl-C while the processes were being started raised
    KeyboardInterrupt in the middle of it: a process started but not yet recorded was
    neither stopped nor killed, and multiprocessing joined it forever at exit.

    - SIGINT (Ctrl-C): stop, exit 130; a second one while stopping ends the grace period.
    - SIGTERM: stop, exit 143. SIGHUP (the terminal closed): stop, exit 129.
    - SIGUSR1: ``topo down`` of a run whose control socket is not bound yet (its
      processes are still being started): stop as ``topo down`` does, exit 0.

    Installed even where the signal was ignored (a background job of a non-interactive
    shell starts with SIGINT ignored): ``kill -INT`` must still stop the run.
    """

    def __init__(self) -> None:
        #: The first stop asked before there was a supervisor to tell: (code, reason).
        self.pending: tuple[int, str] | None = None
        self._hurry = False
        self._supervisor: Supervisor | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        asks = {signal.SIGINT: (EXIT_SIGINT, "Ctrl-C"), signal.SIGTERM: (EXIT_SIGTERM, "SIGTERM"),
                signal.SIGHUP: (EXIT_SIGHUP, "SIGHUP (terminal closed)"),
                signal.SIGUSR1: (EXIT_OK, "stopped by topo down")}
        for sig, (code, reason) in asks.items():
            self._previous[sig] = signal.signal(sig, functools.partial(self._on, code, reason))
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self) -> bool:
        return self.pending is not None or (self._supervisor is not None and self._supervisor.code is not None)

    def attach(self, supervisor: Supervisor) -> None:
        """From now on the supervisor is told; a request made before is passed on. The
        supervisor is set first: a signal in between is either still pending (and read
        below) or told to the supervisor directly."""
        self._supervisor = supervisor
        if self.pending is not None:
            supervisor.request_stop(*self.pending)
        if self._hurry:
            supervisor.hurry()

    def _on(self, code: int, reason: str, signum: int, frame: FrameType | None) -> None:
        supervisor = self._supervisor
        again = signum == signal.SIGINT and self.requested()
        if supervisor is None:
            self.pending = self.pending or (code, reason)
            self._hurry = self._hurry or again
        elif again:
            supervisor.hurry()
        else:
            supervisor.request_stop(code, reason)


def up(file: str | Sources, *, ready_timeout: float, grace: float, color: bool | None = None,
       stream: TextIO | None = None, checking: Checking = Checking(),
       status_fd: int | None = None, status_tty: bool = False, record: str | None = None,
       record_only: Sequence[str] = (), watch: bool = False) -> int:
    """``file``: a topology file, or one with overlays, ``--set`` values and profiles.
    ``checking.run_check``: every node's ``run:`` resolved before anything starts
    (:mod:`topo.file.runref`): a typo is one located error, not a failure per instance.
    ``checking.strict``: the file's warnings are errors (None: ``TOPO_STRICT`` decides);
    without it they are shown once, first, and the run goes on.
    ``status_fd``: this is the background half of ``topo up -d`` (:mod:`topo.cli.detach`),
    whose user sees its output on a terminal if ``status_tty``.
    ``record``: the MCAP file every socket's messages (or ``record_only``'s) are recorded
    to from the first one (:mod:`topo.supervisor.recorder`).
    ``watch``: each saved version of the files applied, the nodes whose code is saved
    restarted (:mod:`topo.supervisor.watching`)."""
    status = None
    if status_fd is not None:
        from topo.cli.detach import StatusPipe

        status = StatusPipe(status_fd, status_tty)
    with StopSignals() as signals:
        return _up(file, signals, ready_timeout=ready_timeout, grace=grace, color=color,
                   stream=stream or sys.stdout, checking=checking, status=status, record=record,
                   record_only=record_only, watch=watch)


def _up(file: str | Sources, signals: StopSignals, *, ready_timeout: float, grace: float, color: bool | None,
        stream: TextIO, checking: Checking, status: StatusPipe | None = None, record: str | None = None,
        record_only: Sequence[str] = (), watch: bool = False) -> int:
    if checking.run_check:
        topology = load_resolved(file, starting=True, strict=checking.strict, lenient=checking.lenient)
    else:
        topology = load(file, strict=checking.strict, lenient=checking.lenient)
    if topology.allocation is not None and topology.allocation.stand_in:
        raise UsageError(f"{topology.file}: hosts: {{from: {topology.allocation.kind}}} takes the hosts of the Slurm "
                         "allocation topo up runs in, and there is none (no SLURM_JOB_ID): run it under salloc "
                         "or in an sbatch script")
    plan = make_plan(topology)
    if record_only and record is None:
        raise UsageError("--record-only names what --record OUT.mcap records: give --record too")
    recorder: RunRecorder | None = None
    if record is not None:  # the names and the file checked before anything starts
        from topo.supervisor.recorder import RunRecorder

        recorder = RunRecorder(plan, record, record_only)
    if signals.pending is not None:  # nothing exists yet that a stop would have to undo
        if recorder is not None:
            recorder.kill()
        print(f"topo: {signals.pending[1]} before the run started", file=sys.stderr)
        return signals.pending[0]
    rd = rundir.create(plan.topology)
    spec = recorder.prepare(str(rd.sockets)) if recorder is not None else None
    if status is not None:
        status.tell("run", rd.identity)
    try:
        # visible to `topo ps` and stoppable by `topo down` (SIGUSR1: no control socket
        # yet) from before the first process starts; the supervisor writes it again once
        # its control socket is bound
        rd.write_info(pid=os.getpid(), started=rundir.create_time(), file=str(Path(plan.file).resolve()),
                      **rundir.overlays_info(plan.overlays), starting=True)
        sys_path = default_sys_path(plan.file, plan.python_path)
        if recorder is not None:  # first: the processes' gates wait for it, its start runs beside theirs
            recorder.start(plan.file)
        # the processes start before the supervisor and what it imports (zmq, psutil) exist:
        # their start-up runs alongside the rest of this one's (topo.supervisor.prestart)
        early = prestart(plan, rd, ready_timeout=ready_timeout, grace=grace, sys_path=sys_path,
                         stop=signals.requested, record=spec)
    except BaseException:
        if recorder is not None:
            recorder.kill()
        rd.remove()
        raise
    try:
        from topo.hosts.remotes import Hosts
        from topo.supervisor.supervise import Supervisor

        hosts = {i.host for i in plan.instances.values()}
        labels = {name: f"{name}@{i.host}" for name, i in plan.instances.items()} if len(hosts) > 1 else {}
        terminal = _terminal(stream)
        # a Terminal offers what a Printer uses of a stream: write, flush, isatty, fileno
        printer = Printer(cast(TextIO, terminal) if terminal else stream, [*plan.instances, "topo"], color, labels,
                          raw=None if status is None else not status.tty)  # -d: as on the user's terminal
        logs = LogFiles(rd.log_dir, on_failure=printer.system)
        reporter = TerminalReporter(printer, logs, terminal)
        for warning in topology.warnings:  # before any node's line: the supervisor reads none yet
            reporter.system(warning.render())
        if recorder is not None:
            for note in recorder.notes():
                reporter.system(note)
            recorder.tell(reporter.system)
        supervisor = Supervisor(plan, reporter, ready_timeout=ready_timeout, grace=grace,
                                sys_path=sys_path, run_dir=rd, prestarted=early, hosts=Hosts, record=spec)
        if status is not None:  # shown until every node is ready, then the log files only
            status.watch(reporter, supervisor, rd.identity)
        if terminal is not None:
            terminal.on_room = supervisor.wake
            terminal.notice = lambda n: printer.system_text(
                f"{n} line(s) not shown: the terminal was not reading (the log files have every line)")
    except BaseException:
        if early is not None:
            early.kill()
        if recorder is not None:
            recorder.kill()
        rd.remove()
        raise
    signals.attach(supervisor)
    watcher = _watcher(supervisor, file, checking) if watch else None
    started = time.monotonic()
    try:
        try:
            outcome = supervisor.run()
        finally:
            if watcher is not None:
                watcher.stop()
            for line in recorder.finish() if recorder is not None else ():  # the file finished, whatever the end
                reporter.system(line)
    finally:
        logs.close()
    _summary(reporter, outcome, time.monotonic() - started)
    try:
        printer.flush()
    except OSError:
        pass
    if terminal is not None:
        terminal.drain(STALL)  # all of it for a reader that reads; a stalled one is left
    return outcome.code


def _watcher(supervisor: Supervisor, file: str | Sources, checking: Checking) -> Watcher:
    from topo.supervisor.watching import Watcher

    sources = file if isinstance(file, Sources) else Sources((file,))
    watcher = Watcher(supervisor, sources, {"strict": checking.strict, "lenient": checking.lenient,
                                            "run_check": checking.run_check})
    watcher.start()
    return watcher


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
