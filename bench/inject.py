"""Benchmark: what the injection endpoints of ``topo send`` cost a launch.

    python bench/inject.py                   # 64 processes, and 200 nodes in 10; 7 rounds
    python bench/inject.py --processes 16 --runs 9

Every receiving socket that binds nothing a peer outside could dial gets one more ipc bind
at wiring time (topo.plan.inject). The worst case for that is a launch of receivers that
all connect: here a PUSH hub and N-1 PULL workers (each worker's PULL connects, so each
gets one), one node per process, and packed, 200 nodes in 10 processes (the workers as
replicas, the hub in the first). The same plan is launched with its injection endpoints
and with them taken out (the plan's sockets with ``inject`` emptied), in alternating
order, by topo's supervisor in-process as bench/launch_cost.py does: time to all-ready,
the whole run, and CPU (parent and reaped children), medians, and the median of the
paired differences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import interleave, median  # noqa: E402
from bench.launch_cost import Launch, topo_launch  # noqa: E402

ONE_PER_PROCESS = """\
topology: bench-inject-{n}
nodes:
  hub: {{run: bench.nodes:idle, sockets: {{out: PUSH}}}}
  worker: {{run: bench.nodes:idle, replicas: {workers}, sockets: {{in: PULL}}}}
links: [hub.out -> worker.in]
"""


def packed(nodes: int, processes: int) -> str:
    """The hub and workers spread evenly over ``processes`` (workers as replicas)."""
    per = [nodes // processes + (k < nodes % processes) for k in range(processes)]
    per[0] -= 1
    lines = [f"topology: bench-inject-{nodes}-in-{processes}", "nodes:",
             "  hub: {run: bench.nodes:idle, process: p0, sockets: {out: PUSH}}"]
    links = [f"  - hub.out -> worker{k}.in" for k, count in enumerate(per) if count]
    lines += [f"  worker{k}: {{run: bench.nodes:idle, process: p{k}, replicas: {count}, sockets: {{in: PULL}}}}"
              for k, count in enumerate(per) if count]
    return "\n".join([*lines, "links:", *links]) + "\n"


def plans(tmp: Path, text: str) -> tuple[Any, Any]:
    """The plan of ``text`` as topo makes it, and the same without injection endpoints."""
    from topo.file.validate import load
    from topo.plan.planner import make_plan

    file = tmp / "inject.yaml"
    file.write_text(text)
    plan = make_plan(load(str(file)))
    bare = replace(plan, instances={
        name: replace(inst, sockets=tuple(replace(s, inject="") for s in inst.sockets))
        for name, inst in plan.instances.items()})
    return plan, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--processes", type=int, default=64, help="of the one-node-per-process case")
    parser.add_argument("--packed-only", action="store_true", help="only the 200 nodes in 10 processes")
    args = parser.parse_args()
    n = args.processes
    with tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp:
        cases = {f"{n} processes": ONE_PER_PROCESS.format(n=n, workers=n - 1),
                 "200 nodes in 10 processes": packed(200, 10)}
        print("case | side | all-ready | whole run | CPU   (medians of", args.runs, "rounds)")
        for label, text in cases.items():
            if args.packed_only and "nodes in" not in label:
                continue
            plan, bare = plans(Path(tmp), text)
            count = sum(1 for i in plan.instances.values() for s in i.sockets if s.inject)
            results: dict[str, list[Launch]] = {"with": [], "without": []}
            for i in range(args.runs):
                interleave(i, lambda: results["with"].append(topo_launch(plan)),
                           lambda: results["without"].append(topo_launch(bare)))
            for side, launches in results.items():
                ok = [t for t in launches if not t.failure]
                print(f"{label} ({count} endpoints) | {side} | {median([t.ready for t in ok]) * 1000:.0f} ms | "
                      f"{median([t.whole for t in ok]) * 1000:.0f} ms | {median([t.cpu for t in ok]) * 1000:.0f} ms"
                      + (f" | {len(launches) - len(ok)} failed" if len(ok) < len(launches) else ""))
                phases = {k: median([t.phases[k] for t in ok if k in t.phases]) * 1000
                          for k in ("spawned", "last HELLO", "last BOUND", "last CONNECT sent", "last READY")}
                print("    phases: " + ", ".join(f"{k} {v:.0f} ms" for k, v in phases.items()))
            pairs = list(zip(results["with"], results["without"]))
            for what in ("ready", "whole", "cpu"):
                diff = median([getattr(a, what) - getattr(b, what) for a, b in pairs])
                print(f"  {what}: with - without, median of paired rounds: {diff * 1000:+.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
