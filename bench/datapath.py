"""Benchmark: the data path of sockets wired by topo, next to the same loop wired by hand.

    python bench/datapath.py            # the full run (3 to 4 minutes on 2 cores)
    python bench/datapath.py --quick    # fewer and shorter trials (about a minute)

Two nodes (bench/dp_nodes.py): a sender and a receiver. The same two functions run

- wired by topo: brought up with ``topo.testing.up`` from a topology whose data links are
  inproc (both nodes ``process: same``), ipc (a process each), tcp (``transport: tcp,
  curve: false`` on every link) or tcp+curve (``transport: tcp``: topo's default, CURVE);
  the benchmark drives them through probe sockets;
- wired by hand with pyzmq (the baseline): for inproc two threads of one spawned process
  sharing a Context; for ipc and tcp two spawned processes, ipc files in a temporary
  directory, tcp (plain, for tcp+curve too: that row is the price of encryption, not
  a target) on 127.0.0.1 with a port chosen at bind time. The same ends bind as in
  topo's plan, and the measured sockets get the same options.

Measured, per transport:

- throughput of PUSH→PULL and of PUB→SUB (a declared PUB is topo's PubSocket: an XPUB whose
  ``send`` is overridden in Python) with 64 B and 64 KB messages: the receiver times its
  first to its last message of N; throughput = (N - 1) / that time. The sender
  sets ``XPUB_NODROP`` on its PUB (both sides), so a PUB at its high-water mark blocks as
  a PUSH does instead of dropping, and every message is counted;
- round-trip latency REQ→REP, 64 B: K round trips timed one by one in the requesting node;
  p50 and p99.

One launch of each side per transport serves all its trials. Trials alternate between the
sides (topo, baseline, baseline, topo, ...: the order flips every trial), so load drifts
hit both. Reported: medians, the ratio of the medians and the median of per-round ratios
("paired"); for latency also each side's best trial. Target: topo ≥ 0.95x the baseline
everywhere (throughput topo/baseline, judged on the paired ratio; latency baseline/topo,
judged on the best trials: a trial is fast or slow as a whole, on either side at random).

Also reported: each side's time and CPU per message in the nodes' threads. The two sides
live in bench/dp_sides.py. Results go to stdout, to docs/benchmarks-datapath.md (between
its results markers) and to docs/img/datapath.json (for bench/plots.py and
bench/summary.py). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq

from bench.common import (
    ROOT,
    machine,
    median,
    progress_printer,
    quartiles,
    results_dir,
    sanitize,
    table,
    topo_revision,
    write_json,
    write_results,
)
from bench.dp_sides import TRANSPORTS, BaselineSide, Side, Test, TopoSide, tests

PAGE = ROOT / "docs" / "benchmarks-datapath.md"
TARGET = 0.95
#: Transports measured for their price, not against the target: topo's CURVE tcp against
#: plain hand-wired tcp (the encryption's cost; ``tcp`` is the like-for-like row).
PRICES = frozenset({"tcp+curve"})


@dataclass
class Samples:
    """Every trial of one test on a transport, both sides, in the order they ran."""

    topo: list[dict[str, Any]] = field(default_factory=list)
    base: list[dict[str, Any]] = field(default_factory=list)
    #: topo's value over the baseline's, per round (for latency: baseline over topo)
    paired: dict[str, list[float]] = field(default_factory=dict)


def interleave(sides: dict[str, Side], todo: list[Test], rounds: int, progress: Callable[[str], None],
               transport: str) -> dict[str, Samples]:
    """``rounds`` trials of each test on each side; the order of the two flips every trial."""
    out = {t.name: Samples() for t in todo}
    flip = 0
    for r in range(rounds):
        for test in todo:
            order = ["topo", "base"] if flip % 2 == 0 else ["base", "topo"]
            flip += 1
            got = {name: sides[name].run(test) for name in order}
            s = out[test.name]
            s.topo.append(got["topo"])
            s.base.append(got["base"])
            if test.kind == "thr":
                s.paired.setdefault("rate", []).append(got["topo"]["rate"] / got["base"]["rate"])
            else:
                for key in ("p50", "p99"):
                    s.paired.setdefault(key, []).append(got["base"][key] / got["topo"][key])
        progress(f"{transport}: round {r + 1}/{rounds} done")
    return out


def spread(xs: list[float]) -> str:
    """The middle half of the per-round ratios: how far one round may stray."""
    if len(xs) < 4:
        return f"{min(xs):.2f}–{max(xs):.2f}" if xs else ""
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return f"{q[0]:.2f}–{q[2]:.2f}"


def fmt_rate(rate: float, size: int) -> str:
    text = f"{rate / 1000:,.0f} k msg/s" if rate >= 10_000 else f"{rate:,.0f} msg/s"
    if size >= 1024:
        text += f" ({rate * size / 1e6:,.0f} MB/s)"
    return text


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def rows_for(transport: str, todo: list[Test], res: dict[str, Samples], verdicts: dict[str, bool]) -> list[list[str]]:
    rows = []
    for test in todo:
        s = res[test.name]
        if test.kind == "thr":
            t, b = median([x["rate"] for x in s.topo]), median([x["rate"] for x in s.base])
            paired = median(s.paired["rate"])
            ok = paired >= TARGET
            if transport in PRICES:  # CURVE against plain: what encryption costs, no target
                verdict = "(price)"
            else:
                verdicts[f"topo {transport} {test.name} throughput ≥ {TARGET}x baseline (paired {paired:.2f}x)"] = ok
                verdict = "yes" if ok else "**no**"
            rows.append([transport, test.name, "throughput", fmt_rate(t, test.size), fmt_rate(b, test.size),
                         f"{t / b:.2f}x", f"{paired:.2f}x", spread(s.paired["rate"]), "", verdict])
        else:
            for key in ("p50", "p99"):
                t, b = median([x[key] for x in s.topo]), median([x[key] for x in s.base])
                t_best, b_best = min(x[key] for x in s.topo), min(x[key] for x in s.base)
                paired = median(s.paired[key])
                # judged on the best trial of each side: here a trial's round trips are fast or
                # slow as a whole (on inproc ~10 µs or ~80 µs, as the threads' wake-ups go), on
                # either side at random, so medians and per-round ratios pick a mode by chance;
                # scheduling noise only ever adds latency, so the best trials compare the paths
                ok = b_best / t_best >= TARGET
                if transport in PRICES:
                    verdict = "(price)"
                else:
                    verdicts[f"topo {transport} {test.name} latency {key}: baseline/topo ≥ {TARGET} "
                             f"(best trials {b_best / t_best:.2f}x)"] = ok
                    verdict = "yes" if ok else "**no**"
                rows.append([transport, test.name, f"latency {key}", fmt_us(t), fmt_us(b),
                             f"{b / t:.2f}x", f"{paired:.2f}x", spread(s.paired[key]),
                             f"{fmt_us(t_best)} / {fmt_us(b_best)}: {b_best / t_best:.2f}x", verdict])
    return rows


def loop_rows(transport: str, todo: list[Test], res: dict[str, Samples]) -> list[list[str]]:
    """Per message, in the sender's thread: its loop's wall time (first to last ``send``
    returning) and CPU time, and the receiver thread's CPU time. CPU time is where topo's
    per-message code shows, and what the machine's load (other programs) does not inflate."""
    rows = []
    for test in todo:
        if test.kind != "thr":
            continue
        s = res[test.name]

        def per_msg(side: list[dict[str, Any]], key: str, n: int = test.n) -> float:
            return median([x[key] for x in side]) / n * 1e9

        cells = []
        for key in ("send_loop", "send_cpu", "recv_cpu"):
            t, b = per_msg(s.topo, key), per_msg(s.base, key)
            cells += [f"{t:,.0f} / {b:,.0f}", f"{t - b:+,.0f}"]
        rows.append([transport, test.name, *cells])
    return rows


def records_for(transport: str, todo: list[Test], res: dict[str, Samples]) -> list[dict[str, Any]]:
    """The rows of ``rows_for`` as data, with every trial: throughput in messages per
    second, latency in seconds; ``judged`` is the ratio the target is judged on (above 1:
    topo faster), ``judged_on`` says which."""
    out = []
    for test in todo:
        s = res[test.name]
        keys = ["rate"] if test.kind == "thr" else ["p50", "p99"]
        for key in keys:
            topo, base = [x[key] for x in s.topo], [x[key] for x in s.base]
            paired = s.paired[key]
            rec: dict[str, Any] = {
                "transport": transport, "test": test.name, "key": test.key, "size": test.size, "n": test.n,
                "measure": "throughput" if key == "rate" else f"latency {key}",
                "unit": "msg/s" if key == "rate" else "s", "topo": topo, "baseline": base, "paired": paired,
                "topo_median": median(topo), "baseline_median": median(base), "paired_median": median(paired),
                "paired_quartiles": list(quartiles(paired)),
            }
            if key == "rate":
                rec.update(judged=median(paired), judged_on="paired ratio")
            else:
                rec.update(topo_best=min(topo), baseline_best=min(base), judged=min(base) / min(topo),
                           judged_on="best trials")
            rec["met"] = rec["judged"] >= TARGET or transport in PRICES
            out.append(rec)
    return out


LOOP_HEADER = ["transport", "test", "sender wall ns/msg (topo / baseline)", "Δ",
               "sender CPU ns/msg", "Δ", "receiver CPU ns/msg", "Δ"]


HEADER = ["transport", "test", "measure", "topo (median)", "baseline (median)", "ratio of medians",
          "paired ratio", "paired, middle half", "best trials (topo / baseline: ratio)", f"≥ {TARGET}x"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter trials (about a minute on 2 cores)")
    parser.add_argument("--rounds", type=int, help="trials of each test on each side (default 15, quick 3)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="comma-separated subset of inproc,ipc,tcp,tcp+curve")
    parser.add_argument("--tests", default="push,push64k,pub,pub64k,rtt",
                        help="comma-separated subset of push,push64k,pub,pub64k,rtt")
    parser.add_argument("--no-write", action="store_true",
                        help=f"do not update {PAGE.relative_to(ROOT)} nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write datapath.json here instead of docs/img/")
    args = parser.parse_args()
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 15)
    transports = [t for t in args.transports.split(",") if t]
    for t in transports:
        if t not in TRANSPORTS:
            parser.error(f"unknown transport {t!r}")
    keys = [k for k in args.tests.split(",") if k]
    todo = [t for t in tests(args.quick) if t.key in keys]
    if len(todo) != len(keys):
        parser.error(f"unknown test in {args.tests!r}")
    begun = time.perf_counter()
    progress = progress_printer()

    info = machine()
    info["topo measured"] = topo_revision()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-dp-"))
    # topo's run and log directories, and the harness's copies of the topology, go here
    os.environ["TOPO_HOME"] = str(tmp / "home")
    tempfile.tempdir = str(tmp)
    ctx: zmq.Context[Any] = zmq.Context()
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    send_loops: list[list[str]] = []
    verdicts: dict[str, bool] = {}
    try:
        for transport in transports:
            progress(f"{transport}: launching topo and the baseline")
            sides: dict[str, Side] = {}
            try:
                sides["topo"] = TopoSide(transport)
                sides["base"] = BaselineSide(transport, tmp, ctx, sides["topo"].binds)  # type: ignore[attr-defined]
                for name, side in sides.items():
                    side.sync_pubsub()
                    for test in todo:  # warm-up, not counted: a tenth of each trial
                        side.run(Test(test.key, test.name, test.kind, test.socket, test.size, max(100, test.n // 10)))
                progress(f"{transport}: {rounds} rounds of {len(todo)} tests, each on both sides")
                res = interleave(sides, todo, rounds, progress, transport)
                rows += rows_for(transport, todo, res, verdicts)
                records += records_for(transport, todo, res)
                send_loops += loop_rows(transport, todo, res)
            finally:
                for side in sides.values():
                    try:
                        side.close()  # type: ignore[attr-defined]
                    except Exception as err:  # noqa: BLE001 - the next transport must still run
                        progress(f"{transport}: closing {side.label}: {err}")
    finally:
        ctx.term()
        tempfile.tempdir = None
        shutil.rmtree(tmp, ignore_errors=True)

    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    command = " ".join(["python bench/datapath.py", *sys.argv[1:]])
    sizes = ", ".join(f"{t.name}: {'K' if t.kind == 'lat' else 'N'} = {t.n:,}" for t in todo)
    elapsed = time.perf_counter() - begun
    sections = [
        (f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {elapsed:.0f} s): "
         f"{rounds} trials of each test on each side, interleaved; {sizes}."),
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        "### topo (this tree) vs hand-wired pyzmq\n\n" + table(HEADER, rows)
        + "\n\nThroughput: messages per second at the receiver, first to last message. Latency: one "
          "REQ→REP round trip, in the requesting node. Ratios are topo/baseline for throughput and "
          "baseline/topo for latency, so above 1 means topo is faster either way; `paired`: the "
          "median of per-round ratios, each topo trial against the baseline trial next to it; "
          "`middle half`: their interquartile range, the noise of one round; `best trials`: latency "
          "of each side's best trial. The target is judged on the paired ratio for throughput, and "
          "on the best trials for latency: a trial's round trips are all fast or all slow, on either "
          "side at random, so medians and per-round ratios of latency pick a mode by chance.",
    ]
    if send_loops:
        sections.append("### Per message, in the nodes' threads\n\nMedians over the trials. Sender wall: its loop of N sends, first to last `send` returning. CPU: "
                        "the thread's CPU time (`time.thread_time`) over the same loop, in the sender, and "
                        "in the receiver from its first to its last message; libzmq's I/O threads (ipc, "
                        "tcp) are not in it. Δ: topo − baseline, ns per message.\n\n"
                        + table(LOOP_HEADER, send_loops))
    sections.append("Targets (throughput: paired ratio; latency: best trials):\n\n" + "\n".join(
        f"- {'met' if ok else '**MISSED**'}: {name}" for name, ok in verdicts.items()))
    body = sanitize("\n\n".join(sections))
    print(body)
    if not args.no_write or args.results:
        data = {"target": TARGET, "rounds": rounds, "rows": records, "verdicts": verdicts}
        out = write_json("datapath", sanitize(command), elapsed, info, data, results_dir(args.results))
        print(f"\nresults: {sanitize(str(out))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmark: the data path", body)
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
