"""Benchmark: `topo up` to all-ready inside a Slurm allocation of 3 nodes, next to the same
run with hosts written by hand and an ssh-less launch prefix.

    python bench/slurm.py            # 9 trials of each (as root: a real cluster is made)
    python bench/slurm.py --quick    # 3 of each

A real Slurm cluster of three nodes runs on this machine (tests/integration/slurmcluster.py:
munged, slurmctld, one slurmd per network namespace). Inside one `salloc -N 3`, trials
alternate (bench.common.interleave) between

- slurm: the pipeline of tests/integration/test_slurm.py with `hosts: {from: slurm}`
  (workers `hosts: all`, vent on slurm[0], sink on slurm[2]): topo asks scontrol for the
  nodes and starts each agent with `srun --overlap`;
- by hand: the same nodes on the same namespaces with `hosts:` written out and
  `launch: [nsenter, --net=/run/netns/NS]`, the cheapest launch prefix there is.

Each trial is timed from starting `python -m topo up` to its line `all 5 node(s) ready`
(interpreter start-up, scontrol and srun included). Target: slurm median ≤ 1.5x by hand.
Results go to stdout and to docs/benchmarks.md (between its slurm markers). Exit status 1
if the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, interleave, machine, median, ms, quartiles, ratio, table, write_results

PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- slurm:begin (written by bench/slurm.py; edits between these markers are lost) -->",
           "<!-- slurm:end -->")
READY = re.compile(r"all 5 node\(s\) ready in ([0-9.]+)s")

NODES = """
nodes:
  vent: {run: itnodes:vent, host: VENT, args: {tasks: 30}, sockets: {out: PUSH}}
  worker: {run: itnodes:work, replicas: 3, SPREAD, sockets: {in: PULL, out: PUSH}}
  sink: {run: itnodes:collect, host: SINK, args: {tasks: 30}, on_exit: stop, sockets: {in: PULL}}
links:
  - vent.out -> worker.in
  - worker.out -> sink.in
"""


def files(d: Path, nodes: list[tuple[str, str, str]], local: str) -> tuple[Path, Path]:
    """(name, address, namespace) of each node: the two files of the comparison."""
    slurm = d / "slurm.yaml"
    slurm.write_text("topology: bslurm\nhosts: {from: slurm}\n" + NODES.replace("VENT", '"slurm[0]"')
                     .replace("SPREAD", "hosts: all").replace("SINK", '"slurm[2]"'))
    lines = [f"  local: {{address: {local}}}"] + [
        f"  {name}: {{address: {addr}, launch: [nsenter, --net=/run/netns/{ns}], python: {sys.executable}}}"
        for name, addr, ns in nodes]
    # the workers one per node, as hosts: all puts them
    spread = NODES.replace("VENT", nodes[0][0]).replace("SINK", nodes[2][0])
    spread = spread.replace("  worker: {run: itnodes:work, replicas: 3, SPREAD, sockets: {in: PULL, out: PUSH}}",
                            "\n".join(f"  worker{i}: {{run: itnodes:work, host: {n[0]}, sockets: {{in: PULL, out: PUSH}}}}"
                                      for i, n in enumerate(nodes)))
    spread = spread.replace("  - vent.out -> worker.in\n  - worker.out -> sink.in\n", "".join(
        f"  - vent.out -> worker{i}.in\n  - worker{i}.out -> sink.in\n" for i in range(len(nodes))))
    hand = d / "hand.yaml"
    hand.write_text("topology: bhand\nhosts:\n" + "\n".join(lines) + "\n" + spread)
    return slurm, hand


def trial(path: Path, env: dict[str, str]) -> float:
    """Seconds from starting topo up to its all-ready line; the run must end in 0."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "topo", "up", str(path), "--no-color"], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    took = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if took is None and READY.search(line):
            took = time.perf_counter() - started
    if proc.wait(timeout=60) != 0 or took is None:
        raise SystemExit(f"{path.name}: topo up failed:\n{''.join(lines)}")
    return took


def inside(args: argparse.Namespace) -> None:
    """In the allocation: the trials, their times as JSON on stdout."""
    d = Path(args.dir)
    nodes = json.loads(args.nodes)
    slurm, hand = files(d, nodes, args.local)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "integration"), str(ROOT)])}
    times: dict[str, list[float]] = {"slurm": [], "hand": []}
    trial(slurm, env), trial(hand, env)  # warm: bytecode compiled, caches filled
    for i in range(args.trials):
        interleave(i, lambda: times["slurm"].append(trial(slurm, env)), lambda: times["hand"].append(trial(hand, env)))
        print(f"trial {i}: slurm {times['slurm'][-1]:.3f}s, by hand {times['hand'][-1]:.3f}s", file=sys.stderr)
    print(json.dumps(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--nodes", help=argparse.SUPPRESS)
    parser.add_argument("--local", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=9, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return 0
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from slurmcluster import slurm_cluster  # noqa: E402 (tests' helper: a real cluster)

    trials = 3 if args.quick else 9
    info = machine()
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="bslurm-") as d, slurm_cluster(3) as cluster:
        nodes = [(n.name, n.address, n.host.name) for n in cluster.nodes]
        done = subprocess.run(["salloc", "-N", "3", "--quiet", sys.executable, __file__, "--inside", "--dir", d,
                               "--nodes", json.dumps(nodes), "--local", cluster.controller_address,
                               "--trials", str(trials)], env=cluster.env, capture_output=True, text=True, timeout=900)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            raise SystemExit(f"the trials failed (exit {done.returncode})")
        times = json.loads(done.stdout.strip().splitlines()[-1])
    s, h = median(times["slurm"]), median(times["hand"])
    (s1, s3), (h1, h3) = quartiles(times["slurm"]), quartiles(times["hand"])
    met = s <= 1.5 * h
    body = textwrap.dedent(f"""\
        ### Results: hosts from a Slurm allocation

        Run of {time.strftime('%Y-%m-%d %H:%M', time.gmtime(began))} (`python bench/slurm.py{' --quick' if args.quick else ''}`, {time.time() - began:.0f} s): {trials} trials of each, alternating, in one `salloc -N 3`; machine: {info.get('nproc', '?')} cores, {info.get('CPU', '?')}, load {info.get('load average (1 min) at start', '?')} at start.

        """) + table(["hosts", "topo up to all ready (median)", "middle half", "vs by hand"], [
        ["by hand, `launch: [nsenter, ...]`", ms(h), f"{ms(h1)} – {ms(h3)}", ""],
        ["`hosts: {from: slurm}`, `srun --overlap`", ms(s), f"{ms(s1)} – {ms(s3)}", ratio(s, h)],
    ]) + f"\n\nTarget: slurm ≤ 1.5x by hand: **{'met' if met else 'MISSED'}** ({ratio(s, h)}).\n"
    print(body)
    write_results(PAGE, "Benchmarks", body, MARKERS)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
