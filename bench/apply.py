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
4. ``topo apply LINKED``, where LINKED adds a node ``tail`` (a PULL that binds) and a
   link ``s0.out -> tail.in``: ``tail``'s process starts, and ``s0``'s running PUSH
   connects to it in place (at its next send: topo.process.relink); no pid may change
   but for the new node; then ``topo apply FILE`` back;
5. ``topo down``, timed.

A full relaunch is 5 + 1 (stop the run, start it again until ready). Reported: medians of
each, and apply / relaunch. Results go to stdout and, unless ``--no-write``, into
docs/editing.md (between its apply-bench markers) and docs/img/apply.json (for
bench/summary.py's table in docs/benchmarks.md).
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

from bench.common import (ROOT, machine, median, ms, results_dir, table, topo_revision,  # noqa: E402
                          write_json, write_results)

SENDERS = 199
#: An apply of a one-node change takes at most this share of a full relaunch.
TARGET = 0.2
PAGE = ROOT / "docs" / "editing.md"
MARKERS = ("<!-- apply-bench:begin (written by bench/apply.py; edits between these markers are lost) -->",
           "<!-- apply-bench:end -->")


def topology(version: int, tail: bool = False) -> str:
    lines = ["topology: bench-apply", "nodes:", "  hub: {run: bench.nodes:hold, sockets: {in: PULL}}"]
    if tail:
        lines.append("  tail: {run: bench.nodes:hold, sockets: {in: {type: PULL, bind: true}}}")
    for k in range(SENDERS):
        v = version if k == 0 else 1
        lines.append(f"  s{k}: {{run: bench.nodes:hold, args: {{v: {v}}}, sockets: {{out: PUSH}}}}")
    lines.append("links:")
    lines += [f"  - s{k}.out -> hub.in" for k in range(SENDERS)]
    if tail:
        lines.append("  - s0.out -> tail.in")
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
    before = pids(env)
    link, out = topo(env, "apply", str(work / "linked.yaml"))
    if "linked in place (s0.out connects)" not in out:
        raise SystemExit(f"s0's link was not made in place:\n{out}")
    link_took = float(re.search(r"applied in (\d+\.\d+)s", out).group(1))  # type: ignore[union-attr]
    after = pids(env)
    if {n: after[n] for n in before} != before or set(after) - set(before) != {"tail"}:
        raise SystemExit("the link in place touched a process other than the new node's")
    topo(env, "apply", str(base))
    down, _ = topo(env, "down", "bench-apply")
    return {"up": up, "down": down, "relaunch": up + down, "apply": apply1, "apply_back": apply2,
            "supervisor": took, "link": link, "link_supervisor": link_took}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ alone")
    parser.add_argument("--results", metavar="DIR", help="write apply.json here instead of docs/img/")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    (work / "base.yaml").write_text(topology(1))
    (work / "edited.yaml").write_text(topology(2))
    (work / "linked.yaml").write_text(topology(1, tail=True))
    info = machine()  # the load before the trials: 200 processes starting raise it themselves
    started = time.monotonic()
    info["topo measured"] = topo_revision()
    trials = [trial(work) for _ in range(2 if opts.quick else 5)]
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    med = {k: median([t[k] for t in trials]) for k in trials[0]}
    apply_time = median([x for t in trials for x in (t["apply"], t["apply_back"])])
    rows = [
        ["full relaunch (topo down + topo up -d until ready)", ms(med["relaunch"]),
         f"down {ms(med['down'])} + up {ms(med['up'])}"],
        ["topo apply, args of one node (command's wall clock)", ms(apply_time),
         f"{apply_time / med['relaunch']:.2f}x the relaunch; 1 process restarted, 199 untouched"],
        ["  of which the supervisor (read, plan, restart until ready)", ms(med["supervisor"]), ""],
        ["topo apply, a node added and linked in place (s0.out connects)", ms(med["link"]),
         f"{med['link'] / med['relaunch']:.2f}x the relaunch; 1 process started, 0 restarted"],
        ["  of which the supervisor (read, plan, start until ready)", ms(med["link_supervisor"]), ""],
    ]
    text = table(["200 nodes, one per process", "median", ""], rows)
    body = (f"{len(trials)} trials; {info['CPU']}, {info['nproc']} CPUs, load {info['load average (1 min) at start']}; "
            f"topo {topo_revision()}\n\n"
            + text + "\n")
    print(body)
    if not opts.no_write:
        write_results(PAGE, "", body, MARKERS)
    write_json("apply", "python bench/apply.py" + (" --quick" if opts.quick else ""), time.monotonic() - started,
               info, {"trials": len(trials), "medians": med, "apply": apply_time, "target": TARGET},
               results_dir(opts.results) if (opts.results or not opts.no_write) else Path(tempfile.mkdtemp()))
    met = apply_time <= TARGET * med["relaunch"]
    print(f"apply / relaunch {apply_time / med['relaunch']:.2f}x, target <= {TARGET}x: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
