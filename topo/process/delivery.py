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
acts on the hang-up.

The sender's side has a smaller window of its own: closing a zmq socket ends its
connections' sessions as soon as each engine has taken the last message from its pipe,
and a session that ends destroys its engine, with whatever part of the last batch (at
most 8 KB) the kernel had no room for yet. So before the zmq socket is closed, the node's
thread waits (:meth:`Deliveries.wait_drained`) until the kernel holds nothing unread on
any of its connections: the engine then has written all it had, and the last batch,
written into an empty queue, fits. A peer that has gone (returned, crashed) frees the queue, so it
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
import time
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


#: What a socket inode is, once looked at: its (local, peer) addresses when it is a
#: connected stream socket, None when it is of no interest (a listener, a datagram socket).
#: A connection's addresses never change, so a process that holds connections for many
#: nodes looks at each socket once (every node returning would otherwise probe every
#: descriptor of the process again: a few syscalls each, under the GIL, while the wiring
#: thread still gates the process's other nodes).
Known = dict[tuple[int, int], "tuple[str | None, str | None] | None"]


def _probe(fd: int) -> tuple[int, tuple[tuple[str | None, str | None] | None, bool]] | None:
    """A duplicate of ``fd`` and what its socket is: (addresses or None, whether that is
    final). None when ``fd`` is gone."""
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    what: tuple[str | None, str | None] | None = None
    final = True
    try:
        if probe.type == socket.SOCK_STREAM and probe.family in (
                socket.AF_UNIX, socket.AF_INET, socket.AF_INET6) and not probe.getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN):  # a listener has no peer
            final = False  # until it is seen connected
            peer = _address(probe.getpeername())  # OSError: not connected (yet, or any more)
            what, final = (_address(probe.getsockname()), peer), True
    except OSError:
        pass
    return probe.detach(), (what, final)


def connections(bound: set[str], dialled: set[str], skip: set[int], known: Known | None = None,
                have: dict[tuple[int, int], Held] | None = None) -> list[Held]:
    """The process's connected stream sockets whose local address is one of ``bound``
    (connections accepted on it) or whose peer address is one of ``dialled``, each as a
    duplicate that the caller now owns (looked at through the duplicate itself, so a
    descriptor that libzmq closes meanwhile, its number reused, cannot be mistaken).

    Several zmq sockets of one process may dial the same endpoint; a connection of another
    socket found here is only held as long as that socket uses it (see the module's text).
    ``skip``: the duplicates already held, which name the same connections as libzmq's.
    ``known``: what earlier scans learnt of each socket inode (see :data:`Known`).
    ``have``: connections already held, by inode: returned as they are, not duplicated again
    (the nodes of one process dialling one endpoint all find each other's connections).
    """
    found: list[Held] = []
    mine: set[int] = set()
    if not bound and not dialled:
        return found
    known = {} if known is None else known
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        if fd in skip or fd in mine:
            continue  # (mine: the listing is older than this scan's own duplicates)
        identity = _identity(fd)
        if identity is None:
            continue
        if have and identity in have and have[identity].original == fd:
            what = known.get(identity)
            if what is not None and ((what[0] is not None and what[0] in bound)
                                     or (what[1] is not None and what[1] in dialled)):
                found.append(have[identity])
            continue
        if identity in known:
            what = known[identity]
            if what is None or not ((what[0] is not None and what[0] in bound)
                                    or (what[1] is not None and what[1] in dialled)):
                continue
            try:
                dup = os.dup(fd)
            except OSError:
                continue
        else:
            probed = _probe(fd)
            if probed is None:
                continue
            dup, (what, final) = probed
            if final:
                known[_identity(dup) or identity] = what
            if what is None or not ((what[0] is not None and what[0] in bound)
                                    or (what[1] is not None and what[1] in dialled)):
                os.close(dup)
                continue
        if _identity(dup) != identity:  # the number was reused between the two looks
            os.close(dup)
            continue
        found.append(Held(dup, fd, identity))
        mine.add(dup)
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
        self._known: Known = {}
        #: Until when (monotonic) a socket with external endpoints may linger: libzmq's
        #: own delivery to peers topo cannot look at (:mod:`topo.process.external`).
        self._linger_until = 0.0

    def hold(self, bound: list[str], dialled: list[str]) -> list[Held]:
        """Before the zmq socket with these endpoints is closed: keeps its connections."""
        with self._lock:
            have = {h.identity: h for h in self.held}
            found = connections(set(bound), set(dialled), {h.dup for h in self.held}, self._known, have)
            self.bound.update(bound)
            self.dialled.update(dialled)
            self.held += [h for h in found if h.identity not in have]
            if found:
                self._look = FIRST_LOOK
        return found

    def wait_drained(self, held: list[Held], stopping: threading.Event, until: float = float("inf")) -> bool:
        """Until the peers of ``held`` have read everything the kernel holds for them (or
        have gone, or the connection was let go), or a stop: True when drained. A peer
        alive that never reads keeps this waiting until the run stops, as it keeps the
        process (the stop is this wait's deadline, or ``until``, a ``time.monotonic()``)."""
        look = FIRST_LOOK
        while not stopping.is_set() and time.monotonic() < until:
            with self._lock:  # a duplicate let go meanwhile (settle, drop) is not looked at
                if not any(h in self.held and _unsent(h.dup) > 0 for h in held):
                    return True
            stopping.wait(look)
            look = min(LONGEST_LOOK, look * 2)
        return False

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
            found = connections(self.bound, self.dialled, set(), self._known)
        for each in found:
            os.close(each.dup)
        return bool(found)

    def linger_for(self, seconds: float) -> None:
        """A socket closed with this linger whose peers are outside the topology: the
        process lets libzmq deliver until then, connected peers or not."""
        with self._lock:
            self._linger_until = max(self._linger_until, time.monotonic() + seconds)

    def lingering(self) -> bool:
        return time.monotonic() < self._linger_until

    def drop(self) -> None:
        """A stop: what is still unread is dropped (the peers see the connection end)."""
        with self._lock:
            held, self.held = self.held, []
        for each in held:
            try:
                os.close(each.dup)
            except OSError:
                pass
