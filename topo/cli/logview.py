"""``topo logs``: which run, which node, which lines.

Reads the log files a run leaves (their format: :mod:`topo.supervisor.output`), of the
run that is going on or else of a topology's last one; picks the run as ``topo ps`` and
``topo down`` pick theirs when none is named (:func:`resolve`); knows a run's nodes
(:func:`node_names`), so a node that has not printed yet is told apart from a name the
run has no node of; and selects lines: the last N (``--tail``), those since a time
(``--since``, :func:`since_stamp`), followed as they come (``-f``, :func:`records`).
"""

from __future__ import annotations

import datetime
import difflib
import errno
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from topo.cli.client import Run, live_runs, request
from topo.errors import TopoError, UsageError
from topo.supervisor import rundir
# the reading half of the log format: which files, and reading one as it grows
from topo.supervisor.output import SYSTEM_NAME, LogRecord, Tail, log_paths

#: What a selector may be: a topology name, optionally ``/`` and a run id or its end. It
#: becomes part of a path: ``..`` or ``/`` would read logs outside the log directory.
_SELECTOR = re.compile(r"^[a-z0-9_-]{1,200}(/[0-9a-f-]{1,22})?$")
_NODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,199}(\.[0-9]{1,6})?$")
_REPLICA = re.compile(r"^(.+)\.[0-9]+$")


@dataclass(frozen=True)
class Source:
    """The logs of one run."""

    identity: str  # TOPOLOGY/RUN_ID
    directory: Path
    #: The live run (None: finished), to ask its nodes and whether it still runs.
    run: Run | None = None

    def running(self) -> bool:
        return self.run is not None and rundir.supervisor_alive(self.run.info)


def resolve(first: str | None, second: str | None) -> tuple[Source, str | None]:
    """The run and node ``topo logs [TOPOLOGY] [NODE]`` names.

    Without TOPOLOGY, the only run (:func:`only_run`). A lone argument that names no
    topology but a node of the only run is that node (``topo logs worker``)."""
    if first is None:
        return only_run(), None
    if second is not None or _names_a_topology(first) or not _NODE.match(first):
        return named_run(first), second
    try:
        only = only_run()
    except UsageError:
        return named_run(first), second  # (whose error says there is no such topology)
    instances = node_names(only)
    nodes = _names(instances if instances is not None else logged(only.directory)) - {SYSTEM_NAME}
    if first in nodes:
        return only, first
    close = difflib.get_close_matches(first, sorted(nodes | _topologies()), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"no topology {first!r} has logs, and the only run, {only.identity}, has no node "
                     f"{first!r}{hint}")


def _names_a_topology(selector: str) -> bool:
    if not _SELECTOR.match(selector):
        return False
    if live_runs(selector)[0]:
        return True
    return (rundir.logs_base() / selector.partition("/")[0]).is_dir()


def named_run(selector: str) -> Source:
    """The live run of ``selector`` (TOPOLOGY or TOPOLOGY/RUN_ID), or else its newest
    finished one."""
    if not _SELECTOR.match(selector):
        raise UsageError(f"{selector!r} is not a run: give TOPOLOGY or TOPOLOGY/RUN_ID")
    runs, _ = live_runs(selector)
    if len(runs) > 1:
        raise UsageError(f"{len(runs)} runs match: {', '.join(r.identity for r in runs)}; "
                         "name one as TOPOLOGY/RUN_ID")
    if runs:
        return _live(runs[0])
    topology, _, run_id = selector.partition("/")
    candidates = _finished(topology)
    if run_id:
        candidates = [p for p in candidates if p.name == run_id or p.name.endswith(run_id)]
    if not candidates:
        close = difflib.get_close_matches(topology, sorted(_topologies()), n=1) if not run_id else []
        raise UsageError(f"no logs of topology {selector!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return Source(f"{topology}/{candidates[-1].name}", candidates[-1])


def only_run() -> Source:
    """The run ``topo logs`` shows when none is named: the only one going on, or, when
    none is, the last run of the only topology that has logs. Several: an error that
    lists them."""
    runs, _ = live_runs(None)
    if len(runs) == 1:
        return _live(runs[0])
    if runs:
        raise UsageError(f"{len(runs)} runs are going on: {', '.join(r.identity for r in runs)}; "
                         "name one: topo logs TOPOLOGY or TOPOLOGY/RUN_ID")
    last = {}
    for topology in sorted(_topologies()):
        runs_of = _finished(topology)
        if runs_of and _SELECTOR.match(topology):
            last[topology] = runs_of[-1]
    if not last:
        raise UsageError("no run has logs yet: `topo up FILE` starts one")
    if len(last) > 1:
        listed = ", ".join(f"{t} (last run {d.name})" for t, d in last.items())
        raise UsageError(f"logs of {len(last)} topologies: {listed}; name one: topo logs TOPOLOGY")
    [(topology, directory)] = last.items()
    return Source(f"{topology}/{directory.name}", directory)


def _topologies() -> set[str]:
    """Every topology with logs (a live run has them from its start)."""
    base = rundir.logs_base()
    return {p.name for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()


def _live(run: Run) -> Source:
    return Source(run.identity, Path(str(run.info["log_dir"])), run)


def _finished(topology: str) -> list[Path]:
    """A topology's run log directories, oldest first (a run id starts with its time)."""
    base = rundir.logs_base() / topology
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def node_names(source: Source) -> list[str] | None:
    """The node instances of the run (``worker.0``), in the file's order; None when the
    run cannot tell (starting, not answering, or ended without an ``outcome.json``)."""
    if source.run is not None and not source.run.info.get("starting"):
        try:
            return [str(n["name"]) for n in request(source.run, {"cmd": "ps"})["nodes"]]
        except (TopoError, KeyError, TypeError):
            pass
    try:
        outcome = json.loads((source.directory / rundir.OUTCOME_FILE).read_text())
        return [str(name) for name in outcome["nodes"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _names(instances: list[str]) -> set[str]:
    """What NODE may be: an instance, a replicated node's name (``worker``), or ``topo``."""
    return {SYSTEM_NAME, *instances, *(m[1] for m in map(_REPLICA.match, instances) if m)}


def logged(directory: Path, node: str | None = None) -> list[str]:
    """The instances (of ``node``, or all) that have a log file, ``topo`` among them."""
    return [name for name, path in log_paths(directory, node) if path.exists()]


def check_node(source: Source, node: str | None) -> str | None:
    """Raises when ``node`` is no node of the run; returns a note when it (or, with no
    node, the whole run) has no log yet: ``worker has no output yet``."""
    if node is not None and not _NODE.match(node):
        raise UsageError(f"{node!r} is not a node name (NAME or NAME.REPLICA)")
    if logged(source.directory, node):
        return None
    instances = node_names(source)
    if node is not None and instances is None and source.run is None:
        # a finished run that cannot tell its nodes: only its files can
        known = sorted(_names(logged(source.directory)) - {SYSTEM_NAME})
        raise UsageError(f"no log of node {node!r} in {source.identity}; there are: {', '.join(known)}")
    if node is not None and instances is not None and node not in _names(instances):
        close = difflib.get_close_matches(node, sorted(_names(instances) - {SYSTEM_NAME}), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"no node {node!r} in {source.identity}; {hint}its nodes: {', '.join(instances)}")
    what = "the run" if node is None else node
    return f"{what} has no output yet" if source.running() else f"{what} printed nothing"


_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[dhms])+")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([dhms])")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def since_stamp(text: str, now: float | None = None) -> str:
    """The log stamp from which ``--since TEXT`` shows lines: TEXT is a duration back from
    now (``90s``, ``10m``, ``1h30m``, ``2d``) or a time (``2026-12-03T12:00:00``, local
    unless it says ``Z`` or ``+01:00``; ``2026-12-03`` is its midnight). Raises
    ValueError with what is wrong."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        seconds = sum(float(n) * _UNIT[unit] for n, unit in _PART.findall(text))
        moment = (time.time() if now is None else now) - seconds
        if moment <= 0:
            return ""  # before any log was written: every line
        return _stamp(datetime.datetime.fromtimestamp(moment, datetime.timezone.utc))
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text  # (Python 3.10's fromisoformat)
    try:
        return _stamp(datetime.datetime.fromisoformat(iso).astimezone(datetime.timezone.utc))  # naive: local
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is neither a duration (90s, 10m, 1h30m, 2d) nor a time "
                         "(2026-12-03T12:00:00, 2026-12-03 12:00, 2026-12-03)") from None


def _stamp(when: datetime.datetime) -> str:
    """A UTC time as the log files write it (fixed width: stamps compare as strings)."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def records(
    directory: Path,
    node: str | None,
    *,
    tail: int | None = None,
    since: str | None = None,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: True,
    reader_gone: Callable[[], bool] = lambda: False,
    interval: float = 0.1,
) -> Iterator[LogRecord]:
    """The lines of one node (or of all, merged in the order they were written): those
    stamped ``since`` or later, the last ``tail`` of them, then, with ``follow``, new ones
    as they are written until ``stop()`` (a last read after it drains what came meanwhile).

    ``--tail`` reads only the ends of the files, so it is quick on a log of any size.
    Following polls every ``interval`` seconds, as tailing a file does, picking up files
    that appear (a replica, a node's first line); and ends with BrokenPipeError once
    ``reader_gone()`` (``topo logs -f | head`` on a quiet run, where no write would tell).
    """
    tails: dict[str, Tail] = {}

    def poll(last: int | None = None) -> list[LogRecord]:
        for name, path in log_paths(directory, node):
            if name not in tails:
                tails[name] = Tail(name, path)
                if last is not None:
                    tails[name].offset = _start_of_last_lines(path, last)
        read = [rec for t in tails.values() for rec in t.read()]
        read.sort(key=lambda r: r.stamp)  # stable: one file keeps its order
        return [r for r in read if r.stamp >= since] if since else read

    stopping = stop() if follow else True
    first = poll(tail)
    yield from first[len(first) - tail:] if tail is not None and tail < len(first) else first
    while not stopping:
        time.sleep(interval)
        if reader_gone():
            raise BrokenPipeError(errno.EPIPE, "the reader of the output has gone")
        stopping = stop()
        yield from poll()


def _start_of_last_lines(path: Path, count: int, block: int = 1 << 16) -> int:
    """Where the last ``count`` complete lines of a file start (0: it has no more)."""
    try:
        with open(path, "rb") as f:
            pos = f.seek(0, 2)
            newlines = 0  # the one that ends the last complete line is the first
            while pos > 0:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step)
                end = len(chunk)
                while (end := chunk.rfind(b"\n", 0, end)) >= 0:
                    newlines += 1
                    if newlines > count:
                        return pos + end + 1
    except OSError:
        pass
    return 0
