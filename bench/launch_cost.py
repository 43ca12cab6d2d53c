"""Part (b) of bench/launch.py: what launching N processes costs topo, in-process,
against the floor of N processes started with multiprocessing ``spawn`` that only
``import zmq`` and report over a pipe.

topo's side is ``topo.supervisor.supervise.Supervisor`` driven directly, with a reporter that notes
when the all-ready line comes and a subclass that only timestamps the control messages it
handles: the time of the launch itself, without `topo up`'s own start (part (a) has that).

Cases: one node per process for each N of ``--sizes`` (a PULL hub and N-1 PUSH senders),
and packed cases, ``NODES/PROCS`` of ``--packed`` (200 nodes in 10 processes by default:
a sink and senders as replicas, each process holding a group of them), whose floor is
PROCS processes: a process costs the same whatever it holds, the nodes are topo's cost.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from bench import nodes
from bench.common import ROOT, cpu_now, interleave, median, ms, p90, quartiles, ratio, run_bounded
from bench.launch_pubsub import TRIAL_TIMEOUT

TARGET_LAUNCH_RATIO = 1.3
READY_TIMEOUT = 60.0  # topo's --ready-timeout in the launch trials (64 processes on a busy 2-core box)
PHASES = ("spawned", "last HELLO", "last BOUND", "last CONNECT sent", "last READY", "last EXITED")

LAUNCH_YAML = """\
topology: bench-launch-{n}
nodes:
  hub:
    run: bench.nodes:idle
    sockets: {{in: PULL}}
  sender:
    run: bench.nodes:idle
    replicas: {senders}
    sockets: {{out: PUSH}}
links:
  - sender.out -> hub.in
"""


@dataclass(frozen=True)
class Case:
    """One size of the benchmark: ``nodes`` nodes in ``processes`` processes."""

    processes: int
    nodes: int

    @property
    def packed(self) -> bool:
        return self.nodes != self.processes

    @property
    def label(self) -> str:
        return f"{self.nodes} nodes / {self.processes} procs" if self.packed else f"{self.processes} procs"


def parse_cases(sizes: str, packed: str) -> list[Case]:
    """``--sizes 2,16,64`` (one node per process) and ``--packed 200/10`` (NODES/PROCS)."""
    cases = [Case(int(s), int(s)) for s in sizes.split(",") if s.strip()]
    for item in packed.split(","):
        if item.strip():
            n, _, p = item.partition("/")
            if not p or int(p) < 1 or int(n) < int(p) + 1:
                raise ValueError(f"--packed {item!r}: NODES/PROCS, with more nodes than processes")
            cases.append(Case(int(p), int(n)))
    if any(c.processes < 2 and not c.packed for c in cases):
        raise ValueError("--sizes start at 2 (a hub and one sender)")
    return sorted(set(cases), key=lambda c: (c.packed, c.processes, c.nodes))


def packed_yaml(case: Case) -> str:
    """``case.nodes`` nodes in ``case.processes`` processes: a PULL sink in the first one and
    PUSH senders, as replicas, spread evenly; every sender linked to the sink (inproc from
    the sink's own process, ipc from the others)."""
    per = [case.nodes // case.processes + (k < case.nodes % case.processes) for k in range(case.processes)]
    per[0] -= 1  # the sink's place
    lines = [f"topology: bench-launch-{case.nodes}-in-{case.processes}", "nodes:",
             "  sink: {run: bench.nodes:idle, process: p0, sockets: {in: PULL}}"]
    links = []
    for k, count in enumerate(per):
        if count:
            lines.append(f"  sender{k}: {{run: bench.nodes:idle, process: p{k}, replicas: {count}, "
                         "sockets: {out: PUSH}}")
            links.append(f"  - sender{k}.out -> sink.in")
    return "\n".join([*lines, "links:", *links]) + "\n"


@dataclass
class Launch:
    """One launch trial of either side, in seconds from its first start."""

    ready: float
    whole: float
    cpu: float
    phases: dict[str, float] = field(default_factory=dict)
    failure: str = ""  # why a topo run that got ready did not end with status 0


def floor(n: int) -> Launch:
    """The least any launcher of ``n`` Python processes that use zmq pays: spawn them, let
    each import zmq and report; all-ready is the last report, the whole run ends at the
    last join."""
    from topo.supervisor.spawn import bare_main  # what topo does for its children, done for the floor too

    ctx = multiprocessing.get_context("spawn")
    cpu = cpu_now()
    start = time.perf_counter()
    pipes = [ctx.Pipe(duplex=False) for _ in range(n)]
    procs = [ctx.Process(target=nodes.floor_child, args=(w,), daemon=True) for _, w in pipes]
    with bare_main():
        for proc in procs:
            proc.start()
    for _, w in pipes:
        w.close()
    pending = [r for r, _ in pipes]
    deadline = start + TRIAL_TIMEOUT
    try:
        while pending:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"floor: {len(pending)} of {n} processes never reported")
            for conn in wait(pending, timeout=remaining):
                assert isinstance(conn, Connection)
                try:
                    conn.recv()
                except EOFError as err:
                    raise RuntimeError("floor: a process died before reporting") from err
                pending.remove(conn)
        ready = time.perf_counter() - start
        for proc in procs:
            proc.join(max(0.1, deadline - time.perf_counter()))
        whole = time.perf_counter() - start
        cpu = cpu_now() - cpu
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        for r, _ in pipes:
            r.close()
    return Launch(ready, whole, cpu)


class Recorder:
    """A Supervisor reporter that keeps the time of each message the supervisor shows."""

    READY = re.compile(r"all \d+ node\(s\) ready")

    def __init__(self) -> None:
        self.ready_at: float | None = None
        self.spawned_at: float | None = None
        self.lines: list[str] = []

    def output(self, name: str, line: str, err: bool) -> None:
        self.lines.append(f"{name} | {line}")

    def system(self, text: str) -> None:
        now = time.perf_counter()
        if self.ready_at is None and self.READY.match(text):
            self.ready_at = now
        if self.spawned_at is None and text.startswith("started "):
            self.spawned_at = now
        self.lines.append(f"topo | {text}")

    def changed(self, node: Any) -> None:
        """A node's state changed: the phases come from the control messages instead."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        """Any other reporter call a newer supervisor makes: ignored, not fatal."""
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def make_supervisor(plan: Any, reporter: Recorder) -> Any:
    """A Supervisor that stamps the control messages it handles (the phases of a launch)."""
    from topo.supervisor.supervise import Supervisor

    class Stamped(Supervisor):
        stamps: dict[str, list[float]]

        def _handle(self, m: Any) -> None:
            self.stamps.setdefault(m.kind.name, []).append(time.perf_counter())
            super()._handle(m)

        def _maybe_connect(self) -> None:
            before = sum(p.connected for p in self.procs.values())
            super()._maybe_connect()
            if sum(p.connected for p in self.procs.values()) > before:
                self.stamps.setdefault("CONNECT sent", []).append(time.perf_counter())

    sup = Stamped(plan, reporter, ready_timeout=READY_TIMEOUT, grace=5.0, sys_path=(str(ROOT),))
    sup.stamps = {}
    return sup


def topo_launch(plan: Any) -> Launch:
    """One run of ``plan`` by topo's supervisor, nodes returning at once: all-ready is the
    supervisor's all-ready line, the whole run ends when ``Supervisor.run`` returns."""
    reporter = Recorder()
    cpu = cpu_now()
    start = time.perf_counter()
    sup = make_supervisor(plan, reporter)
    outcome = run_bounded(sup, TRIAL_TIMEOUT)
    whole = time.perf_counter() - start
    cpu = cpu_now() - cpu
    failure = "" if outcome.code == 0 else next(
        (line for line in reporter.lines if " failed: " in line), f"exit {outcome.code}: {outcome.reason}")
    ready_at = reporter.ready_at
    if ready_at is None and len(sup.stamps.get("READY", ())) == len(plan.instances):
        # every node did report READY, but the supervisor had already failed the run (and so
        # printed no all-ready line): the launch itself worked, the time is that of the last READY
        ready_at = max(sup.stamps["READY"])
    if ready_at is None:  # counted as a failed run; its times are left out of the statistics
        return Launch(float("nan"), whole, cpu, {}, f"never all ready: {failure}")
    phases = {"spawned": (reporter.spawned_at or start) - start}
    for kind in ("HELLO", "BOUND", "CONNECT sent", "READY", "EXITED"):
        if sup.stamps.get(kind):
            phases[f"last {kind}"] = max(sup.stamps[kind]) - start
    return Launch(ready_at - start, whole, cpu, phases, failure)


def launch_plan(tmp: Path, case: Case) -> Any:
    """topo's plan of a case, made once: planning is not part of the launch measured."""
    from topo.plan.planner import make_plan
    from topo.file.validate import load

    file = tmp / f"launch-{case.nodes}-{case.processes}.yaml"
    file.write_text(packed_yaml(case) if case.packed else LAUNCH_YAML.format(n=case.nodes, senders=case.nodes - 1))
    plan = make_plan(load(str(file)))
    if len(plan.processes) != case.processes or len(plan.instances) != case.nodes:
        raise RuntimeError(f"{case.label}: planned {len(plan.instances)} nodes in {len(plan.processes)} processes")
    return plan


@dataclass
class CaseResult:
    """Every trial of one case; ``paired_*``: topo over the floor trial of the same round."""

    topo: list[Launch] = field(default_factory=list)
    floor: list[Launch] = field(default_factory=list)
    lost: list[Launch] = field(default_factory=list)  # topo runs that never got all ready
    paired_ready: list[float] = field(default_factory=list)
    paired_whole: list[float] = field(default_factory=list)


def bench_launch(tmp: Path, cases: list[Case], runs: int, progress: Callable[[str], None]) -> dict[Case, CaseResult]:
    """``runs`` rounds; in each, every case once on each side, the order flipping by round."""
    plans = {c: launch_plan(tmp, c) for c in cases}
    results = {c: CaseResult() for c in cases}
    smallest = min(cases, key=lambda c: c.processes)
    topo_launch(plans[smallest])  # untimed warm-up of both sides
    floor(smallest.processes)

    def topo_trial(case: Case, got: dict[str, Launch]) -> None:
        """A run that never got all ready is kept aside and the trial run again (3 tries):
        its time says nothing about the launch; how many there were is reported."""
        for _ in range(3):
            run = topo_launch(plans[case])
            if not math.isnan(run.ready):
                got["topo"] = run
                return
            results[case].lost.append(run)

    def floor_trial(case: Case, got: dict[str, Launch]) -> None:
        got["floor"] = floor(case.processes)

    for i in range(runs):
        for case in cases:
            got: dict[str, Launch] = {}
            interleave(i, partial(topo_trial, case, got), partial(floor_trial, case, got))
            res = results[case]
            res.floor.append(got["floor"])
            if "topo" in got:  # paired only with the floor trial of its own round
                res.topo.append(got["topo"])
                res.paired_ready.append(got["topo"].ready / got["floor"].ready)
                res.paired_whole.append(got["topo"].whole / got["floor"].whole)
        progress(f"launch: {i + 1}/{runs} rounds")
    return results


def launch_rows(results: dict[Case, CaseResult]) -> tuple[list[list[str]], list[list[str]], list[list[str]],
                                                           dict[str, bool]]:
    """The three tables of (b) (times, CPU, phases) and the verdicts, judged on the paired
    ratios for every case, all-ready and whole run alike."""
    rows, cost_rows, phase_rows = [], [], []
    verdicts = {}
    for case, res in results.items():
        tr, fr = [x.ready for x in res.topo], [x.ready for x in res.floor]
        tw, fw = [x.whole for x in res.topo], [x.whole for x in res.floor]
        tc, fc = median([x.cpu for x in res.topo]), median([x.cpu for x in res.floor])
        paired, paired_whole = median(res.paired_ready), median(res.paired_whole)
        rows.append([str(case.processes), str(case.nodes), str(len(tr)), ms(median(fr)), ms(p90(fr)),
                     ms(median(tr)), ms(p90(tr)), f"**{ratio(median(tr), median(fr))}** (paired {paired:.2f}x)",
                     ms(median(fw)), ms(median(tw)), f"{ratio(median(tw), median(fw))} (paired {paired_whole:.2f}x)"])
        cost_rows.append([str(case.processes), str(case.nodes), ms(fc), ms(tc), ratio(tc, fc), ms(fc / case.processes),
                          ms(tc / case.processes), str(sum(bool(x.failure) for x in res.topo)), str(len(res.lost))])
        for what, value in (("all-ready", paired), ("whole run", paired_whole)):
            verdicts[f"{case.label}: {what} within {TARGET_LAUNCH_RATIO}x of the floor (paired {value:.2f}x)"] = (
                value <= TARGET_LAUNCH_RATIO)
        phase_rows.append([str(case.processes), str(case.nodes),
                           *(ms(median([x.phases[k] for x in res.topo if k in x.phases])) for k in PHASES)])
    return rows, cost_rows, phase_rows, verdicts


def growth_rows(results: dict[Case, CaseResult]) -> list[list[str]]:
    """How the launch grows with N: the cost of each further process between two sizes
    (one node per process), topo's next to the floor's. A constant per-process cost on
    both sides means the ratio tends to theirs; topo's slope is what a larger run pays."""
    sizes = sorted((c for c in results if not c.packed), key=lambda c: c.processes)
    def at(case: Case, side: str) -> float:
        runs: list[Launch] = getattr(results[case], side)
        return median([x.ready for x in runs])

    rows = []
    for a, b in pairwise(sizes):
        dn = b.processes - a.processes
        t, f = ((at(b, side) - at(a, side)) / dn for side in ("topo", "floor"))
        rows.append([f"{a.processes} → {b.processes}", ms(f), ms(t), ratio(t, f)])
    return rows


def launch_json(results: dict[Case, CaseResult]) -> list[dict[str, Any]]:
    """Every trial of every case, in seconds, for bench/plots.py and bench/summary.py."""
    out = []
    for case, res in results.items():
        entry: dict[str, Any] = {"label": case.label, "processes": case.processes, "nodes": case.nodes,
                                 "packed": case.packed, "paired_ready": res.paired_ready,
                                 "paired_whole": res.paired_whole, "paired_ready_median": median(res.paired_ready),
                                 "paired_whole_median": median(res.paired_whole), "never_ready": len(res.lost),
                                 "ready_exit_nonzero": sum(bool(x.failure) for x in res.topo)}
        for side, runs in (("topo", res.topo), ("floor", res.floor)):
            ready = [x.ready for x in runs]
            entry[side] = {"ready": ready, "whole": [x.whole for x in runs], "cpu": [x.cpu for x in runs],
                           "ready_median": median(ready), "ready_quartiles": list(quartiles(ready)),
                           "whole_median": median([x.whole for x in runs])}
        entry["topo"]["phases"] = {k: median([x.phases[k] for x in res.topo if k in x.phases]) for k in PHASES}
        out.append(entry)
    return out
