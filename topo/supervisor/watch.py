"""How a started node process is seen to end, and what ends with it.

multiprocessing watches a child through its sentinel: a pipe whose write end the child
holds until it exits. Every process the child forks holds it too (``os.fork``, a
``fork``-context multiprocessing child; an exec'd program too unless the fd is
close-on-exec), so a node process that dies while such a child lives is never seen to
die, and ``join(timeout)`` waits its whole timeout. A pidfd (Linux 5.3+) is readable
once the process itself has exited, whatever its children hold: :class:`Started` offers
it as the ``sentinel`` to poll, and falls back to multiprocessing's where pidfds are
missing (then :attr:`Started.exact` is False and the owner also asks
:meth:`Started.has_exited` now and then).

When a process is seen to end, and before it is reaped (while its pid, hence its group's
id, cannot be reused), what is left of its process group is killed
(:mod:`topo.process.family`: each node process leads a group of its own). So what a node
started ends with its process however that process ended, kill -9 included.
"""

from __future__ import annotations

import os
import select
import signal
import time
import weakref
from typing import Any

from topo.process import family

#: How often a process without a pidfd is asked whether it has exited (seconds).
POLL_EXITS = 0.5


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None  # not Linux 5.3+ (or already reaped: has_exited says so)


class Started:
    """A started node process: multiprocessing's Process, watched by its pidfd. Offers
    what its owners used of the Process (``pid``, ``sentinel``, ``exitcode``,
    ``is_alive``, ``join``)."""

    def __init__(self, proc: Any, output: Any = None) -> None:
        self.proc = proc
        self.pid: int = proc.pid
        self.name: str = proc.name
        #: The reading side of its output pipes, when it has them (topo.supervisor.pipes).
        self.topo_output: Any = output
        self._fd = _pidfd(proc.pid)
        if self._fd is not None:
            self._closer = weakref.finalize(self, os.close, self._fd)

    @property
    def exact(self) -> bool:
        """Its end is told by :attr:`sentinel` whatever its children hold."""
        return self._fd is not None

    @property
    def sentinel(self) -> int:
        """Readable once the process has exited."""
        return self._fd if self._fd is not None else self.proc.sentinel

    @property
    def exitcode(self) -> int | None:
        return self.proc.exitcode  # type: ignore[no-any-return]

    def is_alive(self) -> bool:
        return bool(self.proc.is_alive())

    def has_exited(self) -> bool:
        """Without waiting and without reaping it."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True  # reaped already (multiprocessing reaps its children at each start)

    def join(self, timeout: float) -> None:
        """Waits at most ``timeout`` for the process to exit; once it has, its group is
        killed and it is reaped (``exitcode`` then tells how it ended)."""
        deadline = time.monotonic() + timeout
        while not self.has_exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            poll = select.poll()
            poll.register(self.sentinel, select.POLLIN)
            # pidfd: readable at the exit. The fallback sentinel may never be readable
            # (a child holds it): it is asked again every POLL_EXITS seconds
            poll.poll(int(min(left, POLL_EXITS if not self.exact else left) * 1000) + 1)
        self.reap()

    def reap(self) -> bool:
        """If it has exited: what is left of its process group is killed, and it is
        reaped. True if it has ended."""
        if not self.has_exited():
            return False
        end_group(self.pid)
        self.proc.is_alive()  # reaps it (waitpid, no wait: it has exited)
        return True

    def close(self) -> None:
        """Its pidfd closed; call once it is out of every poller."""
        if self._fd is not None:
            self._closer()


def end_group(pid: int) -> None:
    """SIGKILL to process group ``pid``, if ``pid`` leads one (a node process past its
    first steps). Safe only while ``pid`` is not reaped yet: call it before."""
    try:
        if os.getpgid(pid) != pid:
            return  # died before it led a group of its own: nothing to end by group
    except ProcessLookupError:
        # reaped already (by multiprocessing): its id cannot have been reused while
        # members of its group live, and without members there is nothing to end
        if not family.group_members(pid):
            return
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
