"""Benchmark: how long `topo check` / `topo plan` take on big files, and `topo --help` start-up.

    python bench/check_plan.py                 # 1000 and 10000 nodes, start-up
    python bench/check_plan.py --sizes 1000    # only 1000 nodes
    python bench/check_plan.py --profile       # plus a cProfile of load+plan at the largest size

A topology of N nodes is generated in a temporary directory: groups of ten nodes, each a
PUSH/PULL pipeline (ventilator, three workers, sink) next to a PUB/SUB group with a
REQ/REP control link, spread over shared and own processes, every seventh group on a
second host (tcp). Times are the best of several runs, in-process for the library calls
and as subprocesses for the command line, next to baselines measured in the same run:
`python -c pass` (the interpreter's floor) and `python -c "import click"`.

Targets: check+plan of 1000 nodes under 1 s; `topo --help` under 0.3 s.
Results go to stdout and to docs/img/check_plan.json (bench/summary.py puts them in
docs/benchmarks.md). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, results_dir, sanitize, topo_revision, write_json

GROUP = 10  # nodes per generated group
#: The command-line runs import topo from this working tree, as the library calls do, even
#: where an installed (or editable) topo points elsewhere.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(__file__).resolve().parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
TARGET_CHECK_PLAN_1000 = 1.0
TARGET_HELP = 0.3


def topology_text(nodes: int) -> str:
    """A valid topology of ``nodes`` nodes (rounded up to a multiple of ten)."""
    groups = max(1, -(-nodes // GROUP))
    out = [
        f"topology: bench-{nodes}",
        "hosts:",
        "  local: {address: 127.0.0.1}",
        "  edge: {address: 127.0.0.2, launch: [ssh, edge]}",
        "defaults:",
        "  restart: on-failure",
        "nodes:",
    ]
    links = []
    for g in range(groups):
        host = "edge" if g % 7 == 6 else "local"
        shared = g % 2 == 0
        out += [
            f"  vent{g}: {{run: bench.nodes:vent, host: {host}, args: {{tasks: 100}}, sockets: {{tasks: PUSH}}}}",
        ]
        for w in "abc":
            proc = f", process: pipe{g}" if shared else ""
            out.append(
                f"  work{g}{w}: {{run: bench.nodes:work, host: {host}{proc}, "
                f"sockets: {{tasks: PULL, results: {{type: PUSH, options: {{sndhwm: 1000}}}}}}}}"
            )
            links += [f"  - vent{g}.tasks -> work{g}{w}.tasks", f"  - work{g}{w}.results -> sink{g}.results"]
        out += [
            f"  sink{g}: {{run: bench.nodes:sink, on_exit: stop, sockets: {{results: PULL}}}}",
            (
                f"  pub{g}: {{run: bench.nodes:pub, process: pubs{g % 10}, env: {{LEVEL: info}}, "
                f"sockets: {{updates: PUB, ctl: REP}}}}"
            ),
            f"  ctl{g}: {{run: bench.nodes:ctl, sockets: {{ctl: REQ}}}}",
        ]
        for s in "ab":
            out.append(
                f"  sub{g}{s}: {{run: bench.nodes:sub, process: subs{g}, "
                f"sockets: {{updates: {{type: SUB, subscribe: [\"t{g}\", \"all\"]}}}}}}"
            )
            links.append(f"  - pub{g}.updates -> sub{g}{s}.updates")
        out.append(
            f"  mon{g}: {{run: bench.nodes:sub, replicas: 2, sockets: {{updates: {{type: SUB, subscribe: [\"\"]}}}}}}"
        )
        links += [
            f"  - {{from: pub{g}.updates, to: mon{g}.updates, transport: tcp}}",
            f"  - ctl{g}.ctl -> pub{g}.ctl",
        ]
    return "\n".join(out + ["links:"] + links) + "\n"


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_subprocess(cmd: list[str], runs: int) -> float:
    def once() -> None:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=ENV)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")

    once()  # warm the file cache and .pyc files
    return best(once, runs)


def topo_script() -> list[str]:
    """The installed console script itself (not a version manager's shim in front of it)."""
    beside = Path(sys.executable).with_name("topo")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("topo")
    return [found] if found else [sys.executable, "-c", "from topo.cli.main import main; main()"]


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


Row = tuple[str, float, str, str]  # what, seconds, ratio or detail, verdict


def measure_size(n: int, path: Path, runs: int) -> tuple[list[Row], bool]:
    """Library and command-line times for one generated file; True if a target is missed."""
    from topo.plan.graph import to_dot, to_mermaid
    from topo.plan.planner import make_plan
    from topo.plan.planview import plan_json, plan_table
    from topo.file.validate import load

    file = str(path)
    t_load = best(lambda: load(file), runs)
    topology = load(file)
    t_plan = best(lambda: make_plan(topology), runs)
    plan = make_plan(topology)
    detail = f"{len(topology.nodes)} nodes, {len(plan.instances)} instances, {len(plan.links)} links"
    rows: list[Row] = [
        (f"{n} nodes: validate.load", t_load, detail, ""),
        (f"{n} nodes: make_plan", t_plan, "", ""),
    ]
    missed = False
    verdict = ""
    if n == 1000:
        missed = t_load + t_plan >= TARGET_CHECK_PLAN_1000
        verdict = f"{'MISSED' if missed else 'ok'} (target < {TARGET_CHECK_PLAN_1000:.1f} s)"
    rows.append((f"{n} nodes: load + plan", t_load + t_plan, "", verdict))
    for name, render in (
        ("plan_table", plan_table), ("plan_json", plan_json), ("to_mermaid", to_mermaid), ("to_dot", to_dot),
    ):
        rows.append((f"{n} nodes: {name}", best(partial(render, plan), runs), "", ""))
    cli_runs = max(1, runs // 2) if n <= 2000 else 1
    for command in ("check", "plan"):
        t = best_subprocess([*topo_script(), command, file], cli_runs)
        rows.append((f"{n} nodes: `topo {command}` (process)", t, "", ""))
    return rows, missed


def measure_startup(runs: int) -> tuple[list[Row], bool]:
    t_pass = best_subprocess([sys.executable, "-c", "pass"], runs)
    t_click = best_subprocess([sys.executable, "-c", "import click"], runs)
    t_help = best_subprocess([*topo_script(), "--help"], runs)
    t_help_c = best_subprocess([sys.executable, "-c", "from topo.cli.main import main; main()", "--help"], runs)
    missed = t_help >= TARGET_HELP
    return [
        ("python -c pass", t_pass, "1.00x floor", ""),
        ('python -c "import click"', t_click, f"{t_click / t_pass:.2f}x floor", ""),
        (
            "topo --help (script)", t_help,
            f"{t_help / t_pass:.2f}x floor, {t_help - t_click:+.3f} s over click",
            f"{'MISSED' if missed else 'ok'} (target < {TARGET_HELP:.1f} s)",
        ),
        ("python -c 'main()' --help", t_help_c, f"{t_help_c / t_pass:.2f}x floor", ""),
    ], missed


def profile(path: Path) -> str:
    from topo.plan.planner import make_plan
    from topo.file.validate import load

    prof = cProfile.Profile()
    prof.enable()
    make_plan(load(str(path)))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated node counts")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (best is kept)")
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile load+plan at the largest size")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write check_plan.json here instead of docs/img/")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    begun = time.perf_counter()
    info = machine()
    info["topo measured"] = topo_revision()

    rows: list[Row] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp:
        paths = {}
        for n in sizes:
            paths[n] = Path(tmp) / f"bench-{n}.yaml"
            paths[n].write_text(topology_text(n))
            size_rows, missed = measure_size(n, paths[n], args.runs if n <= 2000 else max(1, args.runs // 2))
            rows += size_rows
            failed |= missed
        startup_rows, missed = measure_startup(args.startup_runs)
        rows += startup_rows
        failed |= missed

        cells = [(what, fmt(t), detail, verdict) for what, t, detail, verdict in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(4)]
        print(f"python {sys.version.split()[0]}; best of {args.runs} (library), {args.startup_runs} (start-up)")
        for r in cells:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        if args.profile or failed:
            n = max(sizes)
            print(f"\ncProfile of load + make_plan, {n} nodes:")
            print(profile(paths[n]))
    if not args.no_write or args.results:
        info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
        command = " ".join(["python bench/check_plan.py", *sys.argv[1:]])
        data = {"runs": args.runs, "startup_runs": args.startup_runs, "sizes": sizes,
                "targets": {"check_plan_1000": TARGET_CHECK_PLAN_1000, "help": TARGET_HELP},
                "rows": [{"what": what, "seconds": t, "detail": detail, "verdict": verdict}
                         for what, t, detail, verdict in rows]}
        out = write_json("check_plan", sanitize(command), time.perf_counter() - begun, info, data,
                         results_dir(args.results))
        print(f"\nresults: {sanitize(str(out))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
