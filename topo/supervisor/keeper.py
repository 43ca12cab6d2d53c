"""What an exec node leaves behind is ended, even when ``topo up`` is SIGKILLed.

A Python node process keeps that promise itself (:mod:`topo.process.family`): it leads a
process group, gets SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``), and kills
its group on the way out. A program cannot be asked to: its parent-death signal would
need code between ``fork`` and ``exec`` (a ``preexec_fn`` takes the slow ``fork`` path,
some 5x the cost of the program's own start, and is unsafe beside threads), and the
signal does not pass to what the program forks (a shell's ``sleep 1000 &``). So the
program is started the fast way (``vfork``) as the leader of a process group of its
own, and one small process per run, the keeper, stands in for its runtime: it is told
each program's group as it starts and ends, holds the read end of a pipe whose only
write end the supervisor holds, and when that pipe says end of file (the supervisor
exited, however: a SIGKILL included) it sends SIGTERM to every group still registered
(what ``PR_SET_PDEATHSIG`` would have sent the program), waits up to the grace period
for their leaders, and SIGKILLs the groups. An orderly end tells it every group ended
first: it then exits doing nothing.

The keeper is started at the first program's start, in a session of its own (Ctrl-C and
a closed terminal do not reach it), as ``python -I -S`` of this very file: it imports
nothing but the standard library's ``os``, ``select``, ``signal``, ``sys`` and ``time``.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

#: How long the keeper waits for the programs' leaders after SIGTERM when told nothing.
DEFAULT_GRACE = 5.0


class Keeper:
    """The supervisor's (or an agent's) end: starts the keeper, tells it each group."""

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            import subprocess  # (not in the keeper itself: it starts on little)

            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), f"{self.grace:g}"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True, start_new_session=True,
            )
        return self._proc

    def add(self, pgid: int) -> None:
        """A program started, leading group ``pgid``: killed if the supervisor dies."""
        self._say(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        """The program of group ``pgid`` ended and its group was killed (call before the id
        can be reused: before its leader is reaped or at once after)."""
        if self._proc is not None:
            self._say(f"-{pgid}\n")

    def _say(self, line: str) -> None:
        proc = self._started()
        try:
            assert proc.stdin is not None
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except (OSError, ValueError):
            pass  # gone (killed by someone): nothing more it can do for us

    def close(self, timeout: float = 5.0) -> None:
        """The run is over, every group ended: the keeper exits (and is reaped).

        Its end is not awaited here: it reads the end of file and exits with nothing to
        do, but a short run would wait for it to finish its own start (an interpreter's,
        tens of milliseconds, most of the end of a run of programs that exit at once).
        A thread reaps it, and kills it if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            import threading  # (not in the keeper itself: it starts on little)

            threading.Thread(target=_reap, args=(proc, timeout), name="topo-keeper-reaper", daemon=True).start()


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except Exception:  # noqa: BLE001 - a keeper that hangs is killed, whatever went wrong
        proc.kill()
        proc.wait()


# -- the keeper itself ------------------------------------------------------------------


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None


def keep(grace: float) -> None:
    """Reads ``+PGID``/``-PGID`` lines from stdin until end of file, then ends the groups
    left (see the module's docstring)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the end of its pipe ends it
    groups: dict[int, int | None] = {}  # pgid -> the leader's pidfd
    buffer = b""
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        *lines, buffer = (buffer + chunk).split(b"\n")
        for line in lines:
            try:
                pgid = int(line[1:])
            except ValueError:
                continue
            if line[:1] == b"+" and pgid > 1:
                groups[pgid] = _pidfd(pgid)
            elif line[:1] == b"-":
                fd = groups.pop(pgid, None)
                if fd is not None:
                    os.close(fd)
    if not groups:
        return
    for pgid in groups:
        _killpg(pgid, signal.SIGTERM)
    poller = select.poll()
    waiting = {fd: pgid for pgid, fd in groups.items() if fd is not None}
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + grace
    while waiting and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            poller.unregister(fd)
            _killpg(waiting.pop(fd), signal.SIGKILL)  # its leader is gone: the rest now
    for pgid in groups:
        _killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    keep(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GRACE)
