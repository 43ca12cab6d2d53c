"""Every benchmark in one command: ``python bench/run.py [--quick]``.

Runs, one after the other (they would disturb each other's timings side by side):

- ``check_plan.py``: check and plan of 1000 and 10000 nodes; ``topo --help`` start-up;
- ``launch.py``: ``topo up`` against the classic hand-wired pub/sub (time, first-message
  loss); time to all-ready and whole run of 2, 16 and 64 processes and of 200 nodes in
  10 processes, against the bare ``spawn`` + ``import zmq`` floor;
- ``datapath.py``: throughput and latency of topo-wired sockets against hand-wired pyzmq;
- ``stop.py``: time from Ctrl-C to every process gone;
- ``tap.py``: what a live tap (``topo echo``, ``run.tap()``) costs the tapped node;
- ``record.py``: what ``topo up --record`` costs a whole run, and a recording's bytes per message;
- ``apply.py``: ``topo apply`` of a one-node change of the 200-node topology against its
  full relaunch (docs/editing.md);
- ``exec.py``: 16 exec nodes that exit at once against 16 bare ``subprocess`` starts;

then ``plots.py`` (if matplotlib is installed: ``pip install -e '.[bench]'``), which draws
docs/img/*.png from the JSON results the benchmarks left in docs/img/, and ``summary.py``,
which prints every ratio against its target and writes the machine, that table and the
plots into docs/benchmarks.md. Each benchmark also prints its own tables and rewrites its
results into its page (``benchmarks-launch.md``, ``benchmarks-datapath.md``).

``--quick`` runs every benchmark with fewer trials (about 3 minutes on 2 cores); without
it, the full statistics (9 to 10 minutes, a third of it the 100 slow-subscriber rounds
that count lost messages). ``--results DIR --no-write`` leaves docs/ alone: results,
plots and the summary go to DIR and the terminal only.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials of each (about 3 minutes on 2 cores)")
    parser.add_argument("--results", metavar="DIR", help="JSON results and plots here instead of docs/img/")
    parser.add_argument("--no-write", action="store_true", help="leave the pages in docs/ alone")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    common = [*(["--results", args.results] if args.results else []), *(["--no-write"] if args.no_write else [])]
    steps = [
        ["check_plan.py", *(["--runs", "3", "--startup-runs", "5"] if args.quick else []), *common],
        ["launch.py", *quick, *common],
        ["datapath.py", *quick, *common],
        ["stop.py", *quick, *common],
        ["tap.py", *quick, *common],
        ["record.py", *quick, *common],
        ["apply.py", *quick, *common],
        ["exec.py", *quick, *common],
    ]
    begun = time.monotonic()
    failed = []
    for script, *rest in steps:
        print(f"\n=== {script} {' '.join(rest)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), *rest])
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failed.append(script)

    where = ["--results", args.results] if args.results else []
    plots_skipped = importlib.util.find_spec("matplotlib") is None
    if args.no_write and not args.results:
        # the benchmarks wrote no JSON: plots and summary would only redraw the last run's
        print("\n=== plots.py, summary.py: skipped (--no-write without --results: no new results)")
        plots_skipped = True
    elif plots_skipped:
        print("\n=== plots.py: skipped, matplotlib is not installed; for the plots: "
              "pip install -e '.[bench]' && python bench/plots.py", flush=True)
    else:
        print("\n=== plots.py", flush=True)
        if subprocess.call([sys.executable, str(HERE / "plots.py"), *where]) != 0:
            failed.append("plots.py")
    if not args.no_write or args.results:
        summary = [*where, *(["--plots-skipped"] if plots_skipped else []),
                   *(["--no-write"] if args.no_write else [])]
        print("\n=== summary.py", flush=True)
        if subprocess.call([sys.executable, str(HERE / "summary.py"), *summary]) != 0:
            failed.append("summary.py")
    print(f"\nall benchmarks: {time.monotonic() - begun:.0f}s")
    if failed:
        print(f"missed targets or failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
