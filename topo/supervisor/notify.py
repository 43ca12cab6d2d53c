"""The server side of sd_notify: one ``NOTIFY_SOCKET`` per exec process, read in the loop.

An exec node's program says ``READY=1``, ``STATUS=...``, ``STOPPING=1`` and ``WATCHDOG=1``
as it would to systemd (:mod:`topo.supervisor.notifymsg` reads one datagram). Each
program that may speak (``ready: notify``, or a ``watchdog:``) gets a socket of its own:

- **Where.** An ``AF_UNIX`` ``SOCK_DGRAM`` socket at a path in the run's socket directory,
  which is 0700 (:mod:`topo.supervisor.rundir`), so only this user (and root) can reach it.
  Not the abstract namespace (``@name``), which the protocol allows: an abstract socket
  has no permissions at all, any process of the network namespace may write to it. The
  directory is kept short enough for every ipc path (``MAX_RUN_DIR``), so the socket's
  ``sun_path`` always fits; a path that would not (108 bytes with its NUL) is refused with
  a :class:`topo.errors.UsageError` naming it rather than cut.
- **Who.** ``SO_PASSCRED``: every datagram carries the sender's pid, uid and gid, filled in
  by the kernel (a process can claim another pid only with ``CAP_SYS_ADMIN``). A datagram
  counts only if its sender is the program's process or a descendant of it (its parent
  chain in ``/proc`` leads to the program's pid), so another node of the same user, or
  a stray process, cannot make a program ready. A sender that has exited (and been
  reaped) by the time its datagram is read cannot be placed: its datagram is refused,
  saying so. ``systemd-notify`` waits (``BARRIER=1``, below) until its message is read,
  so it is placed.
- **Descriptors.** Any descriptor a datagram carries (``FDSTORE=1``, ``BARRIER=1``) is
  closed once the datagram is handled: topo stores none, and a sender waiting on a
  barrier (``systemd-notify`` does, since systemd 246) learns its message was read.
- **Hostile input.** A datagram over :data:`topo.supervisor.notifymsg.MAX_DATAGRAM`
  bytes, not UTF-8, or not lines of ``KEY=VALUE`` is dropped with a message naming the
  node and why; the first few per socket are said, later ones only counted, so a flood
  cannot flood the terminal. Reads are non-blocking and bounded per wake: the
  supervisor's one poll loop holds the socket with everything else, no thread.

:class:`Watchdogs` keeps the ``watchdog:`` deadlines: armed when a node is ready, renewed
by each ``WATCHDOG=1``; the supervisor's poll wakes at the soonest.
"""

from __future__ import annotations

import array
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator

from topo.errors import UsageError
from topo.supervisor.notifymsg import MAX_DATAGRAM, Notice, Refused, parse

#: ``sockaddr_un``'s ``sun_path``: 108 bytes, the last one a NUL.
SUN_PATH_MAX = 107
#: Datagrams read per socket per wake of the loop (a flood must not hold the loop).
READ_BATCH = 64
#: Refusals said per socket; later ones are counted (and said once, when it closes).
SAY_REFUSALS = 5
#: Descriptors one datagram may carry and be closed (more are closed by the kernel).
_MAX_FDS = 16
_CRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
#: How far up the parent chain a sender is looked for (a fork bomb's depth is no reason
#: to walk forever).
_MAX_DEPTH = 256


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid`` from ``/proc`` (a zombie's too), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses: split after the last ')'
    rest = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(rest[1])
    except (IndexError, ValueError):
        return None


def descends(pid: int, root: int, parent: Callable[[int], int | None] = parent_of) -> bool | None:
    """Whether ``pid`` is ``root`` or a descendant of it; None when ``pid`` (or a process
    between them) is gone, so nothing can be said."""
    seen = 0
    while pid != root:
        if pid <= 1 or seen > _MAX_DEPTH:
            return False
        up = parent(pid)
        if up is None:
            return None
        pid, seen = up, seen + 1
    return True


@dataclass
class Speaker:
    """One exec process's socket and what is known of its sender."""

    name: str
    path: str
    sock: socket.socket
    #: The program's pid once spawned (None before: nothing counts yet).
    pid: int | None = None
    refused: int = 0


class NotifySockets:
    """The ``NOTIFY_SOCKET`` of each exec process that may speak, by process name."""

    def __init__(self, directory: str, say: Callable[[str], None]) -> None:
        """``say``: where a refusal is told (the run's system messages)."""
        self.directory = directory
        self.say = say
        self._by_name: dict[str, Speaker] = {}
        self._by_fd: dict[int, Speaker] = {}

    def open(self, name: str) -> str:
        """A fresh socket for process ``name`` (a restart gets a new one: nothing the old
        program left queued counts for the new one); its path for ``NOTIFY_SOCKET``."""
        self.close(name)
        path = os.path.join(self.directory, f"sd-{len(self._by_name)}-{os.urandom(3).hex()}.sock")
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            raise UsageError(f"NOTIFY_SOCKET path for {name} is {len(os.fsencode(path))} bytes, over the "
                             f"{SUN_PATH_MAX} a unix socket's path may have: {path}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(path)
            os.chmod(path, 0o600)
        except OSError:
            sock.close()
            raise
        speaker = Speaker(name, path, sock)
        self._by_name[name] = speaker
        self._by_fd[sock.fileno()] = speaker
        return path

    def started(self, name: str, pid: int) -> None:
        """The program of ``name`` runs as ``pid``: from now on its tree may speak."""
        if name in self._by_name:
            self._by_name[name].pid = pid

    def close(self, name: str) -> None:
        speaker = self._by_name.pop(name, None)
        if speaker is None:
            return
        self._by_fd.pop(speaker.sock.fileno(), None)
        if speaker.refused > SAY_REFUSALS:
            self.say(f"{name}: {speaker.refused} sd_notify datagrams refused in all")
        speaker.sock.close()
        try:
            os.unlink(speaker.path)
        except OSError:
            pass

    def close_all(self) -> None:
        for name in list(self._by_name):
            self.close(name)

    def fds(self) -> list[int]:
        return list(self._by_fd)

    def owns(self, fd: object) -> bool:
        return isinstance(fd, int) and fd in self._by_fd

    def fileno(self, name: str) -> int | None:
        speaker = self._by_name.get(name)
        return speaker.sock.fileno() if speaker else None

    def path(self, name: str) -> str | None:
        speaker = self._by_name.get(name)
        return speaker.path if speaker else None

    def read(self, fd: int) -> Iterator[tuple[str, Notice]]:
        """What waits on one socket (at most :data:`READ_BATCH` datagrams): each accepted
        notice with its process's name; each refused datagram told and dropped."""
        speaker = self._by_fd.get(fd)
        if speaker is None:
            return
        for _ in range(READ_BATCH):
            try:
                data, ancdata, flags, _ = speaker.sock.recvmsg(
                    MAX_DATAGRAM + 1, socket.CMSG_SPACE(_CRED.size) + socket.CMSG_SPACE(_MAX_FDS * 4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                self._refuse(speaker, f"could not be read: {err.strerror or err}")
                return
            sender, fds = _ancillary(ancdata)
            try:
                notice = self._accept(speaker, data, flags, sender)
            except Refused as why:
                self._refuse(speaker, str(why))
                continue
            finally:
                for received in fds:  # after the datagram is handled: a BARRIER=1 sender goes on
                    try:
                        os.close(received)
                    except OSError:
                        pass
            yield speaker.name, notice

    def _accept(self, speaker: Speaker, data: bytes, flags: int, sender: tuple[int, int, int] | None) -> Notice:
        if sender is None:
            raise Refused("carries no sender credentials")
        pid, uid, _ = sender
        if speaker.pid is None:
            raise Refused(f"from pid {pid} before the program was started")
        if pid != speaker.pid:
            placed = descends(pid, speaker.pid)
            if placed is None:
                raise Refused(f"from pid {pid}, which has exited: it cannot be told from a stranger "
                              "(a sender must live until its message is read, as systemd-notify does)")
            if not placed:
                raise Refused(f"from pid {pid} (uid {uid}), which is not the program (pid {speaker.pid}) "
                              "nor a process it started")
        return parse(data, truncated=bool(flags & socket.MSG_TRUNC))

    def _refuse(self, speaker: Speaker, why: str) -> None:
        speaker.refused += 1
        if speaker.refused <= SAY_REFUSALS:
            more = " (further ones are only counted)" if speaker.refused == SAY_REFUSALS else ""
            self.say(f"{speaker.name}: sd_notify datagram dropped: {why}{more}")


def _ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[tuple[int, int, int] | None, list[int]]:
    """The sender's (pid, uid, gid) and the descriptors a datagram carried."""
    sender: tuple[int, int, int] | None = None
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(data) >= _CRED.size:
            sender = _CRED.unpack(data[:_CRED.size])
        elif kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(data[:len(data) - len(data) % got.itemsize])
            fds.extend(got)
    return sender, fds


@dataclass
class Watchdogs:
    """``watchdog:`` deadlines by node: armed at ready, renewed by ``WATCHDOG=1``."""

    due: dict[str, tuple[float, float]] = field(default_factory=dict)  # node → (deadline, seconds)

    def arm(self, node: str, seconds: float, now: float) -> None:
        self.due[node] = (now + seconds, seconds)

    def pet(self, node: str, now: float) -> None:
        if node in self.due:
            self.due[node] = (now + self.due[node][1], self.due[node][1])

    def disarm(self, node: str) -> None:
        self.due.pop(node, None)

    def next_deadline(self) -> float | None:
        return min((d for d, _ in self.due.values()), default=None)

    def missed(self, now: float) -> list[tuple[str, float]]:
        """Each node whose deadline has passed, with its interval; disarmed."""
        late = [(n, s) for n, (d, s) in self.due.items() if now >= d]
        for n, _ in late:
            del self.due[n]
        return late
