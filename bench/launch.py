"""Benchmark: what `topo up` costs at launch, next to the classic way and to the bare floor.

    python bench/launch.py             # the full run (about ten minutes on 2 cores)
    python bench/launch.py --quick     # fewer trials (a few minutes)
    python bench/launch.py --profile   # plus where topo's launch time goes

(a) Classic vs topo, 2-node pub/sub, both as subprocesses (interpreter start-up included):
    `python -m topo up FILE` (publisher sends one message and returns; subscriber receives
    one, 1 s timeout, and returns) against bench/classic_pubsub.py, the same two processes
    started as a common cheat sheet does it (spawn, SUB first, sleep 0.1, PUB binds, sleep
    0.2, send, sleep 0.1; ipc). Two scenarios: a prompt subscriber, and a slow one whose
    module takes 0.3 s to import (bench/slow_nodes.py). Wall time median and p90, the
    topo/classic ratio, and first-message losses out of N runs each (bench/launch_pubsub.py).
(b) Launch cost, in-process: time to all-ready and whole run (until Supervisor.run returns
    / every floor child is joined) of N processes (1 PULL hub + N-1 PUSH senders, one node
    per process, nodes return at once) driven by topo.supervisor.supervise's Supervisor, against the
    floor: N processes started with multiprocessing `spawn` that only `import zmq` and
    report over a pipe, timed from the first start to the last report; and of 200 nodes in
    10 processes against the floor of 10 (bench/launch_cost.py).

Every topo trial runs next to its baseline trial, in alternating order, so load drifts of
the machine hit both. Results go to stdout, to docs/benchmarks-launch.md (the section
between its results markers) and to docs/img/launch.json (for bench/plots.py and
bench/summary.py). Targets: (a) topo faster than classic, zero losses; (b) all-ready and
whole run within 1.3x of the floor, every case. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    machine,
    progress_printer,
    results_dir,
    sanitize,
    table,
    topo_revision,
    write_json,
    write_results,
)
from bench.launch_cost import (
    PHASES,
    TARGET_LAUNCH_RATIO,
    bench_launch,
    growth_rows,
    launch_json,
    launch_rows,
    parse_cases,
)
from bench.launch_profile import forkserver_experiment, profile
from bench.launch_pubsub import (
    PUBSUB_HEADER,
    RECEIVE_TIMEOUT,
    TOPO_UP_EXPERIMENT,
    bench_pubsub,
    delivered_note,
    pubsub_json,
    pubsub_rows,
)

PAGE = ROOT / "docs" / "benchmarks-launch.md"


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
    parser.add_argument("--sizes", default="2,16,64", help="process counts of the launch benchmark, a node each")
    parser.add_argument("--packed", default="200/10",
                        help="NODES/PROCS cases of the launch benchmark, comma-separated ('' for none)")
    parser.add_argument("--import-delay", type=float, default=0.3, help="the slow subscriber's import time (s)")
    parser.add_argument("--profile", action="store_true", help="also profile topo's launch (supervisor, child imports)")
    parser.add_argument("--skip", choices=["pubsub", "launch"], action="append", default=[], help="leave a part out")
    parser.add_argument("--as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE/-B as they are (no private bytecode cache)")
    parser.add_argument("--no-write", action="store_true",
                        help=f"do not update {PAGE.relative_to(ROOT)} nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write launch.json here instead of docs/img/")
    args = parser.parse_args()
    try:
        cases = parse_cases(args.sizes, args.packed)
    except ValueError as err:
        parser.error(str(err))
    if not args.as_is:
        ensure_bytecode_cache()
    runs = args.runs if args.runs is not None else (6 if args.quick else 20)
    loss_runs = args.loss_runs if args.loss_runs is not None else (12 if args.quick else 100)
    launch_runs = args.launch_runs if args.launch_runs is not None else (3 if args.quick else 7)

    begun = time.perf_counter()
    progress = progress_printer()

    info = machine()
    info["topo measured"] = topo_revision()
    info["bytecode"] = ("private cache (PYTHONDONTWRITEBYTECODE was set)" if os.environ.get("TOPO_BENCH_PYCACHE")
                        else "not written (as is)" if sys.flags.dont_write_bytecode else "usual __pycache__")
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-", dir="/tmp"))
    # topo's run and log directories for this benchmark only: nothing is left in the user's
    env = {**os.environ, "TOPO_HOME": str(tmp / "home"), "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
           "TOPO_BENCH_IMPORT_DELAY": str(args.import_delay)}
    os.environ["TOPO_HOME"] = env["TOPO_HOME"]
    sections: list[str] = []
    verdicts: dict[str, bool] = {}
    data: dict[str, object] = {"target_launch_ratio": TARGET_LAUNCH_RATIO, "receive_timeout": RECEIVE_TIMEOUT,
                               "import_delay": args.import_delay}
    try:
        if "pubsub" not in args.skip:
            progress(f"(a) pub/sub: {runs} prompt and {loss_runs} slow rounds, topo and classic each")
            results = bench_pubsub(tmp, env, runs, loss_runs, progress)
            rows, v = pubsub_rows(results, args.import_delay)
            verdicts.update(v)
            data["pubsub"] = pubsub_json(results)
            sections.append(
                "### (a) 2-node pub/sub, whole run as a subprocess: `topo up` vs the classic way\n\n"
                + table(PUBSUB_HEADER, rows)
                + "\n\n`subscriber done at`: median time from the command's start to the subscriber's "
                  "printed result (message received, or lost after its 1 s timeout). `exit stalled`: "
                  "runs in which topo had to SIGTERM a process that did not end by itself within the "
                  "grace period (5 s) after its nodes returned.\n\n" + delivered_note(results["slow"]))
            notes = [f"- {name} #{i}: " + " ".join(t.note.split()) for name, pair in results.items()
                     for i, t in enumerate(pair.topo + pair.classic) if t.note]
            if notes:
                sections.append("Runs that did not exit 0 (first 10):\n\n" + "\n".join(notes[:10]))
        if "launch" not in args.skip:
            progress(f"(b) launch: {', '.join(c.label for c in cases)}; {launch_runs} rounds, topo and floor each")
            lres = bench_launch(tmp, cases, launch_runs, progress)
            rows, cost_rows, phase_rows, v = launch_rows(lres)
            verdicts.update(v)
            data["launch"] = launch_json(lres)
            sections.append(
                "### (b) Launch cost, in-process: topo's Supervisor vs the spawn + `import zmq` floor\n\n"
                + table(["procs", "nodes", "runs", "floor ready", "floor p90", "topo ready", "topo p90",
                         "topo/floor ready", "floor whole", "topo whole", "topo/floor whole"], rows)
                + "\n\nThe floor of a case is as many bare processes as topo starts: a case of several "
                  "nodes per process (`nodes` > `procs`) is measured against `procs` processes that only "
                  "import zmq.")
            growth = growth_rows(lres)
            if growth:
                sections.append(
                    "How it grows with N (one node per process): the time to all-ready that each "
                    "further process adds, between two sizes (difference of the medians over the "
                    "difference of N):\n\n" + table(["N", "floor per process", "topo per process",
                                                       "topo/floor"], growth))
            sections.append(
                "CPU of a launch (parent and reaped children, user + system; median), topo runs that got "
                "all ready but did not end with status 0, and runs that never got all ready (left out "
                "of the times above; the trial was run again, up to 3 tries):\n\n"
                + table(["procs", "nodes", "floor CPU", "topo CPU", "topo/floor CPU", "floor CPU/process",
                         "topo CPU/process", "topo ready, exit ≠ 0", "topo never ready (retried)"], cost_rows))
            sections.append("Phases of topo's launch (median, from the start of Supervisor.run; "
                            "`last X`: when the supervisor handled the last X message):\n\n"
                            + table(["procs", "nodes", *PHASES], phase_rows))
            failures = [f"- {c.label}: {x.failure}" for c, res in lres.items()
                        for x in res.topo + res.lost if x.failure]
            if failures:
                sections.append("topo launch runs that did not exit 0 (first 10):\n\n" + "\n".join(failures[:10]))
        if args.profile:
            progress("profile")
            single = [c for c in cases if not c.packed]
            small = [c for c in single if c.processes <= 16]
            sections.append(profile(tmp, max(small, key=lambda c: c.processes) if small else cases[0]))
            progress("forkserver experiment")
            sections.append(forkserver_experiment(tmp, single or cases, max(1, min(launch_runs, 3))))
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
    elapsed = time.perf_counter() - begun
    body = "\n\n".join([
        (f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {elapsed:.0f} s): " + ", ".join(
            ([] if "pubsub" in args.skip else [f"{runs} prompt and {loss_runs} slow pub/sub rounds"])
            + ([] if "launch" in args.skip else [f"{launch_runs} launch rounds per size"])) + "."),
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        *sections,
        "Targets (ratios: the median of per-round ratios, each topo trial against the baseline "
        "trial run next to it):\n\n" + "\n".join(verdict_lines),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write or args.results:
        data["verdicts"] = verdicts
        out = write_json("launch", sanitize(command), elapsed, info, data, results_dir(args.results))
        print(f"\nresults: {sanitize(str(out))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmark: launching with `topo up`", body)
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
