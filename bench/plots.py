"""Draws the benchmarks' plots from their JSON results, so a page can show a run at a glance.

    python -m pip install -e '.[bench]'     # matplotlib, needed by this script only
    python bench/plots.py                   # docs/img/*.json -> docs/img/*.png
    python bench/plots.py --results DIR --out DIR

Reads what bench/launch.py, bench/datapath.py and bench/stop.py wrote (``launch.json``,
``datapath.json``, ``stop.json``) and measures nothing: plots of a run can be redrawn at
any time, and a benchmark that was not run leaves its plot as it was. Every figure says
which run and which machine it shows. Writes:

- ``launch.png``: time to all-ready against the number of processes, topo's and the
  floor's, and the ratio topo/floor of every case (all-ready and whole run) with the 1.3x
  target;
- ``launch-pubsub.png``: `topo up` against the classic script, wall time and lost messages;
- ``datapath.png``: topo/baseline per transport and test, throughput and latency, with the
  0.95x target;
- ``stop.png``: time from Ctrl-C to every process gone, per scenario.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import matplotlib
except ImportError:  # a bench-only extra: say how to get it rather than print a traceback
    sys.exit("plots: matplotlib is not installed: pip install -e '.[bench]' (or pip install matplotlib)")

matplotlib.use("Agg")  # files only: no display, and the same output everywhere

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.common import RESULTS, read_json, results_dir

TOPO, BASE, TARGET_COLOR = "#1f77b4", "#7f7f7f", "#d62728"
TRANSPORT_COLORS = {"inproc": "#1f77b4", "ipc": "#ff7f0e", "tcp": "#2ca02c", "tcp+curve": "#9467bd"}


def _num(x: Any) -> float:
    """A JSON number, null (a NaN the benchmark could not measure) as NaN."""
    return float("nan") if x is None else float(x)


def caption(data: dict[str, Any]) -> str:
    """Which run and which machine a figure shows: a plot without it cannot be compared."""
    m = data.get("machine", {})
    return (f"{data.get('date', '?')}, `{data.get('command', '?')}` — {m.get('nproc', '?')} cores, "
            f"{m.get('CPU', '?')}, {m.get('Python', '?')}, pyzmq {m.get('pyzmq', '?')} "
            f"(libzmq {m.get('libzmq', '?')}), topo {m.get('topo measured', '?')}").replace("`", "")


def finish(fig: Figure, data: dict[str, Any], path: Path, top: float = 1.0) -> Path:
    """Captions the figure with its run and machine, and writes it."""
    text = textwrap.fill(caption(data), width=int(fig.get_figwidth() * 19))  # ~19 characters an inch at 7 pt
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.05, 1, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: diffs show data only
    plt.close(fig)
    return path


def target_line(ax: Axes, y: float, text: str, horizontal: bool = True) -> None:
    if horizontal:
        ax.axhline(y, color=TARGET_COLOR, linestyle="--", linewidth=1.2, label=text)
    else:
        ax.axvline(y, color=TARGET_COLOR, linestyle="--", linewidth=1.2, label=text)


def top_of(value: float, quartile: Sequence[Any] | None) -> float:
    """Where a bar's label goes: above the bar and above its upper whisker, never on them."""
    upper = _num(quartile[1]) if quartile else float("nan")
    return value if math.isnan(upper) else max(value, upper)


def iqr_err(values: Sequence[float], quartiles: Sequence[Any]) -> list[list[float]]:
    """Error bars from each bar's value down to its first quartile and up to its third."""
    lo = [max(0.0, v - _num(q[0])) if q and not math.isnan(_num(q[0])) else 0.0 for v, q in zip(values, quartiles)]
    hi = [max(0.0, _num(q[1]) - v) if q and not math.isnan(_num(q[1])) else 0.0 for v, q in zip(values, quartiles)]
    return [lo, hi]


# -- launch --------------------------------------------------------------------------------

def launch_plot(data: dict[str, Any], out: Path) -> Path | None:
    """Left: how the time to all-ready grows with N, topo against the floor (medians, the
    middle half shaded; whole run dashed; packed cases as separate markers). Right: the
    paired ratio topo/floor of every case, all-ready and whole run, against the target."""
    cases = data.get("launch")
    if not cases:
        return None
    target = float(data.get("target_launch_ratio", 1.3))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.15, 1]})
    single = sorted((c for c in cases if not c["packed"]), key=lambda c: c["processes"])
    packed = [c for c in cases if c["packed"]]
    for side, color, name in (("topo", TOPO, "topo (Supervisor)"), ("floor", BASE, "floor (spawn + import zmq)")):
        n = [c["processes"] for c in single]
        ready = [_num(c[side]["ready_median"]) * 1000 for c in single]
        q = [[_num(x) * 1000 for x in c[side]["ready_quartiles"]] for c in single]
        whole = [_num(c[side]["whole_median"]) * 1000 for c in single]
        left.plot(n, ready, marker="o" if side == "topo" else "s", color=color, label=f"{name}: all ready")
        left.fill_between(n, [a for a, _ in q], [b for _, b in q], color=color, alpha=0.15, linewidth=0)
        left.plot(n, whole, linestyle=":", color=color, linewidth=1, label=f"{name}: whole run")
        for c in packed:
            left.scatter([c["processes"]], [_num(c[side]["ready_median"]) * 1000], marker="*", s=160,
                         color=color, zorder=3, edgecolor="black", linewidth=0.5,
                         label=f"{side}: {c['nodes']} nodes in {c['processes']} procs, all ready")
    left.set_xlabel("processes started (N)")
    left.set_ylabel("time to all-ready (ms, median)")
    left.set_title("Launch: time to all-ready vs N (band: middle half)")
    left.set_xlim(left=0)
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")

    ordered = single + packed
    labels = [c["label"].replace(" / ", "\n") for c in ordered]
    x = range(len(ordered))
    width = 0.38
    for offset, key, color, name in ((-width / 2, "paired_ready", TOPO, "all-ready"),
                                     (width / 2, "paired_whole", "#9ecae1", "whole run")):
        values = [_num(c[f"{key}_median"]) for c in ordered]
        samples = [[_num(v) for v in c[key]] for c in ordered]
        quart = [_quartiles(s) for s in samples]
        right.bar([i + offset for i in x], values, width, color=color, label=f"{name} (paired median)",
                  yerr=iqr_err(values, quart), capsize=3, error_kw={"linewidth": 0.8})
        for i, v, mid in zip(x, values, quart):
            if not math.isnan(v):
                right.text(i + offset, top_of(v, mid) + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    target_line(right, target, f"target ≤ {target:g}x")
    right.axhline(1.0, color="black", linewidth=0.6)
    right.set_xticks(list(x), labels, fontsize=8)
    right.set_ylabel("topo / floor (lower is better)")
    right.set_title("Launch: ratio to the floor, per case (whiskers: middle half)")
    right.set_ylim(0, right.get_ylim()[1] * 1.25)
    right.grid(axis="y", alpha=0.3)
    right.legend(fontsize=8, loc="upper center", ncol=3)
    return finish(fig, data, out / "launch.png")


def _quartiles(xs: Sequence[float]) -> list[float]:
    from bench.common import quartiles

    return list(quartiles([x for x in xs if not math.isnan(x)]))


def pubsub_plot(data: dict[str, Any], out: Path) -> Path | None:
    """`topo up` against the classic cheat-sheet script: median wall time per scenario (the
    middle half as whiskers) and, on each bar, how many first messages were lost."""
    scenarios = data.get("pubsub")
    if not scenarios:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.4))
    names = {"prompt": "prompt subscriber", "slow": f"slow subscriber ({data.get('import_delay', 0.3):g} s import)"}
    width = 0.38
    for i, s in enumerate(scenarios):
        for offset, side, color, name in ((-width / 2, "topo", TOPO, "topo up"),
                                          (width / 2, "classic", BASE, "classic (cheat sheet)")):
            d = s[side]
            v = _num(d["wall_median"]) * 1000
            q = [_num(x) * 1000 for x in d["wall_quartiles"]]
            ax.bar(i + offset, v, width, color=color, label=name if i == 0 else None,
                   yerr=iqr_err([v], [q]), capsize=3, error_kw={"linewidth": 0.8})
            ax.text(i + offset, top_of(v, q) + 20, f"{v:.0f} ms\nlost {d['lost']} of {d['runs']}", ha="center",
                    va="bottom", fontsize=8)
        ax.text(i, -0.14, f"paired topo/classic: {_num(s['paired_wall_ratio']):.2f}x", ha="center",
                transform=ax.get_xaxis_transform(), fontsize=8)
    ax.set_xticks(range(len(scenarios)), [names.get(s["scenario"], s["scenario"]) for s in scenarios])
    ax.set_ylabel("wall time of the whole run (ms, median)")
    ax.set_title("2-node pub/sub: topo up vs the classic way\n(lower is better; lost: runs whose "
                 "first message never arrived; whiskers: middle half)", fontsize=10)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return finish(fig, data, out / "launch-pubsub.png")


# -- data path -----------------------------------------------------------------------------

def datapath_plot(data: dict[str, Any], out: Path) -> Path | None:
    """The ratio each target is judged on, per transport: throughput topo/baseline (paired
    median, the middle half of the per-round ratios as whiskers) and latency baseline/topo
    (best trials, the paired median as a dot), so above 1 is topo faster everywhere."""
    rows = data.get("rows")
    if not rows:
        return None
    target = float(data.get("target", 0.95))
    transports = [t for t in TRANSPORT_COLORS if any(r["transport"] == t for r in rows)]
    thr = [r for r in rows if r["measure"] == "throughput"]
    lat = [r for r in rows if r["measure"] != "throughput"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [2, 1]})

    def test_of(r: dict[str, Any]) -> str:
        return str(r["test"]).replace(" 64", "\n64")

    def percentile_of(r: dict[str, Any]) -> str:
        return str(r["measure"]).split()[-1]

    panels: list[tuple[Axes, list[dict[str, Any]], str, Callable[[dict[str, Any]], str]]] = [
        (axes[0], thr, "Throughput: topo / hand-wired pyzmq\n(paired median; whiskers: middle half of the rounds)",
         test_of),
        (axes[1], lat, "REQ→REP 64 B latency: baseline / topo\n(best trials; dot: paired median)", percentile_of),
    ]
    for ax, subset, title, label_of in panels:
        groups = list(dict.fromkeys(label_of(r) for r in subset))
        width = 0.8 / max(1, len(transports))
        for j, transport in enumerate(transports):
            got = {label_of(r): r for r in subset if r["transport"] == transport}
            xs = [i - 0.4 + width * (j + 0.5) for i, g in enumerate(groups) if g in got]
            vals = [_num(got[g]["judged"]) for g in groups if g in got]
            quart = [got[g]["paired_quartiles"] if got[g]["judged_on"].startswith("paired") else None
                     for g in groups if g in got]
            ax.bar(xs, vals, width, color=TRANSPORT_COLORS[transport], label=transport,
                   yerr=iqr_err(vals, quart), capsize=2, error_kw={"linewidth": 0.8})
            dots = [_num(got[g]["paired_median"]) for g in groups if g in got]
            for x, v, q, dot in zip(xs, vals, quart, dots):
                if not math.isnan(v):  # above the whisker, and above the dot where there is one
                    top = top_of(v, q) if q else top_of(v, [None, dot])
                    ax.text(x, top + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=7, rotation=90)
            if subset is lat:
                ax.scatter(xs, dots, color="black",
                           s=12, zorder=3, label="paired median" if j == 0 else None)
        target_line(ax, target, f"target ≥ {target:g}x")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_title(title, fontsize=10)
        highest = [top_of(_num(r["judged"]), r["paired_quartiles"] if r["judged_on"].startswith("paired")
                          else [None, r["paired_median"]]) for r in subset]
        ax.set_ylim(0, max(1.3, *(v * 1.2 for v in highest if not math.isnan(v))))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("ratio (above 1: topo faster)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.94))
    return finish(fig, data, out / "datapath.png", top=0.94)


# -- stop ----------------------------------------------------------------------------------

def stop_plot(data: dict[str, Any], out: Path) -> Path | None:
    """Ctrl-C to every process gone, per scenario: the median as a bar, the worst run as a
    tick. Results of older runs may hold reference and experiment scenarios (not topo as
    it is, ``experiment`` true): they are left out."""
    scenarios = [s for s in data.get("scenarios", []) if not s.get("experiment")]
    if not scenarios:
        return None
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(scenarios) + 1.6))
    labels = [f"{s['kind']}, {s['processes']} procs" for s in scenarios]
    y = list(range(len(scenarios)))[::-1]
    med = [_num(s["gone_median"]) * 1000 for s in scenarios]
    worst = [_num(s["gone_worst"]) * 1000 for s in scenarios]
    colors = [("#ff7f0e" if s["grace"] is not None else TOPO) for s in scenarios]
    ax.barh(y, med, color=colors, height=0.6)
    ax.scatter(worst, y, marker="|", s=200, color="black", label="worst run", zorder=3)
    for yy, m, w in zip(y, med, worst):
        if not math.isnan(m):
            ax.text(max(m, w if not math.isnan(w) else m) + 15, yy, f"{m:.0f} ms", va="center", fontsize=8)
    grace = data.get("grace")
    if grace is not None:
        target_line(ax, float(grace) * 1000, f"--grace {float(grace):g} s (stubborn nodes)", horizontal=False)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("SIGINT → every process of the run gone (ms, median of the runs)")
    fig.suptitle("Stopping topo up: Ctrl-C to nothing left\nblue: cooperative nodes; orange: nodes ignoring "
                 "the stop", fontsize=10)
    ax.set_xlim(0, max([*worst, *med, float(grace or 0) * 1000]) * 1.2)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return finish(fig, data, out / "stop.png")


PLOTS = (("launch", (launch_plot, pubsub_plot)), ("datapath", (datapath_plot,)), ("stop", (stop_plot,)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", metavar="DIR", help="where the JSON results are (default docs/img/)")
    parser.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: the results directory)")
    args = parser.parse_args(argv)
    source = results_dir(args.results)
    out = Path(args.out).resolve() if args.out else source
    for name, draws in PLOTS:
        data = read_json(name, source)
        if data is None:
            print(f"plots: no {name}.json in {_shown(source)}: its plots are left as they are")
            continue
        for draw in draws:
            written = draw(data, out)
            print(f"plots: {_shown(written) if written else f'{draw.__name__}: nothing to draw in {name}.json'}")
    return 0


def _shown(path: Path) -> str:
    """A path as the repository knows it, not as this machine does."""
    try:
        return str(path.relative_to(RESULTS.parent.parent))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
