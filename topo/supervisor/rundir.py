"""Where a run keeps its files, how it is named, and cleaning up after dead runs.

Two places: the run directory (control sockets, ipc files, the run's identity file) is
private (0700), short enough for ipc paths, and removed when the run ends; the log
directory outlives the run so ``topo logs`` can read it afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topo.errors import UsageError
from topo.plan.planner import MAX_RUN_DIR

INFO_FILE = "run.json"

OUTCOME_FILE = "outcome.json"


def runs_base() -> Path:
    """Root of every live run of this user (``TOPO_HOME`` overrides, for tests)."""
    home = os.environ.get("TOPO_HOME")
    if home:
        return Path(home) / "runs"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and len(xdg) < MAX_RUN_DIR - 40 and os.access(xdg, os.W_OK):
        return Path(xdg) / "topo"
    return Path(tempfile.gettempdir()) / f"topo-{os.getuid()}"


def logs_base() -> Path:
    home = os.environ.get("TOPO_HOME")
    if home:
        return Path(home) / "logs"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "topo" / "logs"


@dataclass(frozen=True)
class RunDir:
    topology: str
    run_id: str
    path: Path
    log_dir: Path
    #: ipc files and control sockets: ``path`` itself unless that is too long for them.
    sockets: Path

    @property
    def identity(self) -> str:
        return f"{self.topology}/{self.run_id}"

    def write_info(self, **info: Any) -> None:
        _write_info(self.path, {"topology": self.topology, "run_id": self.run_id,
                                "log_dir": str(self.log_dir), "sockets": str(self.sockets),
                                "cwd": _cwd(), **info})

    def write_outcome(self, code: int, reason: str, nodes: dict[str, str]) -> str | None:
        """How the run ended, next to its logs: ``topo down`` reports it after the fact.
        Written whole or not at all (a full disk leaves no half file); returns why not."""
        final = self.log_dir / OUTCOME_FILE
        partial = final.with_name(OUTCOME_FILE + ".part")
        try:
            partial.write_text(json.dumps({"code": code, "reason": reason, "nodes": nodes}))
            partial.replace(final)
        except OSError as err:
            partial.unlink(missing_ok=True)
            return f"{final}: {err.strerror or err}"
        return None

    def remove(self) -> None:
        if self.sockets != self.path:
            shutil.rmtree(self.sockets, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)


def overlays_info(overlays: tuple[str, ...]) -> dict[str, list[str]]:
    """What ``run.json`` says of a run's overlay files (``topo up FILE -f OVERLAY``):
    each resolved, after ``file``; nothing when there are none."""
    return {"overlays": [str(Path(f).resolve()) for f in overlays]} if overlays else {}


def _cwd() -> str | None:
    """Where the run was started from (``topo ps`` puts the runs of the project it is
    asked from first); None when that directory has been removed."""
    try:
        return os.getcwd()
    except OSError:
        return None


def private_dir(path: Path) -> Path:
    """``path`` as a directory of this user's alone: each missing level made 0700, and the
    directory itself checked before anything in it is trusted. In a shared /tmp another
    user may have made ``/tmp/topo-UID`` first, and every ``run.json`` in it would then be
    theirs to write: topo refuses such a directory (and a symlink, and one others can
    write to) rather than use it."""
    try:
        os.mkdir(path, 0o700)  # one call when its parent is there (a run's log directory)
    except FileExistsError:
        pass
    except FileNotFoundError:
        for level in [*reversed(path.parents), path]:
            if not level.exists():
                try:
                    os.mkdir(level, 0o700)
                except FileExistsError:
                    pass  # made meanwhile: checked below like any other
    check_private(path)
    return path


def check_private(path: Path) -> None:
    """Raises :class:`UsageError` unless ``path`` is a real directory this user owns and
    nobody else can write to (a 0700 it can tighten itself: it is this user's)."""
    try:
        info = os.lstat(path)
    except OSError as err:
        raise UsageError(f"{path}: cannot use it: {err.strerror or err}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path} is not a directory (a symlink?): topo keeps its runs there only in a directory "
                         "of its own; remove it, or set XDG_RUNTIME_DIR or TOPO_HOME")
    if info.st_uid != os.getuid():
        raise UsageError(f"{path} belongs to another user (uid {info.st_uid}): anyone who can write there "
                         "could steer topo; remove it (as its owner or root), or set XDG_RUNTIME_DIR or TOPO_HOME")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def create(topology: str) -> RunDir:
    """A fresh run directory; first removes those of runs whose supervisor is gone."""
    try:
        base = private_dir(runs_base())
    except OSError as err:
        raise UsageError(f"cannot create the run directory base {runs_base()}: {err.strerror or err}; "
                         "set XDG_RUNTIME_DIR (or TOPO_HOME) to a writable directory") from None
    clean_stale(base)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    path = base / f"{topology[:16]}-{run_id[-6:]}"
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    sockets = path
    if len(str(path)) > MAX_RUN_DIR:  # a deep TOPO_HOME: ipc paths would not fit
        sockets = Path(tempfile.mkdtemp(prefix="topo-", dir="/tmp"))
    log_dir = logs_base() / topology / run_id
    try:
        private_dir(log_dir)  # output may hold secrets: 0700 at every level made here
    except (OSError, UsageError) as err:
        shutil.rmtree(path, ignore_errors=True)
        if sockets != path:
            shutil.rmtree(sockets, ignore_errors=True)
        why = (err.strerror or str(err)) if isinstance(err, OSError) else str(err)
        raise UsageError(f"cannot create the log directory {log_dir}: {why}; set XDG_STATE_HOME "
                         "(or TOPO_HOME) to a writable directory") from None
    return RunDir(topology, run_id, path, log_dir, sockets)


def agent_dir(topology: str, run_id: str, host: str) -> Path:
    """Where an agent keeps its host's ipc files and control sockets (not created here).

    Named after the run and the host, not random: an agent launched again after its host
    was lost finds the directory (and the leftovers of its predecessor, which it ends)
    and its processes bind the same ipc paths as before."""
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in host)[:12]
    path = runs_base() / f"{topology[:16]}-{run_id[-6:]}@{slug}"
    if len(str(path)) > MAX_RUN_DIR:
        path = Path(tempfile.gettempdir()) / f"topo-{os.getuid()}-{run_id[-6:]}@{slug}"
    return path


def write_agent_info(path: Path, **info: Any) -> None:
    """Like a run's ``run.json`` (so stale ones are cleaned the same way), marked as an
    agent's so that ``topo ps`` does not list it as a run."""
    _write_info(path, {"agent": True, "sockets": str(path), **info})


def _write_info(path: Path, info: dict[str, Any]) -> None:
    """Whole or not at all: ``topo ps`` and other runs' cleaning read it at any moment."""
    tmp = path / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path / INFO_FILE)


def create_time(pid: int | None = None) -> float:
    """A process's start time (this one's by default) as the kernel has it: with the pid,
    its identity. Raises psutil's errors for a process that is gone."""
    if pid is None:
        own = _own_start_time()
        if own is not None:
            return own
    import psutil

    return float(psutil.Process(os.getpid() if pid is None else pid).create_time())


def _own_start_time() -> float | None:
    """This process's start time read from /proc as psutil computes it (boot time plus
    start ticks), without importing psutil: ``topo up`` writes its run's identity before
    its first process starts, and psutil costs some 20 ms of that. None where /proc is
    not Linux's."""
    try:
        with open("/proc/self/stat") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def supervisor_alive(info: dict[str, Any]) -> bool:
    """Alive means the same process that wrote the file: a pid reused later is not it."""
    import psutil

    try:
        proc = psutil.Process(int(info["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped by its parent
            return False
        return abs(proc.create_time() - float(info["started"])) < 2.0
    except (psutil.Error, KeyError, ValueError, TypeError):
        return False


def clean_stale(base: Path) -> list[Path]:
    removed = []
    for path in base.iterdir() if base.is_dir() else []:
        info = read_info(path)
        if info is None:
            # a run still being created has its info within moments; older ones are debris
            try:
                if time.time() - path.stat().st_mtime < 60:
                    continue
            except OSError:
                continue
        elif supervisor_alive(info):
            continue
        elif isinstance(info.get("sockets"), str) and _ours_to_remove(Path(info["sockets"]), base):
            shutil.rmtree(info["sockets"], ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _ours_to_remove(sockets: Path, base: Path) -> bool:
    """Whether a dead run's socket folder, read from its ``run.json``, is one topo made: in
    the base itself, or a ``topo-*`` folder of this user's directly in the temporary
    directory (a deep TOPO_HOME's ipc files). Never any other path a file names."""
    try:
        info = os.lstat(sockets)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    resolved = sockets.resolve()
    if resolved.parent == base.resolve():
        return True
    return resolved.parent == Path(tempfile.gettempdir()).resolve() and resolved.name.startswith("topo-")
