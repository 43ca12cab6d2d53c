"""Benchmark: what a live tap (``topo echo``/``hz``, ``run.tap()``) costs the tapped node.

    python bench/tap.py            # the full run (about 2 minutes on 2 cores)
    python bench/tap.py --quick    # fewer trials (under a minute)
    python bench/tap.py --messages 500000 --transports inproc
                                   # longer trials: the tap's start (its reader's
                                   # queues filling) weighs less than in 100,000

The PUSH→PULL 64 B pair of bench/datapath.py (bench/dp_nodes.py), wired by topo on inproc
(one process) and on ipc (a process each), is measured in three states, one trial of each
per round, the order rotating every round so load drifts hit all three:

- ``untapped``: nobody taps (the socket is its plain class);
- ``tap read``: a :class:`~topo.supervisor.tapreader.TapReader` on ``sender.push`` (``out``),
  read as fast as a thread of this process can;
- ``tap not read``: the same tap, opened and never read during the trial: the copies
  fill the reader's queue and the node drops the rest (the drop path).

A tap is put on before its trial and taken off after it. Reported: throughput at the
receiver (first to last of N), the tapped/untapped ratio (median of per-round ratios,
each tapped trial against the untapped trial of its round), the sender thread's CPU time
per message (``time.thread_time`` over its loop of sends: the tap's copying shows there;
the tap's own sender thread, which ships the copies, does not), its process's CPU time
over the same loop (``time.process_time``: the tap's thread too), and how many copies the
reader got and how many it was told were missed. Target: a tapped link keeps ≥ 0.5x of
its untapped throughput. Results go to stdout, to docs/benchmarks.md (between its tap
markers) and to docs/img/tap.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
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
from bench.dp_sides import Test, TopoSide

PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- tap:begin (written by bench/tap.py; edits between these markers are lost) -->", "<!-- tap:end -->")
TARGET = 0.5
STATES = ("untapped", "tap read", "tap not read")


class Reading:
    """A tap on the sender's PUSH for one trial; ``read``: a thread takes every copy as it comes."""

    def __init__(self, side: TopoSide, read: bool) -> None:
        from topo.process.control import CONTROL
        from topo.supervisor.tapreader import TapReader

        run_dir = side.run_.supervisor.run_dir
        assert run_dir is not None
        sockets = str(run_dir.sockets)
        self.reader = TapReader(f"ipc://{sockets}/{CONTROL}", sockets, ["sender.push"], ["out"]).open()
        self.reader.wait_on(10.0)
        self.got = 0
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True) if read else None
        if self._thread is not None:
            self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            if self.reader.next(0.1) is not None:
                self.got += 1

    def close(self) -> tuple[int, int]:
        """Copies read and copies missed, once what was in flight has come (a tap not read
        learns here how many it lost: it reads what is left after the trial)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        while self.reader.next(0.3) is not None:
            self.got += 1
        self.missed += self.reader.take_missed()
        self.reader.close()
        return self.got, self.missed


def trial(side: TopoSide, test: Test, state: str) -> dict[str, Any]:
    reading = Reading(side, state == "tap read") if state != "untapped" else None
    try:
        got = side.run(test)
    finally:
        copies, missed = reading.close() if reading is not None else (0, 0)
    return {**got, "copies": copies, "missed": missed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer trials (under a minute on 2 cores)")
    parser.add_argument("--rounds", type=int, help="trials of each state (default 9, quick 3)")
    parser.add_argument("--transports", default="inproc,ipc", help="comma-separated subset of inproc,ipc")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md nor the JSON results")
    parser.add_argument("--results", metavar="DIR", help="write tap.json here instead of docs/img/")
    parser.add_argument("--messages", type=int, help="messages per trial (default 100,000, quick 30,000)")
    args = parser.parse_args()
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 9)
    transports = [t for t in args.transports.split(",") if t]
    if any(t not in ("inproc", "ipc") for t in transports):
        parser.error(f"unknown transport in {args.transports!r}")
    n = args.messages or (30_000 if args.quick else 100_000)
    test = Test("push", "PUSH→PULL 64 B", "thr", "push", 64, n)
    begun = time.perf_counter()
    progress = progress_printer()
    info = machine()
    info["topo measured"] = topo_revision()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-tap-"))
    os.environ["TOPO_HOME"] = str(tmp / "home")
    tempfile.tempdir = str(tmp)
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    verdicts: dict[str, bool] = {}
    try:
        for transport in transports:
            progress(f"{transport}: launching")
            side = TopoSide(transport)
            try:
                side.run(Test(test.key, test.name, test.kind, test.socket, test.size, n // 10))  # warm-up
                res: dict[str, list[dict[str, Any]]] = {s: [] for s in STATES}
                for r in range(rounds):
                    order = STATES[r % 3:] + STATES[:r % 3]
                    for state in order:
                        res[state].append(trial(side, test, state))
                    progress(f"{transport}: round {r + 1}/{rounds} done")
            finally:
                side.close()
            base = median([x["rate"] for x in res["untapped"]])
            for state in STATES:
                xs = res[state]
                paired = [x["rate"] / u["rate"] for x, u in zip(xs, res["untapped"])]
                rate = median([x["rate"] for x in xs])
                cpu = median([x["send_cpu"] for x in xs]) / n * 1e9
                process_cpu = median([x["send_process_cpu"] for x in xs]) / n * 1e9
                copies, missed = median([x["copies"] for x in xs]), median([x["missed"] for x in xs])
                judged = median(paired)
                if state != "untapped":
                    ok = judged >= TARGET
                    verdicts[f"{transport} {state}: tapped ≥ {TARGET}x untapped (paired {judged:.2f}x)"] = ok
                rows.append([transport, state, f"{rate / 1000:,.0f} k msg/s",
                             "" if state == "untapped" else f"{rate / base:.2f}x / {judged:.2f}x",
                             f"{cpu:,.0f}", f"{process_cpu:,.0f}", "" if state == "untapped" else f"{copies:,.0f} / {missed:,.0f}",
                             "" if state == "untapped" else ("yes" if judged >= TARGET else "**no**")])
                records.append({"transport": transport, "state": state, "n": n, "rates": [x["rate"] for x in xs],
                                "paired": paired, "paired_median": judged, "send_cpu_ns": cpu,
                                "send_process_cpu_ns": process_cpu,
                                "copies": [x["copies"] for x in xs], "missed": [x["missed"] for x in xs]})
    finally:
        tempfile.tempdir = None
        shutil.rmtree(tmp, ignore_errors=True)
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    command = " ".join(["python bench/tap.py", *sys.argv[1:]])
    elapsed = time.perf_counter() - begun
    body = "\n\n".join([
        f"Run of {time.strftime('%Y-%m-%d %H:%M')} (`{command}`, {elapsed:.0f} s): {rounds} trials of each "
        f"state, N = {n:,} messages of 64 B per trial.",
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        table(["transport", "state", "throughput (median)", f"tapped/untapped (medians / paired)",
               "sender thread CPU ns/msg", "sender process CPU ns/msg", "copies read / missed (median)", f"≥ {TARGET}x"], rows),
        "Throughput at the receiver; `paired`: the median of per-round ratios. Copies read + missed "
        "= N when nothing is lost uncounted. The tapped node's CPU per message: its own thread "
        "(sender thread), and its whole process over the same loop (sender process: the tap's "
        "thread that ships the copies and libzmq's I/O thread too; on inproc the receiving "
        "node's thread as well, both nodes sharing one process).",
        "Targets:\n\n" + "\n".join(f"- {'met' if ok else '**MISSED**'}: {k}" for k, ok in verdicts.items()),
    ])
    body = sanitize(body)
    print(body)
    if not args.no_write or args.results:
        out = write_json("tap", sanitize(command), elapsed, info,
                         {"target": TARGET, "rounds": rounds, "rows": records, "verdicts": verdicts},
                         results_dir(args.results))
        print(f"\nresults: {sanitize(str(out))}", file=sys.stderr)
    if not args.no_write:
        write_results(PAGE, "Benchmarks", "### Results: a tapped socket\n\n" + body, MARKERS)
        print(f"written to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
