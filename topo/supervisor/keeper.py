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

A Python node process is told to it too (its group, from its start to its reap). Its
death signal only asks the process's own code to end it, and that code may not get
there (a thread stuck holding what the process's end needs, a node that cleared the
signal): a node process was left running after its agent was SIGKILLed, once in about
20 full test runs, its cause not found. The keeper does not ask.

The keeper is started as a run that has processes on this host begins (before the run's
own set-up: :meth:`Keeper.start`), or else at the first start, in a session of its own
(Ctrl-C and a closed terminal do not reach it), in two parts, so that what every run
pays is small:

- what waits, for as long as the run lasts, is a POSIX shell loop (:data:`RESIDENT`,
  ``/bin/sh -c``): it keeps the set of groups from the ``+PGID``/``-PGID`` lines of its
  *groups pipe*, and at the end of file of its *life pipe* (its stdin) reads what is
  left of the groups pipe and exits if the set is empty. A ``python`` started for the
  keeper took some 12 ms of CPU per run, as much as the 16 programs of a run took to
  start, on the cores they start on; a shell takes well under 1 ms. (A fork of the
  supervisor cost as much again: copying its page tables, then its pages as it writes.)
- the groups are not read as they come: the shell sleeps on its life pipe, and reads the
  groups pipe only when told how many lines to take there (every :data:`READ_EVERY`
  lines, so that the pipe never fills) or at the end. Woken at each line, it slowed a
  short run by a tenth (16 programs started and ended: 32 wake-ups of a shell that reads
  its line a byte at a time, on the cores the programs start on; ``bench/exec.py``, the
  whole run against 16 bare starts: 1.77x, 1.66x since). A line is in the pipe the moment
  the program is started, read or not: it is what the keeper knows when its supervisor
  dies.
- only when groups are left, the supervisor having died, it replaces itself (``exec``)
  with ``python -I -S`` of this very file with the grace period and the groups as arguments
  (:func:`keep`): SIGTERM to each group, up to the grace period for their leaders (each
  watched by its pidfd), SIGKILL to the groups. It imports nothing but the standard
  library's ``os``, ``select``, ``signal``, ``sys`` and ``time``.
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

#: How many lines the supervisor writes to the groups pipe before it tells the keeper to
#: read them: a pipe holds 64 KiB, some 6,000 lines, so the writer never waits for it.
READ_EVERY = 500

#: The keeper's resident part: ``$1`` the Python to end the groups with, ``$2`` this
#: file, ``$3`` the grace period. Its stdin (the life pipe) says how many lines to read
#: from the groups pipe, its fd 1 (a shell names descriptors of one digit only, and
#: ``Popen`` places only 0, 1 and 2: the keeper writes nothing); a line that is not
#: ``+N``/``-N`` is ignored.
RESIDENT = r"""
trap '' INT HUP TERM
groups=
take() {
  case $1 in
    +[0-9]*) groups="$groups ${1#+}" ;;
    -[0-9]*) left=; for g in $groups; do [ "$g" = "${1#-}" ] || left="$left $g"; done; groups=$left ;;
  esac
}
while IFS= read -r n; do
  case $n in ''|*[!0-9]*) continue ;; esac
  while [ "$n" -gt 0 ] && IFS= read -r line <&1; do take "$line"; n=$((n - 1)); done
done
while IFS= read -r line <&1; do take "$line"; done
[ -z "$groups" ] || exec "$1" -I -S "$2" "$3" $groups
"""


class Keeper:
    """The supervisor's (or an agent's) end: starts the keeper, tells it each group."""

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None  # the groups pipe's write end; the keeper reads the other
        self._life: int | None = None  # the life pipe's write end (the keeper's stdin)
        self._unread = 0  # lines written to the groups pipe the keeper was not told to read

    @property
    def pid(self) -> int | None:
        """The keeper's process, once started (until :meth:`close`)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Starts the keeper now rather than at the first program's start: a run that will
        start programs calls it before its own set-up, so that the shell's start (some
        0.8 ms of CPU) runs beside that set-up on another core, not beside the programs'
        starts, where it competed with them for the CPU. One that cannot be started now is
        tried again at the first program's start, which then says why."""
        try:
            self._started()
        except OSError:
            pass

    def _started(self) -> int:
        if self._pipe is None:
            import subprocess  # (not in the keeper's Python part: it starts on little)

            life_read, life = os.pipe()
            groups_read, groups = os.pipe()
            try:
                self._proc = subprocess.Popen(
                    ["/bin/sh", "-c", RESIDENT, "topo-keeper", sys.executable, os.path.abspath(__file__),
                     f"{self.grace:g}"],
                    stdin=life_read, stdout=groups_read, close_fds=True, start_new_session=True)
            except OSError:
                os.close(life)
                os.close(groups)
                raise
            finally:
                os.close(life_read)
                os.close(groups_read)
            self._pipe, self._life, self._unread = groups, life, 0
            _batch(self._proc.pid)
        return self._pipe

    def add(self, pgid: int) -> None:
        """A program started, leading group ``pgid``: killed if the supervisor dies."""
        self._say(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        """The program of group ``pgid`` ended and its group was killed (call before the id
        can be reused: before its leader is reaped or at once after)."""
        if self._pipe is not None:
            self._say(f"-{pgid}\n")

    def _say(self, line: str) -> None:
        fd = self._started()
        try:
            os.write(fd, line.encode())  # (far shorter than PIPE_BUF: written whole)
            self._unread += 1
            if self._unread >= READ_EVERY and self._life is not None:
                os.write(self._life, f"{self._unread}\n".encode())
                self._unread = 0
        except OSError:
            pass  # gone (killed by someone): nothing more it can do for us

    def close(self, timeout: float = 5.0) -> None:
        """The run is over, every group ended: the keeper reads the end of file and exits
        with nothing to do.

        Its end is not awaited here (on a busy machine, the shell's turn to run can be
        most of the end of a short run): a thread reaps it, and kills it if it has not
        exited within ``timeout``."""
        proc, fds, self._proc = self._proc, (self._pipe, self._life), None
        self._pipe = self._life = None
        for fd in fds:  # the groups first: the keeper reads them to their end once its life ends
            if fd is not None:
                os.close(fd)
        if proc is not None and proc.poll() is None:
            # a thread of the lowest level: ``threading.Thread.start`` waits for the new
            # thread to run (its turn on a busy machine), a fifth of a short run's end
            import _thread  # (not in the keeper's Python part: it starts on little)

            _thread.start_new_thread(_reap, (proc, timeout))


def _batch(pid: int) -> None:
    """The keeper scheduled as a batch job (``SCHED_BATCH``): its share of the CPU is any
    process's, but its waking up (at each line it is told) does not preempt the supervisor
    or the programs starting; it is never in a hurry until its supervisor has died."""
    try:
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        pass  # not Linux: scheduled as any process


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Waits (in one system call: this thread does not take the interpreter's lock again
    until the end, as ``Popen.wait(timeout)``'s polling would) for the keeper's exit,
    then reaps it; kills it if it has not exited within ``timeout``."""
    fd = _pidfd(proc.pid)
    if fd is not None:
        try:
            if not select.select([fd], [], [], timeout)[0]:
                proc.kill()
        finally:
            os.close(fd)
        proc.wait()
        return
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


def keep(grace: float, pgids: list[str]) -> None:
    """Ends the groups ``pgids`` left by a supervisor that died (see the module's
    docstring); what is not a group id (a number over 1) is ignored."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # its supervisor is gone: nobody may stop it now
    groups: dict[int, int | None] = {}  # pgid -> the leader's pidfd
    for word in pgids:
        if word.isdigit() and int(word) > 1:
            groups[int(word)] = _pidfd(int(word))
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
    keep(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GRACE, sys.argv[2:])
