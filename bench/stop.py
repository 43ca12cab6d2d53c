"""Benchmark: how long `topo up` takes to stop, from Ctrl-C to nothing left.

    python bench/stop.py            # 5 runs of each scenario
    python bench/stop.py --quick    # 3 runs of each

Each run starts `python -m topo up FILE` as a subprocess (in a session of its own), reads
its output until the `all N node(s) ready` line, takes the list of its descendants with
psutil (the node processes, and multiprocessing's resource tracker), sends SIGINT to the
`topo up` process alone, and polls every 2 ms until the `topo up` process has exited and
every one of those descendants is gone (a zombie counts as gone: it has ended and only
waits to be reaped). Reported per scenario: the median time to `topo up`'s exit and to
the last process gone, the worst run, and `topo up`'s exit statuses (Ctrl-C: 130).

Scenarios, one node per process (a hub and N-1 others, PUB→SUB one way, PUSH→PULL back):

- cooperative, N = 2 and 8: every node is blocked in `recv` (bench/dp_nodes.py:blocked);
  the stop terminates the nodes' context, the blocked calls fail with ETERM, the nodes end;
- stubborn, N = 2 and 8, `--grace 1`: every node sleeps in a loop that never looks at
  `node.running` (bench/dp_nodes.py:stubborn). After the grace period the supervisor
  sends SIGTERM to what is left, and SIGKILL one second later; expected: about the grace.

Results go to stdout, to docs/benchmarks-datapath.md (the section between its stop
results markers) and to docs/img/stop.json (for bench/plots.py and bench/summary.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

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

PAGE = ROOT / "docs" / "benchmarks-datapath.md"
BEGIN = "<!-- stop-results:begin (written by bench/stop.py; edits between these markers are lost) -->"
END = "<!-- stop-results:end -->"
READY_TIMEOUT = 60.0  # seconds to wait for the ready line
GONE_TIMEOUT = 30.0  # seconds to wait, after SIGINT, for everything to be gone
POLL = 0.002
#: The supervisor's line for a node its process's BYE named as abandoned (not the summary's row).
ABANDONED = re.compile(r"\| (\S+) ignored the stop: abandoned after")
FUNCTIONS = {"cooperative": "blocked", "stubborn": "stubborn"}
SLUGS = {"cooperative": "coop", "stubborn": "stubborn"}

YAML = """\
topology: stop-{kind}-{n}
nodes:
  hub:
    run: bench.dp_nodes:{fn}
    sockets:
      in: PULL
      out: PUB
  other:
    run: bench.dp_nodes:{fn}
    replicas: {others}
    sockets:
      in: {{type: SUB, subscribe: [""]}}
      out: PUSH
links:
  - hub.out -> other.in
  - other.out -> hub.in
"""


@dataclass
class Stopped:
    exited: float  # seconds from SIGINT to `topo up`'s exit
    gone: float  # seconds from SIGINT to the last process of the run gone
    code: int | None
    processes: int  # descendants tracked
    left: int  # descendants still alive at the deadline (should be 0)
    #: Stubborn runs: processes whose last report (BYE, naming the abandoned node) never
    #: reached the supervisor, which then waits a second for it; their node is not reported
    #: "ignored the stop: abandoned ..." but "stopped" or "failed: its process P exited ...".
    silent: int = 0


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def one_run(file: Path, n: int, grace: float | None, env: dict[str, str], stubborn: bool) -> Stopped:
    cmd = [sys.executable, "-m", "topo", "up", str(file)]
    if grace is not None:
        cmd += ["--grace", str(grace)]
    popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    ready = threading.Event()
    lines: list[str] = []
    marker = f"all {n} node(s) ready"

    def read() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:  # ends at EOF: when `topo up` and every holder of the pipe are gone
            lines.append(line)
            if marker in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    tracked: list[psutil.Process] = []
    try:
        if not ready.wait(READY_TIMEOUT):
            raise RuntimeError(f"no {marker!r} line within {READY_TIMEOUT:g}s:\n" + "".join(lines[-20:]))
        tracked = psutil.Process(popen.pid).children(recursive=True)
        sent = time.perf_counter()
        popen.send_signal(signal.SIGINT)
        exited = None
        deadline = sent + GONE_TIMEOUT
        pending = list(tracked)
        while time.perf_counter() < deadline:
            if exited is None and popen.poll() is not None:
                exited = time.perf_counter() - sent
            pending = [p for p in pending if not _gone(p)]
            if exited is not None and not pending:
                break
            time.sleep(POLL)
        gone = time.perf_counter() - sent
        reader.join(5)
        abandoned = {m.group(1) for line in lines if (m := ABANDONED.search(line))}
        silent = n - len(abandoned) if stubborn else 0
        return Stopped(exited if exited is not None else float("nan"), gone, popen.poll(), len(tracked),
                       len(pending), silent)
    finally:
        # whatever happened, nothing of this run outlives it: its processes, by their pids
        for proc in [*tracked, psutil.Process(popen.pid) if popen.poll() is None else None]:
            if proc is not None and not _gone(proc):
                try:
                    proc.kill()
                except psutil.Error:
                    pass
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        reader.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs of each scenario instead of 5")
    parser.add_argument("--runs", type=int, help="runs of each scenario")
    parser.add_argument("--sizes", default="2,8", help="process counts")
    parser.add_argument("--grace", type=float, default=1.0, help="--grace of the stubborn scenario")
    parser.add_argument("--no-write", action="store_true",
                        help=f"do not update {PAGE.relative_to(ROOT)} nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write stop.json here instead of docs/img/")
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else (3 if args.quick else 5)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    if min(sizes) < 2:
        parser.error("sizes start at 2 (a hub and one other)")
    begun = time.perf_counter()
    progress = progress_printer()

    info = machine()
    info["topo measured"] = topo_revision()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-stop-"))
    env = {**os.environ, "TOPO_HOME": str(tmp / "home"), "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    scenarios = [(kind, n) for kind in FUNCTIONS for n in sizes]
    results: dict[tuple[str, int], list[Stopped]] = {s: [] for s in scenarios}
    errors: list[str] = []
    try:
        files = {}
        for kind, n in scenarios:
            files[(kind, n)] = path = tmp / f"stop-{SLUGS[kind]}-{n}.yaml"
            path.write_text(YAML.format(kind=SLUGS[kind], n=n, others=n - 1, fn=FUNCTIONS[kind]))
        for r in range(runs):  # scenarios interleaved, so drifts of the machine hit all
            for kind, n in scenarios:
                try:
                    stubborn = kind == "stubborn"
                    grace = args.grace if stubborn else None
                    results[(kind, n)].append(one_run(files[(kind, n)], n, grace, env, stubborn))
                except RuntimeError as err:
                    errors.append(f"{kind} N={n} run {r + 1}: {err}")
            progress(f"round {r + 1}/{runs} done")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for kind, n in scenarios:
        got = results[(kind, n)]
        if not got:
            rows.append([kind, str(n), "-", "0", "-", "-", "-", "-", "-", "-"])
            continue
        rows.append([
            kind, str(n), f"{args.grace:g} s" if kind == "stubborn" else "default (5 s)", str(len(got)),
            f"{median([s.exited for s in got]) * 1000:.0f} ms",
            f"{median([s.gone for s in got]) * 1000:.0f} ms",
            f"{max(s.gone for s in got) * 1000:.0f} ms",
            ", ".join(sorted({str(s.code) for s in got})),
            f"{sum(s.left for s in got)} of {sum(s.processes for s in got)}",
            f"{sum(1 for s in got if s.silent)} ({sum(s.silent for s in got)})" if kind == "stubborn" else "",
        ])
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    command = " ".join(["python bench/stop.py", *sys.argv[1:]])
    elapsed = time.perf_counter() - begun
    body = "\n\n".join([
        (f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {elapsed:.0f} s), "
         f"{runs} runs of each scenario, interleaved."),
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        table(["nodes", "N procs", "--grace", "runs", "SIGINT → topo up exited (median)",
               "SIGINT → all gone (median)", "all gone (worst)", "exit status", "processes left",
               "runs with a lost BYE (processes)"], rows),
        ("`lost BYE` (stubborn nodes): runs in which the supervisor never got the last report of "
         "a process (BYE, which names the node it abandons) and waited a second for it; the node "
         "is then not reported `ignored the stop: abandoned ...` but `stopped` or `failed: its "
         "process P exited with status 0`. In brackets: how many processes, over all runs."),
        *(["Runs that failed:\n\n" + "\n".join(f"- {e}" for e in errors)] if errors else []),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write or args.results:
        data = {"grace": args.grace, "runs": runs, "scenarios": scenario_json(results, args.grace),
                "errors": errors}
        out = write_json("stop", sanitize(command), elapsed, info, data, results_dir(args.results))
        print(f"\nresults: {sanitize(str(out))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmark: the data path", body, (BEGIN, END))  # its own markers
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    ok = not errors and all(s.left == 0 and s.code == 130 for got in results.values() for s in got)
    return 0 if ok else 1


def scenario_json(results: dict[tuple[str, int], list[Stopped]], grace: float) -> list[dict[str, Any]]:
    """Every run of every scenario, in seconds, for bench/plots.py and bench/summary.py."""
    out = []
    for (kind, n), got in results.items():
        out.append({
            "kind": kind, "processes": n, "grace": grace if kind == "stubborn" else None, "runs": len(got),
            "exited": [x.exited for x in got], "gone": [x.gone for x in got],
            "exited_median": median([x.exited for x in got]), "gone_median": median([x.gone for x in got]),
            "gone_worst": max((x.gone for x in got), default=float("nan")),
            "codes": [x.code for x in got], "left": sum(x.left for x in got),
            "tracked": sum(x.processes for x in got), "silent": sum(x.silent for x in got),
        })
    return out


if __name__ == "__main__":
    sys.exit(main())
