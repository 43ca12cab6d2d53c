"""Benchmark: what ``topo up --record`` costs a whole run, and what a recording weighs.

    python bench/record.py            # 9 rounds (about a minute on 2 cores)
    python bench/record.py --quick    # 3 rounds

``topo up topologies/pipeline.yaml`` as a user types it (a fresh ``python -m topo`` each
time, from the command to its exit), with and without ``--record OUT.mcap`` (every socket
of the topology: 8 sockets, 48 messages), one trial of each per round, the order
alternating every round so load drifts hit both. The same with 5,000 tasks
(``--set ventilator.args.tasks=5000 --set sink.args.tasks=5000``: 20,000 messages
recorded), where the recording's per-message costs show. Reported: whole-run time
(median), recorded/plain (median of per-round ratios), the messages recorded and the MCAP
file's bytes per message (the whole file, header, topology and summary included). Target:
recording costs ≤ 1.3x the whole-run time of the same run without it (the pipeline as
shipped). Results go to stdout, to docs/benchmarks.md (between its record markers) and to
docs/img/record.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    machine,
    median,
    progress_printer,
    results_dir,
    sanitize,
    table,
    topo_revision,
    write_json,
    write_results,
)

PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- record:begin (written by bench/record.py; edits between these markers are lost) -->",
           "<!-- record:end -->")
TARGET = 1.3
PIPELINE = "topologies/pipeline.yaml"
CASES = {
    "pipeline (12 tasks)": [],
    "pipeline, 5,000 tasks": ["--set", "ventilator.args.tasks=5000", "--set", "sink.args.tasks=5000"],
}


def whole_run(args: list[str], env: dict[str, str]) -> float:
    begun = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "topo", "up", PIPELINE, *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    took = time.perf_counter() - begun
    if done.returncode != 0:
        raise SystemExit(f"topo up {' '.join(args)} failed ({done.returncode}):\n{done.stdout}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 9")
    parser.add_argument("--rounds", type=int, help="trials of each side per case")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write record.json here instead of docs/img/")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    from topo.observe.recorded import summarize

    begun = time.perf_counter()
    progress = progress_printer()
    info = machine()
    info["topo measured"] = topo_revision()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-rec-"))
    env = {**os.environ, "TOPO_HOME": str(tmp / "home")}
    out = tmp / "run.mcap"
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    verdicts: dict[str, bool] = {}
    try:
        for case, extra in CASES.items():
            whole_run(extra, env)  # warm-up: the file system's caches, Python's bytecode
            times: dict[str, list[float]] = {"plain": [], "recorded": []}
            recorded: dict[str, Any] = {}
            for r in range(rounds):
                for side in (("plain", "recorded") if r % 2 == 0 else ("recorded", "plain")):
                    times[side].append(whole_run(extra + (["--record", str(out)] if side == "recorded" else []), env))
                summary = summarize(str(out))
                recorded = {"messages": summary.messages, "size": summary.size, "complete": summary.complete,
                            "missed": sum(c.missed for c in summary.channels)}
                progress(f"{case}: round {r + 1}/{rounds} done")
            paired = median([rec / plain for rec, plain in zip(times["recorded"], times["plain"])])
            records.append({"case": case, "plain": times["plain"], "recorded": times["recorded"],
                            "paired_median": paired, **recorded})
            if not extra:
                verdicts[f"{case}: recorded ≤ {TARGET}x plain (paired {paired:.2f}x)"] = paired <= TARGET
            rows.append([case, f"{median(times['plain']) * 1000:,.0f} ms", f"{median(times['recorded']) * 1000:,.0f} ms",
                         f"{paired:.2f}x", f"{recorded['messages']:,}" + ("" if recorded["complete"] else " (incomplete)"),
                         f"{recorded['missed']}", f"{recorded['size'] / max(1, recorded['messages']):,.1f} B",
                         ("yes" if paired <= TARGET else "**no**") if not extra else "(not a target)"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    command = " ".join(["python bench/record.py", *sys.argv[1:]])
    elapsed = time.perf_counter() - begun
    body = "\n\n".join([
        f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {elapsed:.0f} s): {rounds} trials of each side per case.",
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        table(["run", "whole run, plain (median)", "with --record (median)", "recorded/plain (paired)",
               "messages recorded", "missed", "MCAP bytes/message", f"≤ {TARGET}x"], rows),
        "Whole run: from `python -m topo up` to its exit. Bytes per message: the file's size "
        "over its messages, the fixed part (header, the topology file and plan, the summary) "
        "included, which is most of a small recording's.",
        "Targets:\n\n" + "\n".join(f"- {'met' if ok else '**MISSED**'}: {k}" for k, ok in verdicts.items()),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write or args.results:
        saved = write_json("record", sanitize(command), elapsed, info,
                           {"target": TARGET, "rounds": rounds, "rows": records, "verdicts": verdicts},
                           results_dir(args.results))
        print(f"\nresults: {sanitize(str(saved))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmarks", "### Results: `topo up --record`\n\n" + body, MARKERS)
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
