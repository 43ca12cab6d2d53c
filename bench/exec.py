"""Benchmark: what starting exec nodes costs against spawning the same programs bare.

    python bench/exec.py            # 15 rounds (about half a minute on 2 cores)
    python bench/exec.py --quick    # 5 rounds

N exec nodes (16 by default) whose program exits at once (``exec: [true]``, the
coreutils ``true`` found on PATH, as topo finds it), against N bare ``subprocess.Popen``
starts of the same program, side by side in one run, one trial of each side per round,
the order alternating every round so a drift of the machine's load hits both.

What is timed, on each side (target on the first):

- **in-process** (no interpreter start on either side): topo's side is
  ``topo.supervisor.supervise.Supervisor(plan).run()`` in this process, from the
  supervisor's construction to ``run()`` returning: the run's directory, every program
  spawned in its start order with its environment and output pipes, each seen to exit,
  the run ended and cleaned up. The plan is made once beforehand (loading and planning
  are not starting). The baseline is N ``subprocess.Popen([true])`` in this process, then
  a ``wait()`` for each. Target: topo ≤ 1.2x the baseline (median of per-round ratios).
- **per further node**: the same two with 1 node instead of N; (time with N - time with
  1) / (N - 1) on each side is what one more exec node costs, the run's fixed costs
  (run directory, control socket, the keeper) taken out. Reported, no target.
- **floor**: what any launcher written in Python pays to keep the promises topo keeps for
  each program, and nothing else: N ``Popen`` with the program's own output pipes (read
  to their end), process group, environment and working directory, each watched by its
  pidfd in one ``epoll`` until it has exited and is reaped; no run directory, control
  socket, keeper, files or states. Reported against the bare starts, to tell the part of
  topo's ratio that comes with the duties from the part that is topo's own work. No target.
- **floor with the run's duties**: the floor, plus what the contract asks of every run,
  each done once by the least code that can: a keeper (a ``/bin/sh`` waiting on a pipe,
  in a session of its own, told each program's group; reaped after the timer stops, as
  topo reaps its own on a thread), the run's private directory and its log directory,
  ``run.json`` (for ``topo ps``), a ZeroMQ context and one ipc control socket (for
  ``topo ps`` and ``topo down``), ``outcome.json`` written whole (a ``.part`` renamed),
  the socket closed, the context ended, the run's directory removed. Reported against the
  bare starts: where it is above the target, no launcher keeping those promises can meet
  the target, and the bench says so.
- **whole command** (an interpreter start on both sides): ``python -m topo up FILE``
  from the command to its exit, against ``python -c SCRIPT`` where SCRIPT Popens N
  programs and waits for them. Most of topo's side is its own start (imports, reading
  the file, planning): reported for scale, no target.

Results go to stdout, to docs/benchmarks.md (between its exec markers) and to
docs/img/exec.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    interleave,
    machine,
    median,
    p90,
    progress_printer,
    results_dir,
    run_bounded,
    sanitize,
    table,
    topo_revision,
    write_json,
    write_results,
)

PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- exec:begin (written by bench/exec.py; edits between these markers are lost) -->",
           "<!-- exec:end -->")
TARGET = 1.2
TRIAL_TIMEOUT = 60.0
PROGRAM = "true"


def exec_yaml(n: int) -> str:
    lines = [f"topology: bench-exec-{n}", "nodes:"]
    lines += [f"  prog{i}: {{exec: [\"{PROGRAM}\"]}}" for i in range(n)]  # quoted: YAML reads true as a boolean
    return "\n".join(lines) + "\n"


class Quiet:
    """A Supervisor reporter that keeps what it is told (shown if a run fails), nothing else."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def output(self, name: str, line: str, err: bool) -> None:
        self.lines.append(f"{name} | {line}")

    def system(self, text: str) -> None:
        self.lines.append(f"topo | {text}")

    def __getattr__(self, name: str) -> Callable[..., None]:
        """Any other reporter call (state changes, STATUS lines...): ignored."""
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def topo_run(plan: Any) -> float:
    """One in-process run of ``plan``: construction to ``run()`` returning, in seconds."""
    from topo.supervisor.supervise import Supervisor

    reporter = Quiet()
    start = time.perf_counter()
    sup = Supervisor(plan, reporter, ready_timeout=TRIAL_TIMEOUT, grace=5.0, sys_path=(str(ROOT),))
    outcome = run_bounded(sup, TRIAL_TIMEOUT)
    took = time.perf_counter() - start
    if outcome.code != 0:
        raise SystemExit(f"topo's run failed ({outcome.code}: {outcome.reason}):\n" + "\n".join(reporter.lines))
    return took


def bare_run(program: str, n: int) -> float:
    """``n`` bare starts of ``program`` and a wait for each, in seconds."""
    start = time.perf_counter()
    procs = [subprocess.Popen([program]) for _ in range(n)]
    for proc in procs:
        if proc.wait(TRIAL_TIMEOUT) != 0:
            raise SystemExit(f"{program} exited {proc.returncode}")
    return time.perf_counter() - start


def floor_run(program: str, n: int, cwd: str, run: Path | None = None) -> float:
    """``n`` starts of ``program`` as topo must start them, done by the least code that can
    (see the module's docstring), in seconds; with ``run`` (a directory that is not there
    yet, its parent private), the run's duties too."""
    env = {**os.environb, b"TOPO_INSTANCE": b"prog", b"TOPO_SOCKETS": b"{}"}
    group: dict[str, Any] = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    start = time.perf_counter()
    duties = RunDuties(run) if run is not None else None
    watch = select.epoll()
    waiting: dict[int, subprocess.Popen[bytes] | None] = {}  # fd -> its program (a pidfd), None (a pipe)
    try:
        for _ in range(n):
            (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
            proc = subprocess.Popen([program], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out_w,
                                    stderr=err_w, **group)
            os.close(out_w)
            os.close(err_w)
            if duties is not None:
                duties.tell(f"+{proc.pid}\n")
            for fd, owner in ((out_r, None), (err_r, None), (os.pidfd_open(proc.pid), proc)):
                watch.register(fd, select.EPOLLIN)
                waiting[fd] = owner
        while waiting:
            ready = watch.poll(TRIAL_TIMEOUT)
            if not ready:
                raise SystemExit(f"floor: {len(waiting)} descriptor(s) not done within {TRIAL_TIMEOUT:g}s")
            for fd, _ in ready:
                owner = waiting[fd]
                if owner is None and os.read(fd, 65536):
                    continue  # output: read on until its end
                if owner is not None and owner.wait(TRIAL_TIMEOUT) != 0:
                    raise SystemExit(f"{program} exited {owner.returncode}")
                if owner is not None and duties is not None:
                    duties.tell(f"-{owner.pid}\n")
                watch.unregister(fd)
                os.close(fd)
                del waiting[fd]
        if duties is not None:
            duties.end()
    finally:
        for fd in waiting:
            os.close(fd)
        watch.close()
    took = time.perf_counter() - start
    if duties is not None:
        duties.reap()
    return took


class RunDuties:
    """What the contract asks of every run, each done once by the least code that can (see
    the module's docstring): begun at construction, ended by :meth:`end`."""

    def __init__(self, run: Path) -> None:
        import zmq

        life_r, self.life = os.pipe()
        groups_r, self.groups = os.pipe()
        try:
            self.keeper = subprocess.Popen(["/bin/sh", "-c", "while read -r n; do :; done"],
                                           stdin=life_r, stdout=groups_r, start_new_session=True)
        finally:
            os.close(life_r)
            os.close(groups_r)
        self.run, self.logs = run, run.with_name(run.name + "-logs")
        os.mkdir(run, 0o700)
        os.mkdir(self.logs, 0o700)
        control = f"ipc://{run}/control"
        (run / "run.json").write_text(json.dumps({"pid": os.getpid(), "control": control, "cwd": os.getcwd()}))
        self.ctx = zmq.Context()
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.bind(control)

    def tell(self, line: str) -> None:
        """A program's group started or ended, told to the keeper."""
        os.write(self.groups, line.encode())

    def end(self) -> None:
        part = self.logs / "outcome.json.part"
        part.write_text(json.dumps({"code": 0, "reason": "", "nodes": {}}))
        part.replace(self.logs / "outcome.json")
        self.control.close(linger=0)
        self.ctx.term()
        shutil.rmtree(self.run)
        for fd in (self.groups, self.life):
            os.close(fd)

    def reap(self) -> None:
        """After the timer (topo reaps its keeper on a thread); the log directory too."""
        self.keeper.wait(TRIAL_TIMEOUT)
        shutil.rmtree(self.logs)


BARE_SCRIPT = """\
import subprocess, sys
procs = [subprocess.Popen([sys.argv[1]]) for _ in range(int(sys.argv[2]))]
sys.exit(max(p.wait() for p in procs))
"""


def command_run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TRIAL_TIMEOUT)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    parser.add_argument("--rounds", type=int, help="trials of each side per measure")
    parser.add_argument("--nodes", type=int, default=16, help="exec nodes (and bare starts) per trial")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write exec.json here instead of docs/img/")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    n = args.nodes
    if n < 2:
        parser.error("--nodes: at least 2 (the per-node cost compares N with 1)")
    program = shutil.which(PROGRAM)
    if program is None:
        raise SystemExit(f"no {PROGRAM!r} on PATH")
    from topo.file.validate import load
    from topo.plan.planner import make_plan

    begun = time.perf_counter()
    progress = progress_printer()
    info = machine()
    info["topo measured"] = topo_revision()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-exec-"))
    home = tmp / "home"
    saved_home = os.environ.get("TOPO_HOME")
    os.environ["TOPO_HOME"] = str(home)  # the in-process supervisor's runs and logs
    env = {**os.environ, "TOPO_HOME": str(home)}
    files = {k: tmp / f"exec-{k}.yaml" for k in (1, n)}
    plans = {}
    for k, path in files.items():
        path.write_text(exec_yaml(k))
        plans[k] = make_plan(load(str(path)))
    times: dict[str, list[float]] = {key: [] for key in ("topo", "bare", "topo1", "bare1", "topo_cmd", "bare_cmd",
                                                         "floor", "bare_floor", "floor_run", "bare_floor_run")}
    runs = (tmp / "runs" / f"r{i}" for i in itertools.count())
    (tmp / "runs").mkdir(mode=0o700)
    try:
        topo_run(plans[n]), bare_run(program, n), floor_run(program, n, str(tmp), next(runs))  # untimed warm-ups
        for r in range(rounds):
            interleave(r, lambda: times["topo"].append(topo_run(plans[n])),
                       lambda: times["bare"].append(bare_run(program, n)))
            interleave(r, lambda: times["topo1"].append(topo_run(plans[1])),
                       lambda: times["bare1"].append(bare_run(program, 1)))
            interleave(r, lambda: times["floor"].append(floor_run(program, n, str(tmp))),
                       lambda: times["bare_floor"].append(bare_run(program, n)))
            interleave(r, lambda: times["floor_run"].append(floor_run(program, n, str(tmp), next(runs))),
                       lambda: times["bare_floor_run"].append(bare_run(program, n)))
            interleave(r, lambda: times["topo_cmd"].append(
                           command_run([sys.executable, "-m", "topo", "up", str(files[n])], env)),
                       lambda: times["bare_cmd"].append(
                           command_run([sys.executable, "-c", BARE_SCRIPT, program, str(n)], env)))
            progress(f"round {r + 1}/{rounds} done")
    finally:
        if saved_home is None:
            os.environ.pop("TOPO_HOME", None)
        else:
            os.environ["TOPO_HOME"] = saved_home
        shutil.rmtree(tmp, ignore_errors=True)

    def paired(a: str, b: str) -> float:
        return median([x / y for x, y in zip(times[a], times[b])])

    per_node = {side: [(many - one) / (n - 1) for many, one in zip(times[side], times[side + "1"])]
                for side in ("topo", "bare")}
    in_process = paired("topo", "bare")
    floor_with_run = paired("floor_run", "bare_floor_run")
    command = paired("topo_cmd", "bare_cmd")
    per_node_ratio = median(per_node["topo"]) / median(per_node["bare"]) if median(per_node["bare"]) else float("nan")

    def ms_(x: float) -> str:
        return f"{x * 1000:,.1f} ms"

    rows = [
        [f"in-process: {n} exec nodes, construction to run() returning / {n} Popen + wait",
         ms_(median(times["topo"])), ms_(p90(times["topo"])), ms_(median(times["bare"])), ms_(p90(times["bare"])),
         f"**{in_process:.2f}x**", f"≤ {TARGET}x: " + ("met" if in_process <= TARGET else "**missed**")],
        ["in-process: 1 exec node / 1 Popen + wait", ms_(median(times["topo1"])), ms_(p90(times["topo1"])),
         ms_(median(times["bare1"])), ms_(p90(times["bare1"])), f"{paired('topo1', 'bare1'):.2f}x", ""],
        [f"per further node: (time with {n} - time with 1) / {n - 1}", ms_(median(per_node["topo"])),
         ms_(p90(per_node["topo"])), ms_(median(per_node["bare"])), ms_(p90(per_node["bare"])),
         f"{per_node_ratio:.2f}x (of medians)", ""],
        [f"floor: {n} starts with topo's duties and nothing else / {n} Popen + wait", ms_(median(times["floor"])),
         ms_(p90(times["floor"])), ms_(median(times["bare_floor"])), ms_(p90(times["bare_floor"])),
         f"{paired('floor', 'bare_floor'):.2f}x", ""],
        [f"floor with the run's duties (keeper, run directory, run.json, control socket, outcome.json) / {n} Popen "
         "+ wait", ms_(median(times["floor_run"])), ms_(p90(times["floor_run"])), ms_(median(times["bare_floor_run"])),
         ms_(p90(times["bare_floor_run"])), f"{floor_with_run:.2f}x",
         f"the target is {'above' if floor_with_run <= TARGET else '**below**'} it"],
        [f"whole command: `python -m topo up` / `python -c` Popen-ing {n}", ms_(median(times["topo_cmd"])),
         ms_(p90(times["topo_cmd"])), ms_(median(times["bare_cmd"])), ms_(p90(times["bare_cmd"])),
         f"{command:.2f}x", ""],
    ]
    verdicts = {f"{n} exec nodes in-process: ≤ {TARGET}x {n} bare starts (paired {in_process:.2f}x)":
                in_process <= TARGET}
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    cmd = " ".join(["python bench/exec.py", *sys.argv[1:]])
    elapsed = time.perf_counter() - begun
    body = "\n\n".join([
        f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{cmd}`, {elapsed:.0f} s): {rounds} trials of each side per "
        f"measure, program `{PROGRAM}` ({sanitize(program)}).",
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        table(["measure", "topo (median)", "topo (p90)", "bare (median)", "bare (p90)", "topo/bare (paired)",
               "target"], rows),
        "Targets:\n\n" + "\n".join(f"- {'met' if ok else '**MISSED**'}: {k}" for k, ok in verdicts.items()),
        *([f"The floor with the run's duties alone is {floor_with_run:.2f}x the bare starts: the {TARGET}x target "
           "is below what keeping the contract's promises for a run costs, by the least code that can."]
          if floor_with_run > TARGET else []),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write or args.results:
        saved = write_json("exec", sanitize(cmd), elapsed, info,
                           {"target": TARGET, "rounds": rounds, "nodes": n, "program": PROGRAM, "times": times,
                            "per_node": per_node, "paired_in_process": in_process, "paired_command": command,
                            "paired_floor": paired("floor", "bare_floor"), "paired_floor_run": floor_with_run,
                            "per_node_ratio": per_node_ratio, "verdicts": verdicts},
                           results_dir(args.results))
        print(f"\nresults: {sanitize(str(saved))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmarks", "### Results: exec nodes\n\n" + body, MARKERS)
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
