"""Focused benchmark: inproc 64 KB PUSH→PULL and PUB→SUB, topo against the hand-wired
baseline, trials interleaved (the order flips every trial). The row of bench/datapath.py
that missed its target, alone, so a cause can be tried quickly.

    python bench/dp_inproc64.py --rounds 12
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq

from bench.common import median
from bench.dp_sides import BaselineSide, Side, Test, TopoSide


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--n", type=int, default=5000, help="messages per trial")
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--topo-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in topo's processes only (e.g. glibc's MALLOC_TOP_PAD_): an experiment")
    parser.add_argument("--mix", action="store_true",
                        help="also run the 64 B tests between them, as bench/datapath.py does")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="topo-bench-dp64-"))
    os.environ["TOPO_HOME"] = str(tmp / "home")
    tempfile.tempdir = str(tmp)
    ctx: zmq.Context[Any] = zmq.Context()
    todo = [Test("push64k", "PUSH→PULL", "thr", "push", args.size, args.n),
            Test("pub64k", "PUB→SUB", "thr", "pub", args.size, args.n)]
    if args.mix:
        todo = [Test("push", "PUSH→PULL 64 B", "thr", "push", 64, 100_000), todo[0],
                Test("pub", "PUB→SUB 64 B", "thr", "pub", 64, 100_000), todo[1]]
    sides: dict[str, Side] = {}
    try:
        saved = dict(os.environ)
        os.environ.update(dict(item.split("=", 1) for item in args.topo_env))
        try:
            sides["topo"] = TopoSide("inproc")  # its processes inherit this environment
        finally:
            os.environ.clear()
            os.environ.update(saved)
        sides["base"] = BaselineSide("inproc", tmp, ctx, sides["topo"].binds)  # type: ignore[attr-defined]
        for side in sides.values():
            side.sync_pubsub()
            for test in todo:
                side.run(Test(test.key, test.name, test.kind, test.socket, test.size, max(100, test.n // 10)))
        got: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {"topo": [], "base": []} for t in todo}
        flip = 0
        for _ in range(args.rounds):
            for test in todo:
                order = ["topo", "base"] if flip % 2 == 0 else ["base", "topo"]
                flip += 1
                for name in order:
                    got[test.name][name].append(sides[name].run(test))
        print(f"inproc, {args.size} B, {args.rounds} interleaved trials of {args.n} messages per side")
        for test in todo:
            t, b = got[test.name]["topo"], got[test.name]["base"]
            paired = median([x["rate"] / y["rate"] for x, y in zip(t, b)])
            cells = []
            for key in ("send_cpu", "recv_cpu", "send_loop", "send_faults", "recv_faults"):
                cells.append(f"{key} µs/msg {median([x[key] for x in t]) / test.n * 1e6:.2f} / "
                             f"{median([x[key] for x in b]) / test.n * 1e6:.2f}")
            print(f"{test.name}: topo {median([x['rate'] for x in t]):,.0f} msg/s, baseline "
                  f"{median([x['rate'] for x in b]):,.0f} msg/s, paired ratio {paired:.2f}x; " + "; ".join(cells))
    finally:
        for side in sides.values():
            side.close()  # type: ignore[attr-defined]
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
