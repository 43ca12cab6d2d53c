"""Helpers shared by the benchmarks: statistics, the machine's description, tables, and
the results section of a benchmark's page in docs/.

Standard library only, and nothing of topo: benchmarks import topo where they measure it.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def write_results(page: Path, title: str, body: str) -> None:
    """Replaces the results section of ``page`` (between the markers), keeping the rest;
    creates the page with only a title and the section if it does not exist yet."""
    section = f"{BEGIN}\n{body.rstrip()}\n{END}"
    if page.exists():
        text = page.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            page.write_text(head + section + tail)
            return
        page.write_text(text.rstrip() + "\n\n" + section + "\n")
        return
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"# {title}\n\n{section}\n")


def sanitize(text: str) -> str:
    """No path of the machine that ran the benchmark in what it prints or writes."""
    places = [(str(ROOT), "<repo>"), (tempfile.gettempdir() + "/topo-", "<tmp>/topo-"), ("/tmp/topo-", "<tmp>/topo-"),
              (sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (str(Path.home()), "~")]
    for path, name in sorted(places, key=lambda p: -len(p[0])):
        if len(path) > 1:
            text = text.replace(path, name)
    return text
