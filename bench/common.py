"""Helpers shared by the benchmarks: statistics, the machine's description, tables, the
results section of a benchmark's page in docs/, and its machine-readable results.

Standard library only, and nothing of topo: benchmarks import topo where they measure it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where each benchmark leaves its results as JSON (``NAME.json``) and bench/plots.py its
#: plots: next to the pages that show them, small enough to commit with every run.
RESULTS = ROOT / "docs" / "img"
BEGIN = "<!-- results:begin (written by the benchmark; edits between these markers are lost) -->"
END = "<!-- results:end -->"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p90(xs: Sequence[float]) -> float:
    """The 90th percentile, interpolated between the two nearest samples."""
    if not xs:
        return float("nan")
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


def quartiles(xs: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles: the middle half of a set of trials, their noise."""
    if not xs:
        return float("nan"), float("nan")
    if len(xs) == 1:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def cpu_now() -> float:
    """CPU seconds used so far by this process (all threads) and by its reaped descendants:
    the work a run costs, which machine load does not inflate as it does wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class _Watchdog:
    """One thread for every trial of a benchmark: stops the supervisor of the trial that
    runs past its deadline. A thread started per trial would be timed with topo's side
    (``Thread.start`` waits for the new thread's first turn), and the baseline has none."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.wake = threading.Event()  # (never set: its waits are the thread's sleep)
        self.current: tuple[Any, float] | None = None
        threading.Thread(target=self._run, name="bench-watchdog", daemon=True).start()

    def _run(self) -> None:
        import time

        while True:
            with self.lock:
                current = self.current
            if current is None:
                self.wake.wait(1.0)  # (a trial's deadline is a minute away: a second late is fine)
            elif time.monotonic() >= current[1]:
                current[0].request_stop(1, "benchmark timeout")
                with self.lock:
                    if self.current is current:
                        self.current = None
            else:
                self.wake.wait(min(1.0, current[1] - time.monotonic()))


_watchdog: _Watchdog | None = None


def run_bounded(sup: Any, timeout: float) -> Any:
    """``sup.run()`` of an in-process supervisor, stopped if it runs past ``timeout``
    seconds (a benchmark trial that hangs ends as a failed run, not a hung benchmark)."""
    import time

    global _watchdog
    if _watchdog is None:
        _watchdog = _Watchdog()
    with _watchdog.lock:
        _watchdog.current = (sup, time.monotonic() + timeout)  # (seen within a second: not woken)
    try:
        return sup.run()
    finally:
        with _watchdog.lock:
            _watchdog.current = None


def interleave(i: int, topo_trial: Callable[[], object], baseline_trial: Callable[[], object]) -> None:
    """One trial of each, topo first in even rounds and the baseline first in odd ones, so
    a drift of the machine's load hits both sides alike."""
    for trial in (topo_trial, baseline_trial) if i % 2 == 0 else (baseline_trial, topo_trial):
        trial()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table, columns padded so it also reads well in a terminal."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in cells[1:])])


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def machine() -> dict[str, str]:
    """What the numbers depend on: cores, CPU, kernel, Python, pyzmq, libzmq, load."""
    import zmq

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(usable)
    return {
        "nproc": nproc,
        "CPU": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }


def topo_revision() -> str:
    """The commit of the tree measured, and whether topo/ had changes not committed yet:
    a result is only worth comparing with another if both say what they measured."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in topo/" if git("status", "--porcelain", "--", "topo") else "")


def write_results(page: Path, title: str, body: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Replaces the section of ``page`` between ``markers`` (by default the results
    section), keeping the rest; appends the section if the page has none, and creates the
    page with only a title and the section if it does not exist yet."""
    begin, end = markers
    section = f"{begin}\n{body.rstrip()}\n{end}"
    if page.exists():
        text = page.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            page.write_text(head + section + tail)
            return
        page.write_text(text.rstrip() + "\n\n" + section + "\n")
        return
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"# {title}\n\n{section}\n")


def progress_printer() -> Callable[[str], None]:
    """Prints a benchmark's progress to stderr, each line with the seconds since this call."""
    begun = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - begun:6.1f}s] {text}", file=sys.stderr, flush=True)

    return progress


def sanitize(text: str) -> str:
    """No path of the machine that ran the benchmark in what it prints or writes."""
    places = [(str(ROOT), "<repo>"), (tempfile.gettempdir() + "/topo-", "<tmp>/topo-"), ("/tmp/topo-", "<tmp>/topo-"),
              (sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (str(Path.home()), "~")]
    for path, name in sorted(places, key=lambda p: -len(p[0])):
        if len(path) > 1:
            text = text.replace(path, name)
    return text


def _clean(value: Any) -> Any:
    """JSON-ready and small: floats to 6 significant digits (NaN becomes null, which JSON
    has no other way to say), strings without the machine's paths, tuples as lists."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(f"{value:.6g}")
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(name: str, command: str, seconds: float, info: dict[str, str], data: dict[str, Any],
               directory: Path | None = None) -> Path:
    """Writes ``NAME.json`` (the run's date, command, duration, machine and ``data``) for
    bench/plots.py and bench/summary.py, which draw and summarise without re-running
    anything. Returns the file written."""
    out = (directory or RESULTS) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"), "command": command,
              "seconds": round(seconds), "machine": info, **data}
    out.write_text(_dump(_clean(record)) + "\n")
    return out


def _dump(value: Any, depth: int = 0) -> str:
    """JSON with one key per line but every list of plain values on one line: readable,
    and a new run's diff shows which numbers moved rather than hundreds of lines."""
    pad = " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(k)}: {_dump(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [pad + _dump(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    return json.dumps(value, ensure_ascii=False)


def read_json(name: str, directory: Path | None = None) -> dict[str, Any] | None:
    """A benchmark's last results, or None if it has not written any yet."""
    path = (directory or RESULTS) / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def results_dir(arg: str | None) -> Path:
    """The results directory a benchmark was told to use (``--results DIR``), or the
    default next to the docs: a trial run can then write elsewhere and leave docs alone."""
    return Path(arg).resolve() if arg else RESULTS
