"""Part (a) of bench/launch.py: a 2-node pub/sub started by `topo up` against the same
pair started as a common cheat sheet does it (bench/classic_pubsub.py), both as
subprocesses, so interpreter start-up is in both.

What is compared: wall time, the time until the subscriber printed its result, CPU, and
how many first messages were lost. Kept apart from the launch cost (bench/launch_cost.py)
because it measures whole commands, not the supervisor in-process.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench import nodes
from bench.common import ROOT, cpu_now, interleave, median, ms, p90, quartiles, ratio

TRIAL_TIMEOUT = 90.0  # seconds; no trial of the launch benchmark may take longer
#: The subscriber's receive timeout, in both setups (bench/classic_pubsub.py has it too): a
#: classic run that lost its message costs this much more. 1 s is ample: the subscriber
#: starts waiting only once its code is loaded, and then the message is due at once.
RECEIVE_TIMEOUT = 1.0
PUBSUB_HEADER = ["scenario", "setup", "runs", "median wall", "p90 wall", "topo/classic wall", "subscriber done at",
                 "topo/classic done", "median CPU", "topo/classic CPU", "first message lost", "exit ≠ 0",
                 "exit stalled"]

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


@dataclass
class Trial:
    """One run of either setup, as the table needs it."""

    wall: float        # start of the command to its exit
    result: float      # start of the command to the subscriber's printed result
    received: bool
    cpu: float
    stalled: bool = False  # topo: a process did not end by itself and was sent SIGTERM
    note: str = ""


@dataclass
class Ran:
    """One finished command: its times, CPU, exit status and output."""

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


def topo_pubsub(file: Path, env: dict[str, str]) -> Trial:
    ran = run_command([*TOPO_UP, str(file)], env)
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
    """The runs of one scenario, topo's and the classic script's, in the order they ran."""

    topo: list[Trial] = field(default_factory=list)
    classic: list[Trial] = field(default_factory=list)


def bench_pubsub(tmp: Path, env: dict[str, str], runs: int, loss_runs: int,
                 progress: Callable[[str], None]) -> dict[str, Pair]:
    files = {}
    for scenario, module in (("prompt", "bench.nodes"), ("slow", "bench.slow_nodes")):
        files[scenario] = tmp / f"pubsub-{scenario}.yaml"
        files[scenario].write_text(PUBSUB_YAML.format(module=module, timeout=RECEIVE_TIMEOUT))
    results = {"prompt": Pair(), "slow": Pair()}

    def topo_once(pair: Pair, file: Path) -> None:
        pair.topo.append(topo_pubsub(file, env))

    def classic_once(pair: Pair, slow: bool, i: int) -> None:
        pair.classic.append(classic_pubsub(tmp, slow, env, i))

    # one untimed round of each: .pyc files and the page cache warm for both sides alike
    topo_pubsub(files["prompt"], env)
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


def pubsub_rows(results: dict[str, Pair], delay: float) -> tuple[list[list[str]], dict[str, bool]]:
    """The table of (a), two rows per scenario, and its verdicts: "faster" judged on the
    mean wall time over all runs (see below), with the medians given next to it."""
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
        # Judged on the mean over all runs, the expected time of one run: a median (paired or
        # not) lands on the classic script's lucky runs or on its lost ones depending on
        # whether it loses more or less than half, and so flipped from run to run. Against
        # only the classic runs that delivered, shown next to it, the two are about even.
        mean_ratio = sum(t) / sum(c) if t and c else math.nan
        delivered = [x.wall for x in pair.classic if x.received]
        lucky = median(t) / median(delivered) if delivered and t else math.nan
        verdicts[f"{label}: topo up faster than classic (mean wall over all runs {mean_ratio:.2f}x; "
                 f"median paired {paired:.2f}x; median against the classic runs that delivered "
                 f"{lucky:.2f}x)"] = mean_ratio < 1.0
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


def pubsub_json(results: dict[str, Pair]) -> list[dict[str, Any]]:
    """Per scenario and setup: every run's wall time, time to the subscriber's result, CPU
    and delivery (failed runs left out, as in the table), and the paired ratio: what
    bench/plots.py and bench/summary.py need, in seconds."""
    out = []
    for scenario, whole in results.items():
        ok = [(a, b) for a, b in zip(whole.topo, whole.classic) if not (a.note or b.note)]
        entry: dict[str, Any] = {"scenario": scenario,
                                 "paired_wall_ratio": median([a.wall / b.wall for a, b in ok])}
        for side, trials in (("topo", whole.topo), ("classic", whole.classic)):
            good = [x for x in trials if not x.note]
            walls = [x.wall for x in good]
            entry[side] = {
                "runs": len(good), "failed": len(trials) - len(good),
                "lost": sum(not x.received for x in good),
                "wall_median": median(walls), "wall_p90": p90(walls), "wall_quartiles": list(quartiles(walls)),
                "wall": walls, "result": [x.result for x in good], "cpu": [x.cpu for x in good],
                "stalled": sum(x.stalled for x in good),
            }
        out.append(entry)
    return out
