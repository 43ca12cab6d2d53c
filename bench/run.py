"""Every benchmark in one command: ``python bench/run.py [--quick]``.

Runs, one after the other (they would disturb each other's timings side by side):

- ``check_plan.py``: check and plan of 1000 and 10000 nodes; ``topo --help`` start-up;
- ``launch.py``: ``topo up`` against the classic hand-wired pub/sub (time, first-message
  loss); time to all-ready against the bare ``spawn`` + ``import zmq`` floor;
- ``datapath.py``: throughput and latency of topo-wired sockets against hand-wired pyzmq;
- ``stop.py``: time from Ctrl-C to every process gone.

Each prints its own table of absolute numbers and ratios against a baseline measured in
the same run, and the last three rewrite their results into their page in docs/
(``benchmarks-launch.md``, ``benchmarks-datapath.md``); docs/benchmarks.md links them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds of each (a few minutes)")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    steps = [
        ["check_plan.py", *(["--sizes", "1000", "--runs", "3"] if args.quick else [])],
        ["launch.py", *quick],
        ["datapath.py", *quick],
        ["stop.py", *quick],
    ]
    failed = []
    for script, *rest in steps:
        print(f"\n=== {script} {' '.join(rest)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), *rest])
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failed.append(script)
    if failed:
        print(f"\nmissed targets or failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
