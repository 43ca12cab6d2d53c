"""The latest results of every benchmark on one page: docs/benchmarks.md, from their JSON.

    python bench/summary.py            # docs/img/*.json -> the results section of docs/benchmarks.md
    python bench/summary.py --no-write # print the table of every ratio only

Reads what bench/check_plan.py, bench/launch.py, bench/datapath.py and bench/stop.py
wrote last (``docs/img/NAME.json``), measures nothing, and needs nothing but the standard
library: the page's machine description, its table of every target and its plots are
generated, so they cannot drift from the numbers. Replaces only the section between the
summary markers of the page; the rest is prose, kept as written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, read_json, results_dir, sanitize, table, write_results

PAGE = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- summary:begin (written by bench/summary.py from docs/img/*.json; edits between these markers are lost) -->"
END = "<!-- summary:end -->"
NAMES = ("check_plan", "launch", "datapath", "stop", "apply")
#: The machine's description, in the page's words: what the numbers depend on.
MACHINE = (("nproc", "cores (`nproc`)"), ("CPU", "CPU (model name, /proc/cpuinfo)"), ("kernel", "kernel"),
           ("Python", "Python"), ("pyzmq", "pyzmq"), ("libzmq", "libzmq"))
PLOTS = (("launch.png", "Launch: time to all-ready against N, topo and the floor, and every ratio"),
         ("launch-pubsub.png", "2-node pub/sub: topo up against the classic script"),
         ("datapath.png", "Data path: topo against hand-wired pyzmq, per transport"),
         ("stop.png", "Stop: Ctrl-C to every process gone"))

Row = list[str]  # benchmark, measure, result, target, verdict


def _n(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _ms(seconds: Any) -> str:
    s = _n(seconds)
    return "n/a" if math.isnan(s) else f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def _x(r: Any) -> str:
    v = _n(r)
    return "n/a" if math.isnan(v) else f"{v:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else "met" if ok else "**missed**"


def launch_rows(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    target = _n(d.get("target_launch_ratio", 1.3))
    for s in d.get("pubsub", []):
        label = "prompt subscriber" if s["scenario"] == "prompt" else f"slow subscriber ({d.get('import_delay')} s import)"
        t, c = s["topo"], s["classic"]
        ratio = _n(s["paired_wall_ratio"])
        rows.append(["launch", f"2-node pub/sub, {label}: `topo up` / classic wall time (paired)",
                     f"{_x(ratio)} ({_ms(t['wall_median'])} vs {_ms(c['wall_median'])})", "< 1x",
                     _verdict(ratio < 1)])
        rows.append(["launch", f"2-node pub/sub, {label}: first messages lost",
                     f"topo {t['lost']} of {t['runs']}, classic {c['lost']} of {c['runs']}", "topo 0",
                     _verdict(t["lost"] == 0 and t["runs"] > 0)])
    for c in d.get("launch", []):
        for what, key, side_key in (("all-ready", "paired_ready_median", "ready_median"),
                                    ("whole run", "paired_whole_median", "whole_median")):
            ratio = _n(c[key])
            rows.append(["launch", f"{c['label']}: {what}, topo / spawn + import zmq floor (paired)",
                         f"{_x(ratio)} ({_ms(c['topo'][side_key])} vs {_ms(c['floor'][side_key])})",
                         f"≤ {target:g}x", _verdict(ratio <= target)])
    return rows


def datapath_rows(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    target = _n(d.get("target", 0.95))
    for r in d.get("rows", []):
        if r["measure"] == "throughput":
            detail = f"{_n(r['topo_median']) / 1000:,.0f} vs {_n(r['baseline_median']) / 1000:,.0f} k msg/s"
        else:
            detail = f"{_n(r['topo_best']) * 1e6:.1f} vs {_n(r['baseline_best']) * 1e6:.1f} µs"
        measure = f"{r['transport']} {r['test']} {r['measure']} ({r['judged_on']})"
        price = r["transport"] == "tcp+curve"  # encryption against plain tcp: a price, no target
        rows.append(["data path", measure, f"{_x(r['judged'])} ({detail})",
                     "(price of CURVE)" if price else f"≥ {target:g}x", "" if price else _verdict(bool(r["met"]))])
    return rows


def stop_rows(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for s in d.get("scenarios", []):
        if s.get("experiment"):  # a reference or experiment scenario of an older run: not topo as it is
            continue
        grace = f", --grace {s['grace']:g}" if s["grace"] is not None else ""
        codes = sorted({str(c) for c in s["codes"]})
        ok = all(c == 130 for c in s["codes"]) and s["left"] == 0 and s["runs"] > 0
        rows.append(["stop", f"{s['kind']}, {s['processes']} procs{grace}: Ctrl-C to every process gone",
                     (f"{_ms(s['gone_median'])} median, worst {_ms(s['gone_worst'])}; exit {', '.join(codes)}; "
                      f"{s['left']} of {s['tracked']} processes left"),
                     "exit 130, none left", _verdict(ok)])
    return rows


def apply_rows(d: dict[str, Any]) -> list[Row]:
    """``bench/apply.py``: a one-node change to the 200-node topology against a relaunch."""
    med, relaunch = d.get("medians", {}), _n(d.get("medians", {}).get("relaunch"))
    apply_time, target = _n(d.get("apply")), _n(d.get("target"))
    rows = [["apply", "200 nodes: `topo apply`, args of one node, against a full relaunch",
             f"{_ms(apply_time)} against {_ms(relaunch)} = {_x(apply_time / relaunch)}; 1 process restarted, "
             "199 untouched", f"<= {target:g}x", _verdict(apply_time <= target * relaunch)]]
    if "link" in med:
        rows.append(["apply", "200 nodes: `topo apply`, a node added and linked in place",
                     f"{_ms(med['link'])} = {_x(_n(med['link']) / relaunch)}; 1 process started, 0 restarted",
                     "—", ""])
    return rows


def check_plan_rows(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for r in d.get("rows", []):
        if "load + plan" in r["what"] or "`topo" in r["what"] or "--help (script)" in r["what"]:
            verdict = r["verdict"]
            target = verdict[verdict.find("(") + 1:verdict.rfind(")")].replace("target ", "") if verdict else "—"
            ok = None if not verdict else not verdict.startswith("MISSED")
            result = _ms(r["seconds"]) + (f" ({r['detail']})" if r["detail"] else "")
            rows.append(["check/plan", r["what"], result, target, _verdict(ok)])
    return rows


def machine_section(results: dict[str, dict[str, Any]]) -> str:
    """One column if every benchmark ran on the same machine, else one per benchmark:
    numbers from different machines must not pass for one run."""
    names = list(results)
    same = all(results[n]["machine"].get(k) == results[names[0]]["machine"].get(k) for n in names
               for k, _ in MACHINE)
    if same:
        m = results[names[0]]["machine"]
        return table(["machine", ""], [[label, str(m.get(k, "?"))] for k, label in MACHINE])
    return table(["machine", *names], [[label, *(str(results[n]["machine"].get(k, "?")) for n in names)]
                                       for k, label in MACHINE])


def runs_section(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, d in results.items():
        m = d["machine"]
        load = f"{m.get('load average (1 min) at start', '?')} → {m.get('load average (1 min) at end', '?')}"
        rows.append([name, d["date"], f"`{d['command']}`", f"{d['seconds']} s", str(m.get("topo measured", "?")),
                     load])
    return table(["benchmark", "run of", "command", "took", "topo measured", "load average (1 min), start → end"],
                 rows)


def check_plan_section(d: dict[str, Any]) -> str:
    rows = [[r["what"], _ms(r["seconds"]), r["detail"], r["verdict"]] for r in d.get("rows", [])]
    return table(["what", "best time", "detail", "target"], rows)


def build(results: dict[str, dict[str, Any]], images: Path, page: Path, plots_note: str) -> tuple[str, str]:
    """The page's section and the table of every ratio printed to the terminal."""
    every: list[Row] = []
    for name, rows_of in (("check_plan", check_plan_rows), ("launch", launch_rows),
                          ("datapath", datapath_rows), ("stop", stop_rows), ("apply", apply_rows)):
        if name in results:
            every += rows_of(results[name])
    header = ["benchmark", "measure", "result", "target", ""]
    missing = [n for n in NAMES if n not in results]
    parts = ["Generated by `python bench/summary.py` (which `bench/run.py` calls last) from the JSON "
             "results in `docs/img/`; every number below comes from the runs listed here."
             + (f" Not run yet: {', '.join(missing)}." if missing else ""),
             machine_section(results), runs_section(results), "### Every target\n\n" + table(header, every)]
    shown = [(f, alt) for f, alt in PLOTS if (images / f).exists()]
    if shown:
        rel = Path(os.path.relpath(images, page.parent)).as_posix()
        parts.append("### Plots\n\n" + (plots_note + "\n\n" if plots_note else "")
                     + "\n\n".join(f"![{alt}]({rel}/{f})" for f, alt in shown))
    if "check_plan" in results:
        parts.append("### check, plan and start-up (`bench/check_plan.py`)\n\n" + check_plan_section(results["check_plan"]))
    return sanitize("\n\n".join(parts)), table(header, every)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", metavar="DIR", help="where the JSON results and plots are (default docs/img/)")
    parser.add_argument("--page", metavar="FILE", help="the page to update (default docs/benchmarks.md)")
    parser.add_argument("--plots-skipped", action="store_true",
                        help="say on the page that the plots were not redrawn for these results")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the page alone")
    args = parser.parse_args(argv)
    source = results_dir(args.results)
    page = Path(args.page).resolve() if args.page else PAGE
    results = {n: d for n in NAMES if (d := read_json(n, source)) is not None}
    if not results:
        print(f"summary: no results in {sanitize(str(source))}: run bench/run.py first")
        return 1
    note = ("The plots were not redrawn for these results (matplotlib is not installed: "
            "`pip install -e '.[bench]'`, then `python bench/plots.py`); they may show an earlier run."
            if args.plots_skipped else "")
    body, every = build(results, source, page, note)
    print("\nEvery target, from the latest results:\n\n" + every)
    if not args.no_write:
        write_results(page, "Benchmarks", body, (BEGIN, END))
        print(f"\nwritten to {sanitize(str(page))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
