"""Benchmark: what a tap costs its process, in instructions (callgrind), whatever the load.

    python bench/tap_instructions.py          # needs valgrind; about 2 minutes

On a shared machine, throughput ratios (bench/tap.py) scatter with the load; instructions
do not. One thread sends 64 B messages on an inproc PUSH, 1,000 at a time, then (tapped)
the tap's sender takes its turn (:meth:`topo.process.tapway.TapWay.forward`, batches to an
inproc PULL), then the peer receives them. Three modes: ``untapped``; ``queued`` (the tap
on, its copies never sent: the node's thread's share); ``tapped`` (sent too). Each runs for
N and for 2N messages, and the difference over N is the count per message, start-up
excluded. Prints one row: untapped, the node's thread's share of a copy, the sender's,
and the tapped total.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("untapped", "queued", "tapped")
N = 20_000
TURN = 1000


def scenario(mode: str, n: int) -> None:
    """The measured loop (run under callgrind by :func:`main`)."""
    import zmq

    from topo.process import tap as taps
    from topo.process.tapway import TapWay

    ctx: zmq.Context = zmq.Context()
    push, pull, reader = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL), ctx.socket(zmq.PULL)
    push.sndhwm = pull.rcvhwm = reader.rcvhwm = 0
    push.bind("inproc://data")
    pull.connect("inproc://data")
    reader.bind("inproc://tap")
    way = TapWay("t", "sender", "push", "inproc://tap", frozenset({"out"}), lambda: None)
    way.connect(ctx)
    way.push.sndhwm = 0
    way.tap.limit = n + TURN
    if mode != "untapped":
        taps.attach(push, way.tap)
    payload = b"x" * 64
    for _ in range(n // TURN):
        for _ in range(TURN):
            push.send(payload)
        if mode == "tapped":
            way.forward()
        for _ in range(TURN):
            pull.recv()


def _instructions(mode: str, n: int, out: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                    "--scenario", mode, str(n)], env=env, check=True, capture_output=True, timeout=1200)
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if match is None:
        raise SystemExit(f"no instruction count in {out}")
    return int(match.group(1))


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--scenario":
        scenario(sys.argv[2], int(sys.argv[3]))
        return 0
    per: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            counts = [_instructions(mode, n, Path(tmp) / f"{mode}.{n}") for n in (N, 2 * N)]
            per[mode] = (counts[1] - counts[0]) // N
    print("| untapped | tap's queue (node's thread) | tap's sender | tapped in all |")
    print("|---|---|---|---|")
    print(f"| {per['untapped']:,} | {per['queued'] - per['untapped']:,} | {per['tapped'] - per['queued']:,} "
          f"| {per['tapped']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
