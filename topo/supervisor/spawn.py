"""Starting and killing the OS processes of a run.

multiprocessing's ``spawn`` runs the parent's ``__main__`` again in every child: for the
``topo`` console script that is the whole CLI and what it imports, for pytest all of
pytest. A node process needs none of it (node code is found by "module:callable"), so
:func:`start` hides ``__main__`` from multiprocessing while it prepares the child.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import types
from contextlib import contextmanager
from collections.abc import Sequence
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Iterator

from topo.process.boot import Boot, PassFds
from topo.process.entry import main
from topo.supervisor.watch import Started

if TYPE_CHECKING:
    import psutil

_spawn = multiprocessing.get_context("spawn")
_main_lock = threading.Lock()
#: Blocked in a child from its first instruction until its prelude handles them.
STARTUP_BLOCKED = frozenset({signal.SIGINT, signal.SIGHUP})


@contextmanager
def bare_main() -> Iterator[None]:
    """``__main__`` hidden from multiprocessing while it prepares a ``spawn`` child."""
    with _main_lock:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


def start(boot: Boot, pipes: bool = True) -> Started:
    """A started ``multiprocessing`` process running :func:`topo.process.runtime.main` (named
    through :func:`topo.process.entry.main`, so that neither this module nor its caller needs the
    runtime, and zmq, imported to start one), watched by its pidfd
    (:class:`topo.supervisor.watch.Started`). ``pipes``: its output goes to pipes read here,
    the reader's side as its ``topo_output`` (:mod:`topo.supervisor.pipes`)."""
    from topo.supervisor.pipes import open_pipes

    output, ends = open_pipes(next(iter(boot.share.instances))) if pipes else (None, ())
    args = (boot, PassFds(ends)) if pipes else (boot,)
    proc = _spawn.Process(target=main, args=args, name=f"topo:{boot.share.name}", daemon=False)
    # multiprocessing starts its resource tracker at the first spawn, and starting it
    # *unblocks* SIGINT and SIGTERM in the calling thread, whatever was blocked before:
    # inside the block below, the first child would start with SIGINT deliverable. So the
    # tracker is made sure of first; within proc.start() it is then only looked at.
    resource_tracker.ensure_running()
    # SIGINT and SIGHUP stay blocked from here until the child's prelude has its own
    # handlers (the child inherits the mask across exec): a Ctrl-C or a closed terminal
    # during start-up must not end a child (a KeyboardInterrupt traceback, or a silent
    # death); the supervisor decides. Blocked, not ignored, in this process: a signal
    # that comes meanwhile is delivered here when the mask is restored, not lost.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STARTUP_BLOCKED)
    try:
        with bare_main():
            proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        for fd in ends:  # the child has its own: the pipes end when it does
            os.close(fd)
    return Started(proc, output)  # watched by its pidfd: children of its own may hold its sentinel


def default_sys_path(topology_file: str, python_path: Sequence[str] = ()) -> tuple[str, ...]:
    """Node modules are imported with the file's ``python_path:``, the current directory and
    the file's directory first: the one computation,
    :func:`topo.file.runref.node_sys_path`, that ``topo check`` also resolves ``run:`` with."""
    from topo.file.runref import node_sys_path

    return node_sys_path(topology_file, python_path)


def tree(pid: int) -> list[psutil.Process]:
    """The process and every descendant (a node may start subprocesses of its own)."""
    import psutil  # here: ``topo up`` starts its processes before it has psutil imported

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def signal_tree(pid: int, sig: signal.Signals) -> int:
    """Sends ``sig`` to the process and its descendants, and to the process group it leads
    (what it started that is no longer a descendant, :mod:`topo.process.family`); returns
    how many of the tree got it. ``pid`` must be an unreaped child of this process."""
    import psutil

    sent = 0
    try:
        if pid > 0 and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    except OSError:
        pass
    for proc in tree(pid):
        try:
            proc.send_signal(sig)
            sent += 1
        except psutil.Error:
            pass
    return sent


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def stop_tracker() -> None:
    """multiprocessing's resource tracker (a child of whoever spawned the first process)
    ended and reaped before its parent exits, not a moment after it: a host a run leaves
    (topo apply) has nothing of it left once its agent is gone."""
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # (Python 3.11.5 on)
    if stop is not None:
        try:
            stop()
        except Exception:  # noqa: BLE001 - an exit must not fail for its tracker
            pass
