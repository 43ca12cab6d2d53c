"""Bringing topologies up inside tests: ``topo.testing.up`` and probe sockets.

A test starts a topology from a file or a mapping, optionally overriding nodes' keys and
adding *probes*: sockets of the test's own, linked to nodes' sockets like any node's and
wired by the planner. The probes live in the test's thread (they are created, bound,
connected and gated there), and every node linked to a probe waits in its gate for the
probe too, so the test can send the first message or receive a publisher's first message
without a sleep. The run is stopped and cleaned up when the ``with`` block ends, whatever
happened in it.

    from topo.testing import Probe, up

    def test_weather(tmp_path):
        with up("topologies/pubsub.yaml",
                probes={"feed": Probe("SUB", "publisher.news", subscribe=[""])}) as run:
            topic, body = run.probes["feed"].recv_multipart()
            assert run.wait_for("publisher").returned

The supervisor runs in a background thread and owns the run's state; the test sees a copy
of each node's state, kept by a reporter the supervisor calls.

The file's warnings (a socket with no link, a SUB subscribed to nothing) do not stop the
run: they are ``run.warnings`` and each is issued as a :class:`TopologyWarning`, which
pytest lists in its summary; ``up(..., strict=True)`` (or ``TOPO_STRICT=1``) makes them
errors, as ``topo check --strict`` does.

The package: this harness, :mod:`topo.testing.pytest_plugin` (the ``pytest11`` entry
point: the ``topo_up`` fixture), :mod:`topo.testing.overrides` (a topology edited for a
test before it is loaded), :mod:`topo.testing.tapping` (``run.tap("NODE.SOCKET")``: the
messages on a live socket), :mod:`topo.testing.lines` (what a run said, kept),
:mod:`topo.testing.probing` (the probes' sockets, wired as a node's process wires its
own) and :mod:`topo.testing.applying` (``run.apply(source)``: the run changed to an
edited topology). It sits on top of everything but the command line, and may import
every package below it.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
import warnings as py_warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import zmq

from topo.hosts.remotes import Hosts
from topo.supervisor import rundir
from topo.process.control import CONTROL
from topo.errors import Problem
from topo.supervisor.output import LogFiles
from topo.testing.lines import Lines as _Recorder
from topo.testing.probing import HarnessError, ProbeProcess
from topo.testing.tapping import Tap
from topo.testing.overrides import PROBE_NODE, PROBE_PROCESS, OverrideError, Probe
from topo.testing.source import read_source
from topo.plan.diff import PlanDiff
from topo.plan.planner import Plan, make_plan
from topo.supervisor.runstate import STARTING, TERMINAL
from topo.supervisor.recorder import RunRecorder
from topo.supervisor.supervise import Supervisor, default_sys_path
from typing import Callable

__all__ = ["HarnessError", "OverrideError", "Probe", "Result", "Run", "TopologyWarning", "up"]


#: Called with each run :func:`up` starts (the pytest plugin: the runs of the test).
_listeners: list[Callable[[Run], None]] = []


class TopologyWarning(UserWarning):
    """A warning of the topology file (``FILE:LINE:COL: warning: ...``), as ``topo check``
    prints it; the run goes on."""


@dataclass(frozen=True)
class Result:
    name: str
    state: str
    error: str | None
    traceback: str | None
    #: An exec node's program's exit status once it has ended (negative: the signal that
    #: ended it); None for a Python node.
    exitcode: int | None = None

    @property
    def returned(self) -> bool:
        return self.state == "exited"

    @property
    def failed(self) -> bool:
        return self.state == "failed"


class Run:
    """A running topology: its probes, its nodes' states and output."""

    def __init__(self, plan: Plan, *, ready_timeout: float, grace: float, sys_path: tuple[str, ...],
                 record: str | Path | None = None, record_only: Sequence[str] = ()) -> None:
        self.plan = plan
        self.ready_timeout = ready_timeout
        #: The MCAP file the run is recorded to (``up(..., record=...)``), or None.
        self.recording: Path | None = None
        # the names and the file checked before anything starts, as topo up --record does
        self._recording = RunRecorder(plan, str(record), record_only, exclude=frozenset({PROBE_NODE})) \
            if record is not None else None
        run_dir = rundir.create(plan.topology)
        self.recorder = _Recorder(LogFiles(run_dir.log_dir))
        spec = None
        if self._recording is not None:
            spec = self._recording.prepare(str(run_dir.sockets))
            self.recording = Path(self._recording.output)
        external = frozenset({PROBE_PROCESS}) if PROBE_NODE in plan.instances else frozenset()
        self.supervisor = Supervisor(plan, self.recorder, ready_timeout=ready_timeout, grace=grace,
                                     sys_path=sys_path, external=external, run_dir=run_dir, hosts=Hosts,
                                     record=spec)
        self._thread = threading.Thread(target=self._supervise, name="topo:supervisor", daemon=True)
        self.outcome: Any = None
        #: The file's warnings, in file order (``topo check`` prints the same).
        self.warnings: tuple[Problem, ...] = ()
        self.probes: dict[str, zmq.Socket[Any]] = {}
        self._probing: ProbeProcess | None = None
        self._crash: BaseException | None = None
        self._taps: list[Tap] = []

    def _supervise(self) -> None:
        try:
            self.outcome = self.supervisor.run()
        except BaseException as err:  # noqa: BLE001 - reported to the test thread
            self._crash = err
        finally:
            with self.recorder.cond:
                self.recorder.cond.notify_all()

    # -- start ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._recording is not None:
            for note in self._recording.notes():
                self.recorder.system(note)
            self._recording.start(self.plan.file, self.recorder.system)
        self._thread.start()
        if not self.supervisor.listening.wait(10):
            raise HarnessError("the supervisor did not start within 10s")
        if PROBE_NODE in self.plan.instances:
            self._probing = ProbeProcess(self.plan, self.supervisor, self.ready_timeout, self._why)
            self.probes = self._probing.probes
            self._probing.wire()
        self._wait(lambda: all(self._state(n) not in STARTING for n in self.plan.instances),
                   self.ready_timeout + 2, "every node to be ready")
        # failing before its gate opened is a failure to start; after, it is the test's business
        failed = [self.result(n) for n, s in self.recorder.states.items()
                  if s.state == "failed" and s.started is None]
        if failed:
            raise HarnessError("the topology did not come up:\n" + "\n".join(
                f"{r.name}: {r.error}" + (f"\n{r.traceback}" if r.traceback else "") for r in failed))

    # -- while it runs -------------------------------------------------------------------

    def _state(self, name: str) -> str:
        node = self.recorder.states.get(name)
        return node.state if node else "starting"

    def result(self, name: str) -> Result:
        node = self.recorder.states.get(name)
        if node is None:
            return Result(name, "starting", None, None)
        return Result(name, node.state, node.error, node.traceback, node.exitcode)

    def wait_for(self, node: str, timeout: float = 30.0) -> Result:
        """Until the node (every instance, for a replicated node's name) has ended."""
        names = self._instances(node)
        self._wait(lambda: all(self._state(n) in TERMINAL for n in names), timeout, f"{node} to end")
        return self.result(names[0]) if len(names) == 1 else _merge([self.result(n) for n in names])

    def output(self, node: str | None = None) -> list[str]:
        """Lines so far, of one node (its instances) or of all, with their names if all."""
        with self.recorder.cond:
            lines = list(self.recorder.lines)
        if node is None:
            return [f"{name} | {line}" for name, line, _ in lines]
        names = set(self._instances(node)) if node != "topo" else {"topo"}
        return [line for name, line, _ in lines if name in names]

    def wait_for_output(self, node: str, pattern: str, timeout: float = 30.0) -> str:
        """The first line of ``node`` matching the regular expression ``pattern``."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.output(node) if re.search(pattern, line)]
            return bool(found)

        self._wait(seen, timeout, f"a line of {node} matching {pattern!r}")
        return found[0]

    def _instances(self, node: str) -> list[str]:
        if node in self.plan.instances:
            return [node]
        names = [i.name for i in self.plan.instances.values() if i.node == node]
        if not names:
            raise HarnessError(f"no node {node!r} in topology {self.plan.topology!r}")
        return names

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.recorder.cond:
            while not predicate():
                if self._crash is not None:
                    raise HarnessError(f"the supervisor crashed: {self._crash!r}")
                if not self._thread.is_alive() and not predicate():
                    raise HarnessError(self._why(what) + " (the run has ended)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HarnessError(self._why(what))
                self.recorder.cond.wait(min(remaining, 0.5))

    def _why(self, what: str) -> str:
        states = ", ".join(f"{n}: {self._state(n)}" for n in self.plan.instances if n != PROBE_NODE)
        return f"timed out waiting for {what}; nodes: {states}\n" + "\n".join(self.output()[-20:])

    def tap(self, target: str, *, directions: Sequence[str] = ("in", "out"), timeout: float = 10.0) -> Tap:
        """The messages on the live socket ``target`` from now on (:mod:`topo.testing.tapping`)."""
        sockets_dir = str(self.supervisor.run_dir.sockets) if self.supervisor.run_dir else ""
        tap = Tap(f"ipc://{sockets_dir}/{CONTROL}", sockets_dir, target, directions, timeout)
        self._taps.append(tap)
        return tap

    def apply(self, source: str | Path | Mapping[str, Any], *, overlays: Sequence[str | Path] = (),
              sets: Sequence[str] = (), profiles: Sequence[str] = (), strict: bool | None = None,
              lenient: bool = False, timeout: float | None = None) -> PlanDiff:
        """Changes the run to ``source`` (read as :func:`up` reads it) as ``topo apply``
        does, once every started node is ready; returns the difference applied
        (:mod:`topo.testing.applying`)."""
        from topo.testing.applying import apply_to

        diff = apply_to(self.supervisor, source, overlays=overlays, sets=sets, profiles=profiles, strict=strict,
                        lenient=lenient, timeout=timeout or self.ready_timeout + self.supervisor.grace + 5)
        self.plan = self.supervisor.plan
        return diff

    # -- stop ----------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> Any:
        """Stops every node and waits for the run to end; returns its outcome."""
        for tap in self._taps:
            tap.close()
        self.supervisor.request_stop(0, "stopped by the test")
        if self._probing is not None:
            self._probing.close(stopped=self.recorder.states.get(PROBE_NODE) is not None)
            self._probing = None
        self._thread.join(timeout if timeout is not None else self.supervisor.grace + 10)
        if self._recording is not None:  # the file finished once every process has ended
            for line in self._recording.finish():
                self.recorder.system(line)
            self._recording = None
        self.recorder.logs.close()
        return self.outcome

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _merge(results: list[Result]) -> Result:
    failed = [r for r in results if r.failed]
    first = failed[0] if failed else results[0]
    return Result(first.name.rsplit(".", 1)[0], first.state, first.error, first.traceback)


def up(source: str | Path | Mapping[str, Any], *, probes: Mapping[str, Probe] | None = None,
       overrides: Mapping[str, Mapping[str, Any] | None] | None = None, ready_timeout: float = 30.0,
       grace: float = 5.0, overlays: Sequence[str | Path] = (), sets: Sequence[str] = (),
       profiles: Sequence[str] = (), strict: bool | None = None, lenient: bool = False,
       record: str | Path | bool | None = None, record_only: Sequence[str] = ()) -> Run:
    """Starts the topology and returns once every node (and probe) is ready.

    ``overlays``, ``sets`` and ``profiles`` are ``topo up``'s ``-f FILE``, ``--set
    NODE.KEY=VALUE`` and ``--profile NAME``: the files merged over ``source`` in order,
    then the values set, then the profiles selected (``TOPO_PROFILES`` is not read).
    ``overrides`` maps node names to keys replacing the result's (``args`` and ``env``
    are merged key by key): replicas, placement, restart policy, anything a node may say;
    or to None, which leaves the node and its links out (a probe can take its place).
    ``strict``: the file's warnings are errors (:class:`topo.errors.InvalidTopology`);
    None: as ``TOPO_STRICT`` says. Otherwise they are ``run.warnings``, each also issued
    as a :class:`TopologyWarning`. ``lenient``: ``topo up --lenient``'s (a socket with no
    link is a warning).
    ``record``: an MCAP file every socket's messages (or ``record_only``'s, ``NODE.SOCKET``
    or ``INSTANCE.SOCKET``) are recorded to from the first one, as ``topo up --record``
    does; True: a file of its own in a temporary directory (in pytest's own with the
    ``topo_up`` fixture). ``run.recording`` is its path; the pytest plugin names it in
    the report of a failing test.
    """
    topology, path = read_source(source, probes=probes or {}, overrides=overrides or {}, overlays=overlays,
                                 sets=sets, profiles=profiles, strict=strict, lenient=lenient)
    # the file as written, not the copy a test's probes or overrides made (gone by now):
    # an exec node's program and working directory are relative to it
    plan = replace(make_plan(topology), file=path)
    for problem in topology.warnings:
        py_warnings.warn(problem.render(), TopologyWarning, stacklevel=2)
    if record is True:
        record = Path(tempfile.mkdtemp(prefix="topo-rec-")) / f"{plan.topology}.mcap"
    run = Run(plan, ready_timeout=ready_timeout, grace=grace, sys_path=default_sys_path(path, plan.python_path),
              record=record or None, record_only=record_only)
    run.warnings = topology.warnings
    for listener in list(_listeners):
        listener(run)
    try:
        run.start()
    except BaseException:
        run.stop()
        raise
    return run


def probe_placeholder(node: Any) -> None:
    """Never called: probes are driven by the test itself."""
