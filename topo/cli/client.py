"""``topo ps`` and ``topo down``: talking to runs from another terminal (and finding them,
for ``topo logs`` too: :mod:`topo.cli.logview`).

A run is found through its run directory (``rundir.runs_base()``): ``run.json`` names the
supervisor's pid and its control endpoint (an ipc socket in the same private directory).
Runs whose supervisor is gone are reported as dead and cleaned, never shown as running.
Two runs of one topology at once are allowed and told apart by their run id: name one as
``TOPOLOGY/RUN_ID`` where a command would otherwise be ambiguous.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topo.supervisor import rundir
from topo.errors import TopoError, UsageError


@dataclass(frozen=True)
class Run:
    topology: str
    run_id: str
    path: Path
    info: dict[str, Any]

    @property
    def identity(self) -> str:
        return f"{self.topology}/{self.run_id}"


def live_runs(selector: str | None = None) -> tuple[list[Run], list[str]]:
    """Runs whose supervisor is alive, and the identities of dead ones just cleaned."""
    base = rundir.runs_base()
    if os.path.lexists(base):
        rundir.check_private(base)  # a base someone else made could hold any run.json
    runs, dead = [], []
    for path in sorted(base.iterdir()) if base.is_dir() else []:
        info = rundir.read_info(path)
        if info is None or info.get("agent"):
            continue  # a run being created, or an agent's directory (not a run of its own)
        run = Run(str(info.get("topology", "?")), str(info.get("run_id", "?")), path, info)
        if not _selected(run, selector):
            continue
        if rundir.supervisor_alive(info):
            runs.append(run)
        else:
            dead.append(run.identity)
    if dead:
        rundir.clean_stale(base)
    return runs, dead


def _selected(run: Run, selector: str | None) -> bool:
    if not selector:
        return True
    return selector in (run.topology, run.identity, run.run_id)


def one_run(selector: str | None) -> Run:
    runs, _ = live_runs(selector)
    if not runs:
        raise UsageError(f"no running topology{f' {selector!r}' if selector else ''}")
    if len(runs) > 1:
        names = ", ".join(r.identity for r in runs)
        raise UsageError(f"{len(runs)} runs match: {names}; name one as TOPOLOGY/RUN_ID")
    return runs[0]


class RunEnded(TopoError):
    """The run's supervisor ended before it answered a request (it was stopping): for
    ``topo down`` the wish come true, for any other command an error (exit 1)."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.identity} ended before it answered")


#: Without a pidfd, how often a request in flight asks whether the supervisor still lives.
_ASK_ALIVE = 0.5


def _end_watch(run: Run) -> int | None:
    """A descriptor readable once the run's supervisor has ended (its pidfd), so a
    request can wait on the answer and on the end at once; None where pidfds are
    missing (the caller then asks now and then). Opened, then checked to be the same
    process that wrote run.json: a pid reused since would be a stranger's."""
    try:
        fd: int = os.pidfd_open(int(run.info["pid"]))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError, KeyError, ValueError, TypeError):
        return None
    if not rundir.supervisor_alive(run.info):
        os.close(fd)
        raise RunEnded(run)
    return fd


def request(run: Run, payload: dict[str, Any], timeout: float = 3.0) -> dict[str, Any]:
    """One request to a run's supervisor, answered within ``timeout`` seconds; a
    supervisor that ends without answering (it was stopping) is said at once."""
    import zmq

    ctx: zmq.Context[Any] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    ended = _end_watch(run)
    try:
        sock.connect(str(run.info["control"]))
        sock.send(json.dumps(payload).encode())
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if ended is not None:
            poller.register(ended, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TopoError(f"run {run.identity} did not answer within {timeout:g}s")
            ready = dict(poller.poll(int(min(left, _ASK_ALIVE if ended is None else left) * 1000) + 1))
            if sock in ready:
                break
            # a supervisor that ends drops what it had not read: waiting on would be a hang
            if ended in ready or (ended is None and not rundir.supervisor_alive(run.info)):
                raise RunEnded(run)
        reply = json.loads(sock.recv())
    finally:
        sock.close()
        if ended is not None:
            os.close(ended)
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = str(reply.get("error") if isinstance(reply, dict) else reply)
        if isinstance(reply, dict) and reply.get("usage"):  # it named what the run does not have
            raise UsageError(error)
        raise TopoError(f"run {run.identity}: {error}")
    return reply


def ps(selector: str | None) -> list[dict[str, Any]]:
    """One entry per live run, with its nodes' states and their processes' CPU and memory."""
    import psutil

    runs, dead = live_runs(selector)
    here = _cwd()
    runs.sort(key=lambda run: not of_project(run.info, here))  # stable: by name within each
    out: list[dict[str, Any]] = []
    for run in runs:
        mine = of_project(run.info, here)
        if _starting(run):
            out.append({"run": run.identity, "file": run.info.get("file"), "pid": run.info.get("pid"),
                        "current_project": mine, "starting": True, "nodes": []})
            continue
        try:
            reply = request(run, {"cmd": "ps"})
        except TopoError as err:
            out.append({"run": run.identity, "file": run.info.get("file"), "current_project": mine,
                        "error": err.message, "nodes": []})
            continue
        procs: dict[int, psutil.Process] = {}
        for node in reply["nodes"]:
            pid = node.get("pid")
            if pid and pid not in procs and "cpu" not in node:  # not measured by its agent
                try:
                    procs[pid] = psutil.Process(pid)
                    procs[pid].cpu_percent(None)
                except psutil.Error:
                    pass
        time.sleep(0.1)  # cpu_percent needs an interval to measure over: a rate, not a wait
        for node in reply["nodes"]:
            node["uptime"] = time.time() - node["since"] if node.get("since") else None
            if "cpu" in node:
                continue
            proc = procs.get(node.get("pid") or -1)
            try:
                node["cpu"] = proc.cpu_percent(None) if proc else None
                node["rss"] = proc.memory_info().rss if proc else None
            except psutil.Error:
                node["cpu"] = node["rss"] = None
        out.append({"run": run.identity, "file": run.info.get("file"), "pid": reply["pid"],
                    "current_project": mine, "nodes": reply["nodes"]})
    for identity in dead:
        out.append({"run": identity, "dead": True, "nodes": []})
    return out


def of_project(info: dict[str, Any], here: Path | None) -> bool:
    """Whether a run belongs to the project ``topo ps`` is asked from (``here``, the
    current directory): its topology file is in it or below it, or it was started from
    there or below. Runs are the user's, not a project's: others are listed after."""
    if here is None:
        return True  # no current directory: no project to tell apart
    for recorded in (info.get("file"), info.get("cwd")):
        if isinstance(recorded, str) and recorded:
            path = Path(recorded)
            if path.is_absolute() and (path == here or here in path.parents):
                return True
    return False


def _cwd() -> Path | None:
    try:
        return Path(os.getcwd()).resolve()
    except OSError:
        return None


def down(selector: str | None, timeout: float = 60.0) -> dict[str, Any]:
    """Asks the run to stop as Ctrl-C would, and waits until its supervisor has exited."""
    runs, _ = live_runs(selector)
    if not runs:  # nothing to stop is not an error, as with `docker compose down`
        return {"run": selector or "-", "code": None, "reason": "no running topology"}
    run = one_run(selector)
    if _starting(run):
        _signal_down(run)
    else:
        try:
            request(run, {"cmd": "down"})
        except RunEnded:
            pass  # it was stopping already, and has: its outcome is read below
    if not _wait_gone(int(run.info["pid"]), timeout):
        raise TopoError(f"run {run.identity} did not end within {timeout:g}s")
    outcome = Path(str(run.info["log_dir"])) / rundir.OUTCOME_FILE
    try:
        result = json.loads(outcome.read_text())
    except (OSError, ValueError):
        result = {"code": None, "reason": "ended without saying how"}
    return {"run": run.identity, **result}


def _starting(run: Run) -> bool:
    """A run whose supervisor is still starting its processes: its control socket is not
    bound yet (``topo up`` writes ``run.json`` before its first process starts, and again
    with the control endpoint once it listens). Only a run that says so: SIGUSR1 would
    end a process that does not handle it (a test harness's supervisor runs in pytest)."""
    return bool(run.info.get("starting"))


def _signal_down(run: Run) -> None:
    """``topo down`` of a starting run: SIGUSR1, which ``topo up`` takes as a ``topo down``
    from its first step (:class:`topo.cli.launch.StopSignals`). If the control socket got
    bound meanwhile, the signal still reaches the same handler."""
    try:
        os.kill(int(run.info["pid"]), signal.SIGUSR1)
    except ProcessLookupError:
        pass  # ended meanwhile: what it wrote in its outcome is the answer


def _wait_gone(pid: int, timeout: float) -> bool:
    """Until the supervisor has exited. It is not our child, but a pidfd (Linux) becomes
    readable when any process exits, zombie or not: a real event, with a deadline."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def format_ps(entries: list[dict[str, Any]]) -> str:
    """A table per run, like ``docker compose ps``: one row per node instance."""
    from topo.supervisor.output import format_duration

    if not entries:
        return "no running topology"
    blocks = []
    for entry in entries:
        if entry.get("dead"):
            blocks.append(f"{entry['run']}: dead (its supervisor is gone; cleaned up)")
            continue
        head = f"{entry['run']}  ({entry.get('file')}, supervisor pid {entry.get('pid', '?')})"
        if entry.get("current_project") is False:
            head += "  [other project]"
        if entry.get("starting"):
            blocks.append(f"{head}\n  starting: its processes are being started")
            continue
        if entry.get("error"):
            blocks.append(f"{head}\n  {entry['error']}")
            continue
        hosts = len({n.get("host") for n in entry["nodes"]}) > 1
        status = any(n.get("status") for n in entry["nodes"])  # exec nodes' sd_notify STATUS=
        rows = [("NODE", "PROCESS", *(("HOST",) if hosts else ()), "PID", "STATE", "RESTARTS", "UPTIME", "CPU%", "MEM",
                 *(("STATUS",) if status else ()))]
        for n in entry["nodes"]:
            rows.append((
                n["name"], n["process"], *((str(n.get("host")),) if hosts else ()), str(n.get("pid") or "-"),
                _state(n), str(n.get("restarts", 0)),
                format_duration(n["uptime"]) if n.get("uptime") is not None else "-",
                f"{n['cpu']:.0f}" if n.get("cpu") is not None else "-",
                f"{n['rss'] / 2**20:.0f}M" if n.get("rss") is not None else "-",
                *((str(n.get("status") or ""),) if status else ()),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        blocks.append("\n".join([head, *lines]))
    return "\n\n".join(blocks)


def _state(node: dict[str, Any]) -> str:
    """A node's state; for one that has ended while the run goes on, how and when, as
    ``docker ps`` says it: ``exited (0) 12s ago``."""
    from topo.supervisor.output import format_duration

    state = str(node["state"])
    if node.get("exit") is not None:
        state += f" ({node['exit']})"
    if isinstance(node.get("ended"), (int, float)):
        state += f" {format_duration(time.time() - node['ended'])} ago"
    return state
