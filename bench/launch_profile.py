"""``bench/launch.py --profile``: where topo's launch time goes, and what one suggested
change would gain (not topo as shipped; every table here says so).

Kept out of launch_cost.py because none of it is needed for the targets: it explains them.
"""

from __future__ import annotations

import cProfile
import io
import math
import multiprocessing
import pstats
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

from bench.common import ROOT, cpu_now, interleave, median, ms, ratio, table
from bench.launch_cost import Case, Launch, floor, launch_plan, topo_launch
from bench.launch_pubsub import TRIAL_TIMEOUT


def profile(tmp: Path, case: Case) -> str:
    """Where topo's launch time goes: the supervisor (cProfile) and a child's imports."""
    out = [f"### Profile: supervisor side, in-process, N={case.processes} (cProfile, top 15 by own time)", "", "```"]
    plan = launch_plan(tmp, case)
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
        ("a topo child (topo.process.runtime, topo.process.runner, bench.nodes)", "import topo.process.runtime, topo.process.runner, bench.nodes"),
        ("what a child's runtime needs at least (zmq, json, threading, queue, selectors, ctypes)",
         "import zmq, json, threading, queue, selectors, ctypes, signal"),
        ("the `topo up` process (topo.cli.main, topo.cli.launch)", "import topo.cli.main, topo.cli.launch"),
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


def forkserver_experiment(tmp: Path, cases: list[Case], runs: int) -> str:
    """Measured potential of one suggestion: fork every process of a run from a forkserver
    that has preloaded zmq and topo's runtime (bench/forkserver_patch.py), a fresh forkserver
    per run, its start-up included in the time. Interleaved with the spawn floor."""
    import multiprocessing.forkserver as mp_forkserver

    import topo.supervisor.spawn

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bench.forkserver_patch"])
    shipped = topo.supervisor.spawn._spawn
    plans = {c: launch_plan(tmp, c) for c in cases}
    res: dict[Case, dict[str, list[Launch]]] = {c: {"floor": [], "fork": []} for c in cases}

    def forked(case: Case) -> Launch:
        mp_forkserver._forkserver._stop()  # type: ignore[attr-defined]
        cpu = cpu_now()
        topo.supervisor.spawn._spawn = ctx  # type: ignore[assignment]
        try:
            run = topo_launch(plans[case])
        finally:
            topo.supervisor.spawn._spawn = shipped
            # stopped and reaped, so its CPU and its children's count
            mp_forkserver._forkserver._stop()  # type: ignore[attr-defined]
        run.cpu = cpu_now() - cpu
        return run

    def forked_trial(case: Case) -> None:
        res[case]["fork"].append(forked(case))

    def floor_trial(case: Case) -> None:
        res[case]["floor"].append(floor(case.processes))

    forked(min(cases, key=lambda c: c.processes))  # warm-up
    for i in range(runs):
        for case in cases:
            interleave(i, partial(forked_trial, case), partial(floor_trial, case))
    rows = []
    for case, r in res.items():
        fr = median([x.ready for x in r["floor"]])
        good = [x for x in r["fork"] if not math.isnan(x.ready)]
        tr = median([x.ready for x in good])
        rows.append([case.label, str(len(good)), ms(fr), ms(tr), f"**{ratio(tr, fr)}**",
                     ms(median([x.whole for x in good])), ms(median([x.cpu for x in good]) / case.processes),
                     str(len(r["fork"]) - len(good))])
    return ("### Experiment: topo's launch with its processes forked from a preloaded forkserver\n\n"
            "Not topo as shipped: the benchmark swaps `topo.supervisor.spawn`'s multiprocessing context for a "
            "`forkserver` one that preloads zmq and topo's runtime (bench/forkserver_patch.py); a new "
            "forkserver for every run, its start included (CPU/process: the forkserver's and the "
            "children's CPU, all reaped, over N). Against the same spawn floor:\n\n"
            + table(["case", "runs", "spawn floor ready", "topo+forkserver ready", "vs floor",
                     "topo+forkserver whole", "CPU/process", "never ready"], rows))
