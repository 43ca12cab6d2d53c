"""A node process's family: its own process group, and the descriptors it must not hand on.

Everything a node's code starts (``subprocess``, a shell's background job, a forked or
spawned ``multiprocessing`` child, their resource tracker) ends with the node's process
(docs/running.md, "Processes a node starts"). A walk of the live process tree cannot
keep that promise: a shell's background job, or any child whose parent exited first, is
reparented away from the tree before anyone looks. So each node process leads a process
group of its own from its first steps; what it starts stays in that group (unless it
leaves it on purpose, ``setsid``/``setpgid``), and the group can be signalled as a whole:
here at a clean end (:func:`topo.process.runtime._end_descendants`), and by the supervisor
the moment the process is seen dead (:meth:`topo.supervisor.watch.Started.reap`), however
it died.

The same first steps mark every descriptor the process inherited, but fds 0-2,
close-on-exec: among them is the write end of multiprocessing's sentinel pipe, which a
program the node runs would otherwise hold open long after the node process is gone.
None of this imports zmq or psutil.
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
