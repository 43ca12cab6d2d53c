"""An agent's footprint on its host: its private directory, what it has started recorded
there, and what an earlier agent of the same run and host left behind, ended.

An agent launched again after its host was lost finds its predecessor's directory (named
after the run and the host, :func:`topo.supervisor.rundir.agent_dir`), and possibly its
processes, still bound to the addresses the new ones are about to bind. Kept apart from
the agent's loop because it is about another life's processes, found through a file: a
file is trusted only as far as the kernel confirms it (the process is this user's and
started when recorded), so a reused pid or a planted file ends nothing of anyone else's.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from topo.supervisor import rundir


def claim(topology: str, run_id: str, host: str) -> Path:
    """The agent's directory for this run and host, private (0700), with whatever its
    predecessor recorded there ended first; made if missing."""
    path = rundir.agent_dir(topology, run_id, host)
    if path.parent == rundir.runs_base():
        rundir.private_dir(path.parent)
    if os.path.lexists(path):
        rundir.check_private(path)  # its info file names processes to end: ours only
    end_predecessor(path)
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def record(path: Path, info: dict[str, Any], children: dict[str, int]) -> None:
    """Writes who the agent is and its live processes (name -> pid), each with its start
    time: what a successor needs to end them, and to know them from a reused pid."""
    alive = {name: [pid, _create_time(pid)] for name, pid in children.items()}
    rundir.write_agent_info(path, **info, children=alive)


def end_predecessor(path: Path) -> None:
    """An earlier agent of this run and host (its host was lost, then reached again): it and
    whatever it started end before anything of ours binds the same addresses."""
    import psutil

    info = rundir.read_info(path)
    if not info or not info.get("agent"):
        return
    doomed: list[psutil.Process] = []
    children = info.get("children", {})
    for entry in [(info.get("pid"), info.get("started")), *(children.values() if isinstance(children, dict) else [])]:
        try:
            pid, started = entry
            proc = psutil.Process(int(pid))
            # only a process of this user's whose start time is the one recorded: a pid
            # reused since, or one a planted file names, is left alone
            if proc.uids().real == os.getuid() and abs(proc.create_time() - float(started)) < 2.0:
                doomed.append(proc)
        except (psutil.Error, TypeError, ValueError, OverflowError):
            pass
    for proc in doomed:
        try:  # a node process leads a group: what it started that is no longer its descendant
            if proc.pid != info.get("pid") and os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for member in [proc, *_descendants(proc)]:
            try:
                member.kill()
            except psutil.Error:
                pass
    psutil.wait_procs(doomed, timeout=5.0)


def _descendants(proc: Any) -> list[Any]:
    import psutil

    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return rundir.create_time(pid)
    except psutil.Error:
        return None  # gone already: nothing for a successor to end
