"""A node process's family: its own process group, and the descriptors it must not hand on.

Everything a node's code starts (``subprocess``, a shell's background job, a forked or
spawned ``multiprocessing`` child, their resource tracker) ends with the node's process
(docs/running.md, "Processes a node starts"). A walk of the live process tree cannot
keep that promise: a shell's background job, or any child whose parent exited first, is
reparented away from the tree before anyone looks. So each node process leads a process
group of its own from its first steps; what it starts stays in that group (unless it
leaves it on purpose, ``setsid``/``setpgid``), and the group can be signalled as a whole:
here at a clean end (:func:`end_descendants`), and by the supervisor
the moment the process is seen dead (:meth:`topo.supervisor.watch.Started.reap`), however
it died.

The same first steps mark every descriptor the process inherited, but fds 0-2,
close-on-exec: among them is the write end of multiprocessing's sentinel pipe, which a
program the node runs would otherwise hold open long after the node process is gone.
None of this imports zmq; psutil only where a clean end finds something to end.
"""

from __future__ import annotations

import os
from typing import Iterable


def lead_own_group() -> None:
    """The process becomes the leader of a new process group (its pid is the group's id).
    Not a new session: a node may still open the controlling terminal."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # not permitted (already a session leader): it keeps the group it has


def keep_inherited_fds() -> None:
    """Every inherited descriptor but 0, 1 and 2 becomes close-on-exec, so no program the
    node starts inherits one. (A ``fork`` without ``exec`` still copies them; that is why
    the supervisor does not learn the end of a process from a pipe:
    :mod:`topo.supervisor.watch`.)"""
    for fd in _open_fds():
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def group_members(pgid: int, exclude: Iterable[int] = ()) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, from /proc (Linux; empty
    where there is no /proc)."""
    skip = set(exclude)
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _open_fds() -> list[int]:
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))  # no /proc: the usual range is enough for what we inherit


def _no_children() -> bool:
    """From /proc/self/task/*/children (Linux); False when that cannot be read."""
    try:
        tasks = os.listdir("/proc/self/task")
        return all(not open(f"/proc/self/task/{t}/children").read().strip() for t in tasks)
    except OSError:
        return False


def _reaped_no_child() -> bool:
    """No child of this process has ended and been reaped: the CPU time of reaped children
    (``RUSAGE_CHILDREN``, in microseconds, the kernel's exact run time) is still zero, as
    a process that ran at all, even a ``fork`` that exits at once, adds some."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime == 0.0 and used.ru_stime == 0.0


def end_descendants() -> None:
    """Programs a node started and left running end with its process, not after it: its
    descendants, and the rest of its process group, where a shell's background job or a
    child whose parent exited has gone (no longer a descendant: :mod:`topo.process.family`).
    SIGTERM, and SIGKILL half a second later. The supervisor kills what is still in the
    group once this process is gone.

    The group is read from /proc, every process of the machine (some 10 ms; 64 processes
    ending at once spent a second of CPU on it during a launch), so only when something
    can be in it: a member that is not a descendant lost its parent, and that parent, or
    the first of its ancestors, was a child of this process, now reaped (or a zombie,
    still a child). A process that has no child and never reaped one has nothing in its
    group. (A node that sets SIGCHLD to SIG_IGN has its children reaped unaccounted: what
    they left in the group then gets the supervisor's SIGKILL at this process's end.)"""
    me = os.getpid()
    if _no_children() and _reaped_no_child():
        return  # the usual case: no /proc walk, no psutil
    group = group_members(me, exclude=[me]) if os.getpgrp() == me else []
    if not group and _no_children():
        return  # the usual case, told without importing psutil (~30 ms in every process)
    import psutil

    try:
        procs = {p.pid: p for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        procs = {}
    for pid in group:
        try:
            procs.setdefault(pid, psutil.Process(pid))
        except psutil.Error:
            pass
    for proc in procs.values():
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=0.5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
