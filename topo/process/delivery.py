"""What a node sent before it returned reaches its peers, on ipc too.

libzmq alone does not promise it (libzmq issue 4660). A receiving engine whose pipe is
full stops reading its connection; if the sender then closes the connection, a unix
socket reports POLLHUP, which the stopped engine takes as the end of the connection: it
drops the bytes still waiting in the kernel, and with them the tail of what was sent.
Over tcp the sender's FIN raises no event while the receiver does not poll for input,
which is why tcp does not lose, and why linger cannot help on ipc: linger waits until
libzmq has written into the kernel, not until the peer has read.

So when a node returns, its process keeps each of the node's connections open itself: it
duplicates their file descriptors before closing the zmq socket (with linger, so libzmq
writes out what is queued), and closes its duplicate only once

- libzmq has let go of the connection (its descriptor no longer names the same socket),
  so nothing more will be written to it, and
- the kernel holds nothing unread for the peer (``SIOCOUTQ`` is 0: on a unix socket, the
  bytes in the peer's receive queue; on tcp, the bytes not yet acknowledged).

Then the peer's engine has every byte in its own memory, which it hands on before it
acts on the hang-up. A peer that has gone (returned, crashed) frees the queue, so it
keeps nothing waiting. The kernel has no event for "the queue is empty", so that fact is
polled, at short intervals, and only while something is held; a stop drops it all at
once (see :meth:`Deliveries.drop`). The details and the measurements: docs/gate.md.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import struct
import termios
import threading
from typing import NamedTuple

#: The first and the longest interval between two looks at what is held (seconds).
FIRST_LOOK = 0.001
LONGEST_LOOK = 0.05


class Held(NamedTuple):
    """One connection kept open: our duplicate, and libzmq's descriptor with its identity."""

    dup: int
    original: int
    identity: tuple[int, int]


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None


def _unsent(fd: int) -> int:
    """Bytes the kernel holds that the peer has not taken (``SIOCOUTQ``, a.k.a. TIOCOUTQ)."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except OSError:
        return 0  # no longer a connected socket: nothing of ours waits in it


def _address(raw: object) -> str | None:
    """A socket address as libzmq writes endpoints: ``ipc://PATH``, ``tcp://HOST:PORT``."""
    if isinstance(raw, (str, bytes)):
        path = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        return f"ipc://{path}" if path and not path.startswith("\0") else None
    if isinstance(raw, tuple) and len(raw) >= 2:
        host, port = raw[0], raw[1]
        return f"tcp://[{host}]:{port}" if ":" in str(host) else f"tcp://{host}:{port}"
    return None


def connections(bound: set[str], dialled: set[str], skip: set[int]) -> list[Held]:
    """The process's connected stream sockets whose local address is one of ``bound``
    (connections accepted on it) or whose peer address is one of ``dialled``, each as a
    duplicate that the caller now owns (looked at through the duplicate itself, so a
    descriptor that libzmq closes meanwhile, its number reused, cannot be mistaken).

    Several zmq sockets of one process may dial the same endpoint; a connection of another
    socket found here is only held as long as that socket uses it (see the module's text).
    ``skip``: the duplicates already held, which name the same connections as libzmq's.
    """
    found: list[Held] = []
    mine: set[int] = set()
    if not bound and not dialled:
        return found
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        if fd in skip or fd in mine or _identity(fd) is None:
            continue  # (mine: the listing is older than this scan's own duplicates)
        try:
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        keep = False
        try:
            if probe.type == socket.SOCK_STREAM and probe.family in (
                    socket.AF_UNIX, socket.AF_INET, socket.AF_INET6) and not probe.getsockopt(
                    socket.SOL_SOCKET, socket.SO_ACCEPTCONN):  # a listener has no peer
                peer = _address(probe.getpeername())  # OSError: not connected (yet, or any more)
                local = _address(probe.getsockname())
                keep = (local is not None and local in bound) or (peer is not None and peer in dialled)
        except OSError:
            pass
        identity = _identity(probe.fileno()) if keep else None
        if identity is not None:
            found.append(Held(probe.detach(), fd, identity))
            mine.add(found[-1].dup)
        else:
            probe.close()
    return found


class Deliveries:
    """The connections a process keeps open for nodes that returned: held by the node
    threads (:meth:`hold`), let go by the runtime's main thread (the rest). One lock
    covers the scans too, so no scan ever sees another's duplicates half made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held: list[Held] = []
        #: The endpoints of every socket closed with something to deliver, for :meth:`connected`.
        self.bound: set[str] = set()
        self.dialled: set[str] = set()
        self._look = FIRST_LOOK

    def hold(self, bound: list[str], dialled: list[str]) -> int:
        """Before the zmq socket with these endpoints is closed: keeps its connections."""
        with self._lock:
            found = connections(set(bound), set(dialled), {h.dup for h in self.held})
            self.bound.update(bound)
            self.dialled.update(dialled)
            self.held += found
            if found:
                self._look = FIRST_LOOK
        return len(found)

    def settle(self) -> bool:
        """Lets go of each connection that libzmq is done with and whose peer has read all;
        True while something is still held."""
        with self._lock:
            keep: list[Held] = []
            for held in self.held:
                if _identity(held.original) == held.identity or _unsent(held.dup) > 0:
                    keep.append(held)
                else:
                    os.close(held.dup)
            self.held = keep
            return bool(keep)

    def next_look(self) -> float:
        """Seconds until the next :meth:`settle`: short at first (a queue drains in
        milliseconds), longer while a slow reader takes its time."""
        look = self._look
        self._look = min(LONGEST_LOOK, self._look * 2)
        return look

    def connected(self) -> bool:
        """Whether any connection of a socket closed with something to deliver is open:
        when none is, libzmq has nobody to deliver to and waits in vain."""
        with self._lock:
            if self.held:
                return True
            found = connections(self.bound, self.dialled, set())
        for each in found:
            os.close(each.dup)
        return bool(found)

    def drop(self) -> None:
        """A stop: what is still unread is dropped (the peers see the connection end)."""
        with self._lock:
            held, self.held = self.held, []
        for each in held:
            try:
                os.close(each.dup)
            except OSError:
                pass
