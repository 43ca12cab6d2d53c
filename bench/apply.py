"""Benchmark: ``topo apply`` of a one-node change against a full relaunch, side by side.

    python bench/apply.py            # 5 trials
    python bench/apply.py --quick    # 2 trials

The topology is the 200-node benchmark one, one node per process: a PULL hub and 199
PUSH senders, each a node of its own (``s0`` ... ``s198``), every sender linked to the
hub (ipc). Each trial, with its own ``TOPO_HOME``:

1. ``topo up -d FILE`` (returns once every node is ready), timed;
2. ``topo apply EDITED`` where EDITED changes the ``args`` of ``s0`` alone, timed as the
   command's wall clock (its start, reading and checking the file, the supervisor's own
   reading, the restart of ``s0``'s process until it is ready again), with the
   supervisor's own time (the ``applied in`` it reports); the pids of every node before
   and after (``topo ps --json``): exactly one may differ;
3. ``topo apply FILE`` back, timed the same way;
4. ``topo down``, timed.

A full relaunch is 4 + 1 (stop the run, start it again until ready). Reported: medians of
each, and apply / relaunch. Results go to stdout and, unless ``--no-write``, into
docs/editing.md (between its apply-bench markers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, median, ms, table, topo_revision, write_results  # noqa: E402

SENDERS = 199
#: An apply of a one-node change takes at most this share of a full relaunch.
TARGET = 0.2
PAGE = ROOT / "docs" / "editing.md"
MARKERS = ("<!-- apply-bench:begin (written by bench/apply.py; edits between these markers are lost) -->",
           "<!-- apply-bench:end -->")


def topology(version: int) -> str:
    lines = ["topology: bench-apply", "nodes:", "  hub: {run: bench.nodes:hold, sockets: {in: PULL}}"]
    for k in range(SENDERS):
        v = version if k == 0 else 1
        lines.append(f"  s{k}: {{run: bench.nodes:hold, args: {{v: {v}}}, sockets: {{out: PUSH}}}}")
    lines.append("links:")
    lines += [f"  - s{k}.out -> hub.in" for k in range(SENDERS)]
    return "\n".join(lines) + "\n"


def topo(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "topo", *args], env=env, cwd=str(ROOT),
                            capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"topo {' '.join(args)} exited {result.returncode}:\n{result.stdout}"
                         f"\n{result.stderr}")
    return took, result.stdout


def pids(env: dict[str, str]) -> dict[str, int]:
    _, out = topo(env, "ps", "bench-apply", "--json")
    (entry,) = json.loads(out)
    return {n["name"]: n["pid"] for n in entry["nodes"]}


def trial(work: Path) -> dict[str, float]:
    env = dict(os.environ, TOPO_HOME=str(Path(tempfile.mkdtemp(prefix="ba-", dir="/tmp"))),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    base, edited = work / "base.yaml", work / "edited.yaml"
    up, _ = topo(env, "up", "-d", str(base), "--ready-timeout", "120")
    before = pids(env)
    apply1, out = topo(env, "apply", str(edited))
    took = float(re.search(r"applied in (\d+\.\d+)s", out).group(1))  # type: ignore[union-attr]
    after = pids(env)
    changed = sorted(n for n in before if before[n] != after.get(n))
    if changed != ["s0"] or set(after) != set(before):
        raise SystemExit(f"apply touched {changed}, not s0 alone")
    apply2, _ = topo(env, "apply", str(base))
    down, _ = topo(env, "down", "bench-apply")
    return {"up": up, "down": down, "relaunch": up + down, "apply": apply1, "apply_back": apply2,
            "supervisor": took}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ alone")
    parser.add_argument("--results", metavar="DIR", help="accepted for bench/run.py; this one writes no JSON")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    (work / "base.yaml").write_text(topology(1))
    (work / "edited.yaml").write_text(topology(2))
    info = machine()  # the load before the trials: 200 processes starting raise it themselves
    trials = [trial(work) for _ in range(2 if opts.quick else 5)]
    med = {k: median([t[k] for t in trials]) for k in trials[0]}
    apply_time = median([x for t in trials for x in (t["apply"], t["apply_back"])])
    rows = [
        ["full relaunch (topo down + topo up -d until ready)", ms(med["relaunch"]),
         f"down {ms(med['down'])} + up {ms(med['up'])}"],
        ["topo apply, args of one node (command's wall clock)", ms(apply_time),
         f"{apply_time / med['relaunch']:.2f}x the relaunch; 1 process restarted, 199 untouched"],
        ["  of which the supervisor (read, plan, restart until ready)", ms(med["supervisor"]), ""],
    ]
    text = table(["200 nodes, one per process", "median", ""], rows)
    body = (f"{len(trials)} trials; {info['CPU']}, {info['nproc']} CPUs, load {info['load average (1 min) at start']}; "
            f"topo {topo_revision()}\n\n"
            + text + "\n")
    print(body)
    if not opts.no_write:
        write_results(PAGE, "", body, MARKERS)
    met = apply_time <= TARGET * med["relaunch"]
    print(f"apply / relaunch {apply_time / med['relaunch']:.2f}x, target <= {TARGET}x: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
