"""Benchmark: what `topo up` costs at launch, next to the classic way and to the bare floor.

    python bench/launch.py             # the full run (about ten minutes on 2 cores)
    python bench/launch.py --quick     # fewer trials (a few minutes)
    python bench/launch.py --profile   # plus where topo's launch time goes

(a) Classic vs topo, 2-node pub/sub, both as subprocesses (interpreter start-up included):
    `python -m topo up FILE` (publisher sends one message and returns; subscriber receives
    one, 2 s timeout, and returns) against bench/classic_pubsub.py, the same two processes
    started as a common cheat sheet does it (spawn, SUB first, sleep 0.1, PUB binds, sleep
    0.2, send, sleep 0.1; ipc). Two scenarios: a prompt subscriber, and a slow one whose
    module takes 0.3 s to import (bench/slow_nodes.py). Wall time median and p90, the
    topo/classic ratio, and first-message losses out of N runs each.
(b) Launch cost, in-process: time to all-ready of N processes (1 PULL hub + N-1 PUSH
    senders, one node per process, nodes return at once) driven by topo.supervisor's
    Supervisor, against the floor: N processes started with multiprocessing `spawn` that
    only `import zmq` and report over a pipe, timed from the first start to the last report.
    Also the whole run (until Supervisor.run returns / every floor child is joined).

Every topo trial runs next to its baseline trial, in alternating order, so load drifts of
the machine hit both. Results go to stdout and to docs/benchmarks-launch.md (the section
between its results markers). Targets: (a) topo faster than classic, zero losses;
(b) all-ready within 1.3x of the floor. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import multiprocessing
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import nodes
from bench.common import ROOT, machine, median, ms, p90, ratio, sanitize, table, write_results

PAGE = ROOT / "docs" / "benchmarks-launch.md"
TARGET_LAUNCH_RATIO = 1.3
TRIAL_TIMEOUT = 90.0  # seconds; no trial of this benchmark may take longer
READY_TIMEOUT = 60.0  # topo's --ready-timeout in the launch trials (64 processes on a busy 2-core box)
RECEIVE_TIMEOUT = 2.0  # the subscriber's receive timeout, in both setups
PUBSUB_HEADER = ["scenario", "setup", "runs", "median wall", "p90 wall", "topo/classic wall", "subscriber done at",
                 "topo/classic done", "median CPU", "topo/classic CPU", "first message lost", "exit ≠ 0",
                 "exit stalled"]
PHASES = ("spawned", "last HELLO", "last BOUND", "last CONNECT sent", "last READY", "last EXITED")

PUBSUB_YAML = """\
topology: bench-pubsub
nodes:
  publisher:
    run: bench.nodes:publisher
    sockets: {{out: PUB}}
  subscriber:
    run: {module}:subscriber
    args: {{timeout: {timeout}}}
    sockets:
      in: {{type: SUB, subscribe: [topic]}}
links:
  - publisher.out -> subscriber.in
"""

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


def cpu_now() -> float:
    """CPU seconds used so far by this process (all threads) and by its reaped descendants:
    the work a launch costs, which machine load does not inflate as it does wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def interleave(i: int, topo_trial: Callable[[], object], baseline_trial: Callable[[], object]) -> None:
    """One trial of each, topo first in even rounds and the baseline first in odd ones."""
    for trial in (topo_trial, baseline_trial) if i % 2 == 0 else (baseline_trial, topo_trial):
        trial()


# -- (a) classic vs topo, as subprocesses -----------------------------------------------------

@dataclass
class Trial:
    wall: float        # start of the command to its exit
    result: float      # start of the command to the subscriber's printed result
    received: bool
    cpu: float
    stalled: bool = False  # topo: a process did not end by itself and was sent SIGTERM
    note: str = ""


@dataclass
class Ran:
    wall: float
    cpu: float
    code: int
    output: str
    result: float  # when the subscriber's line (received or lost) appeared; nan if never


def run_command(cmd: list[str], env: dict[str, str]) -> Ran:
    """Runs one command, reading its output (stdout and stderr) as it comes, so the time of
    the subscriber's result line is known as well as the exit's; CPU of it and its children."""
    cpu = cpu_now()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(TRIAL_TIMEOUT, proc.kill)
    watchdog.start()
    lines, result = [], float("nan")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if math.isnan(result) and (nodes.RECEIVED in line or nodes.LOST in line):
                result = time.perf_counter() - start
            lines.append(line)
        code = proc.wait()
    finally:
        watchdog.cancel()
    return Ran(time.perf_counter() - start, cpu_now() - cpu, code, "".join(lines), result)


TOPO_UP = [sys.executable, "-m", "topo", "up"]
#: `topo up` with the suggested changes (the --profile experiment; not topo as shipped)
TOPO_UP_EXPERIMENT = [sys.executable, str(ROOT / "bench" / "topo_experiment.py")]


def topo_pubsub(file: Path, env: dict[str, str], command: list[str] = TOPO_UP) -> Trial:
    ran = run_command([*command, str(file)], env)
    failed = [line for line in ran.output.splitlines() if " failed: " in line]
    note = "" if ran.code == 0 else f"exit {ran.code}: " + (failed[0] if failed else ran.output[-300:])
    return Trial(ran.wall, ran.result, nodes.RECEIVED in ran.output, ran.cpu,
                 "did not stop within" in ran.output, note)


def classic_pubsub(tmp: Path, slow: bool, env: dict[str, str], i: int) -> Trial:
    socket_path = tmp / f"classic-{i}.ipc"
    cmd = [sys.executable, str(ROOT / "bench" / "classic_pubsub.py"), str(socket_path)]
    ran = run_command(cmd + (["--slow"] if slow else []), env)
    note = "" if ran.code == 0 else f"exit {ran.code}: {ran.output[-300:]}"
    try:
        socket_path.unlink()
    except OSError:
        pass
    return Trial(ran.wall, ran.result, nodes.RECEIVED in ran.output, ran.cpu, False, note)


@dataclass
class Pair:
    topo: list[Trial] = field(default_factory=list)
    classic: list[Trial] = field(default_factory=list)


def bench_pubsub(tmp: Path, env: dict[str, str], runs: int, loss_runs: int, progress: Callable[[str], None],
                 command: list[str] = TOPO_UP) -> dict[str, Pair]:
    files = {}
    for scenario, module in (("prompt", "bench.nodes"), ("slow", "bench.slow_nodes")):
        files[scenario] = tmp / f"pubsub-{scenario}.yaml"
        files[scenario].write_text(PUBSUB_YAML.format(module=module, timeout=RECEIVE_TIMEOUT))
    results = {"prompt": Pair(), "slow": Pair()}

    def topo_once(pair: Pair, file: Path) -> None:
        pair.topo.append(topo_pubsub(file, env, command))

    def classic_once(pair: Pair, slow: bool, i: int) -> None:
        pair.classic.append(classic_pubsub(tmp, slow, env, i))

    # one untimed round of each: .pyc files and the page cache warm for both sides alike
    topo_pubsub(files["prompt"], env, command)
    classic_pubsub(tmp, False, env, -1)
    for i in range(max(runs, loss_runs)):
        for scenario, n in (("prompt", runs), ("slow", loss_runs)):
            if i >= n:
                continue
            interleave(i, partial(topo_once, results[scenario], files[scenario]),
                       partial(classic_once, results[scenario], scenario == "slow", i))
        if (i + 1) % 10 == 0 or i + 1 == max(runs, loss_runs):
            progress(f"pub/sub: {i + 1}/{max(runs, loss_runs)} rounds")
    return results


# -- (b) launch cost, in-process --------------------------------------------------------------

@contextmanager
def bare_main() -> Iterator[None]:
    """What topo.spawn does for its children, done for the floor's too: ``spawn`` would
    otherwise re-import this script in every child, a cost neither side should pay."""
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real


@dataclass
class Launch:
    ready: float
    whole: float
    cpu: float
    phases: dict[str, float] = field(default_factory=dict)
    failure: str = ""  # why a topo run that got ready did not end with status 0


def floor(n: int) -> Launch:
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
    from topo.supervisor import Supervisor

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
    reporter = Recorder()
    cpu = cpu_now()
    start = time.perf_counter()
    sup = make_supervisor(plan, reporter)
    watchdog = threading.Timer(TRIAL_TIMEOUT, lambda: sup.request_stop(1, "benchmark timeout"))
    watchdog.start()
    try:
        outcome = sup.run()
    finally:
        watchdog.cancel()
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


def launch_plan(tmp: Path, n: int) -> Any:
    from topo.plan import make_plan
    from topo.validate import load

    file = tmp / f"launch-{n}.yaml"
    file.write_text(LAUNCH_YAML.format(n=n, senders=n - 1))
    return make_plan(load(str(file)))


def bench_launch(tmp: Path, sizes: list[int], runs: int, progress: Callable[[str], None]) -> dict[int, dict[str, list[Launch]]]:
    plans = {n: launch_plan(tmp, n) for n in sizes}
    results: dict[int, dict[str, list[Launch]]] = {n: {"topo": [], "floor": [], "lost": []} for n in sizes}
    topo_launch(plans[min(sizes)])  # untimed warm-up of both sides
    floor(min(sizes))

    def topo_trial(n: int) -> None:
        """A run that never got all ready is kept aside and the trial run again (3 tries):
        its time says nothing about the launch; how many there were is reported."""
        for _ in range(3):
            run = topo_launch(plans[n])
            if not math.isnan(run.ready):
                results[n]["topo"].append(run)
                return
            results[n]["lost"].append(run)

    def floor_trial(n: int) -> None:
        results[n]["floor"].append(floor(n))

    for i in range(runs):
        for n in sizes:
            interleave(i, partial(topo_trial, n), partial(floor_trial, n))
        progress(f"launch: {i + 1}/{runs} rounds")
    return results


# -- profile ------------------------------------------------------------------------------------

def profile(tmp: Path, n: int) -> str:
    """Where topo's launch time goes: the supervisor (cProfile) and a child's imports."""
    out = [f"### Profile: supervisor side, in-process, N={n} (cProfile, top 15 by own time)", "", "```"]
    plan = launch_plan(tmp, n)
    prof = cProfile.Profile()
    prof.enable()
    topo_launch(plan)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(15)
    out += [line for line in buf.getvalue().splitlines() if line.strip()][-17:]
    out += ["```", "", "### Profile: a child's imports (`python -X importtime`, best of 7, ms)", ""]
    rows = []
    for label, code in (
        ("interpreter only", "pass"),
        ("import zmq (the floor's child)", "import zmq"),
        ("a topo child (topo.runtime, topo.runner, bench.nodes)", "import topo.runtime, topo.runner, bench.nodes"),
        ("what a child's runtime needs at least (zmq, json, threading, queue, selectors, ctypes)",
         "import zmq, json, threading, queue, selectors, ctypes, signal"),
        ("the `topo up` process (topo.cli, topo.launch)", "import topo.cli, topo.launch"),
    ):
        best: float | None = None
        top: list[tuple[int, str]] = []
        for _ in range(7):
            proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                                  capture_output=True, text=True, timeout=TRIAL_TIMEOUT, check=True)
            entries = []
            for line in proc.stderr.splitlines():
                m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
                if m:
                    entries.append((int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)))
            total = sum(e[0] for e in entries) / 1000
            if best is None or total < best:
                best = total
                top = sorted(((e[0], e[3]) for e in entries), reverse=True)[:8]
        rows.append([label, f"{best:.0f}", ", ".join(f"{name} {us / 1000:.0f}" for us, name in top)])
    out.append(table(["child", "all imports (ms)", "largest own times (ms)"], rows))
    return "\n".join(out)


def forkserver_experiment(tmp: Path, sizes: list[int], runs: int) -> str:
    """Measured potential of one suggestion: fork every process of a run from a forkserver
    that has preloaded zmq and topo's runtime (bench/forkserver_patch.py), a fresh forkserver
    per run, its start-up included in the time. Interleaved with the spawn floor."""
    import multiprocessing.forkserver as mp_forkserver

    import topo.spawn

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bench.forkserver_patch"])
    shipped = topo.spawn._spawn
    plans = {n: launch_plan(tmp, n) for n in sizes}
    res: dict[int, dict[str, list[Launch]]] = {n: {"floor": [], "fork": []} for n in sizes}

    def forked(n: int) -> Launch:
        mp_forkserver._forkserver._stop()  # type: ignore[attr-defined]
        cpu = cpu_now()
        topo.spawn._spawn = ctx  # type: ignore[assignment]
        try:
            run = topo_launch(plans[n])
        finally:
            topo.spawn._spawn = shipped
            # stopped and reaped, so its CPU and its children's count
            mp_forkserver._forkserver._stop()  # type: ignore[attr-defined]
        run.cpu = cpu_now() - cpu
        return run

    def forked_trial(n: int) -> None:
        res[n]["fork"].append(forked(n))

    def floor_trial(n: int) -> None:
        res[n]["floor"].append(floor(n))

    forked(min(sizes))  # warm-up
    for i in range(runs):
        for n in sizes:
            interleave(i, partial(forked_trial, n), partial(floor_trial, n))
    rows = []
    for n, r in res.items():
        fr = median([x.ready for x in r["floor"]])
        good = [x for x in r["fork"] if not math.isnan(x.ready)]
        tr = median([x.ready for x in good])
        rows.append([str(n), str(len(good)), ms(fr), ms(tr), f"**{ratio(tr, fr)}**",
                     ms(median([x.whole for x in good])), ms(median([x.cpu for x in good]) / n),
                     str(len(r["fork"]) - len(good))])
    return ("### Experiment: topo's launch with its processes forked from a preloaded forkserver\n\n"
            "Not topo as shipped: the benchmark swaps `topo.spawn`'s multiprocessing context for a "
            "`forkserver` one that preloads zmq and topo's runtime (bench/forkserver_patch.py); a new "
            "forkserver for every run, its start included (CPU/process: the forkserver's and the "
            "children's CPU, all reaped, over N). Against the same spawn floor:\n\n"
            + table(["N procs", "runs", "spawn floor ready", "topo+forkserver ready", "vs floor",
                     "topo+forkserver whole", "CPU/process", "never ready"], rows))


# -- report -------------------------------------------------------------------------------------

def pubsub_rows(results: dict[str, Pair], delay: float) -> tuple[list[list[str]], dict[str, bool]]:
    rows = []
    verdicts = {}
    for scenario, whole in results.items():
        label = "prompt subscriber" if scenario == "prompt" else f"slow subscriber ({delay:g} s import)"
        # a run that failed (exit ≠ 0, listed below the table) measures neither time nor loss
        pair = Pair([x for x in whole.topo if not x.note], [x for x in whole.classic if not x.note])
        t = [x.wall for x in pair.topo]
        c = [x.wall for x in pair.classic]
        paired = median([a.wall / b.wall for a, b in zip(whole.topo, whole.classic) if not (a.note or b.note)])
        tr = median([x.result for x in pair.topo if not math.isnan(x.result)])
        cr = median([x.result for x in pair.classic if not math.isnan(x.result)])
        tc, cc = median([x.cpu for x in pair.topo]), median([x.cpu for x in pair.classic])
        t_lost = sum(not x.received for x in pair.topo)
        c_lost = sum(not x.received for x in pair.classic)
        rows.append([label, "topo up", str(len(t)), ms(median(t)), ms(p90(t)),
                     f"**{ratio(median(t), median(c))}** (paired {paired:.2f}x)", ms(tr), ratio(tr, cr),
                     ms(tc), ratio(tc, cc), f"**{t_lost}/{len(t)}**", str(sum(bool(x.note) for x in whole.topo)),
                     str(sum(x.stalled for x in pair.topo))])
        rows.append([label, "classic (cheat sheet)", str(len(c)), ms(median(c)), ms(p90(c)), "1.00x", ms(cr),
                     "1.00x", ms(cc), "1.00x", f"**{c_lost}/{len(c)}**", str(sum(bool(x.note) for x in whole.classic)),
                     "n/a"])
        verdicts[f"{label}: topo up faster than classic (wall, paired {paired:.2f}x)"] = paired < 1.0
        verdicts[f"{label}: topo loses no first message ({t_lost}/{len(t)})"] = t_lost == 0 and bool(t)
    return rows, verdicts


def delivered_note(pair: Pair) -> str:
    """A classic run that loses the message waits out the subscriber's timeout: its wall time
    is that of the loss. Only the runs that delivered compare the two launches as such."""
    t = [x.wall for x in pair.topo if x.received and not x.note]
    c = [x.wall for x in pair.classic if x.received and not x.note]
    if not c or not t:
        return "Slow subscriber, runs that delivered the first message: too few to compare."
    return (f"Slow subscriber, only the runs that delivered the first message: topo up {ms(median(t))} "
            f"median ({len(t)} runs), classic {ms(median(c))} ({len(c)} runs), "
            f"ratio {ratio(median(t), median(c))}. The classic script's other runs lost it.")


def launch_rows(results: dict[int, dict[str, list[Launch]]]) -> tuple[list[list[str]], list[list[str]], list[list[str]], dict[str, bool]]:
    rows, cost_rows, phase_rows = [], [], []
    verdicts = {}
    for n, res in results.items():
        tr = [x.ready for x in res["topo"]]
        fr = [x.ready for x in res["floor"]]
        tw = [x.whole for x in res["topo"]]
        fw = [x.whole for x in res["floor"]]
        tc = median([x.cpu for x in res["topo"]])
        fc = median([x.cpu for x in res["floor"]])
        paired = median([a.ready / b.ready for a, b in zip(res["topo"], res["floor"])])
        rows.append([str(n), str(len(tr)), ms(median(fr)), ms(p90(fr)), ms(median(tr)), ms(p90(tr)),
                     f"**{ratio(median(tr), median(fr))}** (paired {paired:.2f}x)",
                     ms(median(fw)), ms(median(tw)), ratio(median(tw), median(fw))])
        cost_rows.append([str(n), ms(fc), ms(tc), ratio(tc, fc), ms(fc / n), ms(tc / n),
                          str(sum(bool(x.failure) for x in res["topo"])), str(len(res["lost"]))])
        if n > 2:
            verdicts[f"N={n}: all-ready within {TARGET_LAUNCH_RATIO}x of the floor (paired {paired:.2f}x)"] = (
                paired <= TARGET_LAUNCH_RATIO)
        phase_rows.append([str(n), *(ms(median([x.phases[k] for x in res["topo"] if k in x.phases])) for k in PHASES)])
    return rows, cost_rows, phase_rows, verdicts


def ensure_bytecode_cache() -> None:
    """Runs the benchmark again with a private bytecode cache if this Python may not write one
    (PYTHONDONTWRITEBYTECODE, -B): otherwise every process would compile topo's modules from
    source at each start, which no installed topo does (pip compiles them at install time).
    Both sides get the same cache; nothing is written next to the sources."""
    if not sys.flags.dont_write_bytecode or os.environ.get("TOPO_BENCH_PYCACHE"):
        return
    cache = tempfile.mkdtemp(prefix="topo-bench-pyc-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=cache, TOPO_BENCH_PYCACHE=cache)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer trials: a few minutes on 2 cores")
    parser.add_argument("--runs", type=int, help="pub/sub rounds with a prompt subscriber (default 20, quick 6)")
    parser.add_argument("--loss-runs", type=int, help="pub/sub rounds with a slow subscriber (default 100, quick 12)")
    parser.add_argument("--launch-runs", type=int, help="launch rounds per size (default 7, quick 3)")
    parser.add_argument("--sizes", default="2,16,64", help="process counts of the launch benchmark")
    parser.add_argument("--import-delay", type=float, default=0.3, help="the slow subscriber's import time (s)")
    parser.add_argument("--profile", action="store_true", help="also profile topo's launch (supervisor, child imports)")
    parser.add_argument("--skip", choices=["pubsub", "launch"], action="append", default=[], help="leave a part out")
    parser.add_argument("--as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE/-B as they are (no private bytecode cache)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {PAGE.relative_to(ROOT)}")
    args = parser.parse_args()
    if not args.as_is:
        ensure_bytecode_cache()
    runs = args.runs if args.runs is not None else (6 if args.quick else 20)
    loss_runs = args.loss_runs if args.loss_runs is not None else (12 if args.quick else 100)
    launch_runs = args.launch_runs if args.launch_runs is not None else (3 if args.quick else 7)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s})

    begun = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - begun:6.1f}s] {text}", file=sys.stderr, flush=True)

    info = machine()
    info["bytecode"] = ("private cache (PYTHONDONTWRITEBYTECODE was set)" if os.environ.get("TOPO_BENCH_PYCACHE")
                        else "not written (as is)" if sys.flags.dont_write_bytecode else "usual __pycache__")
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-", dir="/tmp"))
    # topo's run and log directories for this benchmark only: nothing is left in the user's
    env = {**os.environ, "TOPO_HOME": str(tmp / "home"), "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
           "TOPO_BENCH_IMPORT_DELAY": str(args.import_delay)}
    os.environ["TOPO_HOME"] = env["TOPO_HOME"]
    sections: list[str] = []
    verdicts: dict[str, bool] = {}
    try:
        if "pubsub" not in args.skip:
            progress(f"(a) pub/sub: {runs} prompt and {loss_runs} slow rounds, topo and classic each")
            results = bench_pubsub(tmp, env, runs, loss_runs, progress)
            rows, v = pubsub_rows(results, args.import_delay)
            verdicts.update(v)
            sections.append(
                "### (a) 2-node pub/sub, whole run as a subprocess: `topo up` vs the classic way\n\n"
                + table(PUBSUB_HEADER, rows)
                + "\n\n`subscriber done at`: median time from the command's start to the subscriber's "
                  "printed result (message received, or lost after its 2 s timeout). `exit stalled`: "
                  "runs in which topo had to SIGTERM a process that did not end by itself within the "
                  "grace period (5 s) after its nodes returned.\n\n" + delivered_note(results["slow"]))
            notes = [f"- {name} #{i}: " + " ".join(t.note.split()) for name, pair in results.items()
                     for i, t in enumerate(pair.topo + pair.classic) if t.note]
            if notes:
                sections.append("Runs that did not exit 0 (first 10):\n\n" + "\n".join(notes[:10]))
        if "launch" not in args.skip:
            progress(f"(b) launch: sizes {sizes}, {launch_runs} rounds, topo and floor each")
            lres = bench_launch(tmp, sizes, launch_runs, progress)
            rows, cost_rows, phase_rows, v = launch_rows(lres)
            verdicts.update(v)
            sections.append(
                "### (b) Launch cost, in-process: topo's Supervisor vs the spawn + `import zmq` floor\n\n"

                + table(["N procs", "runs", "floor ready", "floor p90", "topo ready", "topo p90",
                         "topo/floor ready", "floor whole", "topo whole", "topo/floor whole"], rows))
            sections.append(
                "CPU of a launch (parent and reaped children, user + system; median), topo runs that got "
                "all ready but did not end with status 0, and runs that never got all ready (left out "
                "of the times above; the trial was run again, up to 3 tries):\n\n"
                + table(["N procs", "floor CPU", "topo CPU", "topo/floor CPU", "floor CPU/process",
                         "topo CPU/process", "topo ready, exit ≠ 0", "topo never ready (retried)"], cost_rows))
            names = PHASES
            sections.append("Phases of topo's launch (median, from the start of Supervisor.run; "
                            "`last X`: when the supervisor handled the last X message):\n\n"
                            + table(["N procs", *names], phase_rows))
            failures = [f"- N={n}: {x.failure}" for n, res in lres.items()
                        for x in res["topo"] + res["lost"] if x.failure]
            if failures:
                sections.append("topo launch runs that did not exit 0 (first 10):\n\n" + "\n".join(failures[:10]))
        if args.profile:
            progress("profile")
            small = [n for n in sizes if n <= 16]
            sections.append(profile(tmp, max(small) if small else sizes[0]))
            progress("forkserver experiment")
            sections.append(forkserver_experiment(tmp, sizes, max(1, min(launch_runs, 3))))
            if "pubsub" not in args.skip:
                rounds = max(5, min(runs, 10))
                progress(f"experiment: `topo up` with the suggested changes, {rounds} pub/sub rounds")
                results = bench_pubsub(tmp, env, rounds, rounds, progress, TOPO_UP_EXPERIMENT)
                rows, _ = pubsub_rows(results, args.import_delay)
                sections.append(
                    "### Experiment: 2-node pub/sub with `topo up` forking from a preloaded forkserver\n\n"
                    "Not topo as shipped: bench/topo_experiment.py runs `topo up` with its processes "
                    "forked from a forkserver preloaded with zmq and topo's runtime. Against the same "
                    "classic script, interleaved:\n\n"
                    + table(PUBSUB_HEADER, rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        cache = os.environ.get("TOPO_BENCH_PYCACHE")
        if cache:
            shutil.rmtree(cache, ignore_errors=True)

    verdict_lines = [f"- {'met' if ok else '**MISSED**'}: {name}" for name, ok in verdicts.items()]
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    command = " ".join(["python bench/launch.py", *sys.argv[1:]])
    body = "\n\n".join([
        (f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {time.perf_counter() - begun:.0f} s):"
         f" {runs} prompt and {loss_runs} slow pub/sub rounds, {launch_runs} launch rounds per size."),
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        *sections,
        "Targets (ratios: the median of per-round ratios, each topo trial against the baseline "
        "trial run next to it):\n\n" + "\n".join(verdict_lines),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write:
        write_results(PAGE, "Benchmark: launching with `topo up`", body)
        print(f"\nwritten to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
