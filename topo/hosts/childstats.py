"""CPU and memory of an agent's processes, for ``topo ps`` of a host it runs.

Each child keeps its ``psutil.Process`` (``child.stats``) from one call to the next: CPU
percent is measured between two calls, so a fresh object would always say 0.
"""

from __future__ import annotations

from typing import Any, Iterable


def measure(children: Iterable[Any]) -> dict[str, Any]:
    """``{name: {pid, cpu, rss}}`` of each child with a running process (a child gone
    meanwhile is left out)."""
    import psutil

    out: dict[str, Any] = {}
    for child in children:
        if child.proc is None or not child.proc.pid:
            continue
        try:
            if child.stats is None or child.stats.pid != child.proc.pid:
                child.stats = psutil.Process(child.proc.pid)
                child.stats.cpu_percent(None)
            out[child.name] = {"pid": child.proc.pid, "cpu": child.stats.cpu_percent(None),
                               "rss": child.stats.memory_info().rss}
        except psutil.Error:
            pass
    return out
