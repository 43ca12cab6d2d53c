"""A receiver's connections from exec senders, seen after its gate and told to the supervisor.

An exec node that sends is started only once its receivers are ready (their gates do not
wait for it: :mod:`topo.plan.execplan`), so its connections arrive after their gates have
opened and their sockets belong to their nodes' threads. The program may wait for topo's
*go* (``TOPO_GO_FD``, :mod:`topo.supervisor.gosignal`) before its first send; the go is
given once every receiver has seen the program's connection, and only a receiver can see
it. So a socket with an exec sender keeps its monitor past the gate, and one thread per
process (started only if such a socket exists) reads those monitors and reports each
``EVENT_HANDSHAKE_SUCCEEDED`` as a ``linked`` event (instance, socket, how many).

The monitor is a PAIR socket of its own: reading it from this thread does not touch the
node's socket. libzmq hands the new pipe to the socket before it emits the event; a SUB
that binds sends its subscriptions once its node's thread next touches the socket (a
receive or a poll does at once), so the subscription leaves the receiver about when the
report does, and both race to the program: docs/exec-nodes.md says what this leaves.

The thread ends when the nodes' context is terminated (the process's stop or end): its
poll fails with ETERM and it closes the monitors, which would otherwise hold the
termination up.
"""

from __future__ import annotations

import array
import fcntl
import os
import queue
import select
import socket
import termios
import threading
import time
from typing import Any, Callable

import zmq

from topo.process.control import MAX_CONNS, Kind, Message
from topo.process.gate import handshakes_in


#: How often a handshake whose pipe the node's thread has not taken yet is looked at
#: again (seconds), and for how long at most before it is reported anyway.
RECHECK, TAKE_WITHIN = 0.001, 1.0


class _Watched:
    """One socket's monitor, and handshakes seen whose pipe its node has not yet taken."""

    __slots__ = ("instance", "socket", "mailbox", "pending", "since", "fds", "taken_at")

    def __init__(self, instance: str, socket: str, mailbox: int) -> None:
        self.instance, self.socket, self.mailbox = instance, socket, mailbox
        self.pending = 0
        self.since = 0.0
        #: The connections' descriptors (their accept or connect events).
        self.fds: list[int] = []
        #: When its node's thread was first seen to have taken the new pipes (0: not yet).
        self.taken_at = 0.0


def unread(fd: int) -> int:
    """Bytes this end of a connection has sent that the other end has not read yet (a unix
    socket's; for tcp, not yet acknowledged): 0 once a bound SUB's subscription has been
    read by the program's I/O thread. 0 for a descriptor that is no socket (closed since)."""
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.TIOCOUTQ, buf, True)
    except OSError:
        return 0
    return buf[0]


def tcp_ends(fd: int) -> list[Any] | None:
    """[program address, program port, own address, own port] of a tcp connection (for
    the go's writer on the program's host: :mod:`topo.supervisor.goheld`); None for one
    that is not tcp, or closed since. Looked at through a duplicate: the socket stays
    libzmq's."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        s = socket.socket(fileno=dup)
    except OSError:  # not a socket (closed since, its number reused)
        os.close(dup)
        return None
    try:
        if s.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        own, peer = s.getsockname(), s.getpeername()
        return [peer[0], peer[1], own[0], own[1]]
    except OSError:
        return None
    finally:
        s.close()


def taken(mailbox: int) -> bool:
    """Whether the socket's command mailbox (its ``ZMQ_FD``, an eventfd) has no command
    waiting for its owning thread: the pipe a handshake handed over is then attached (a
    bound SUB has sent its subscriptions). Looked at with a poll, never read: the node's
    thread stays its only reader."""
    p = select.poll()
    p.register(mailbox, select.POLLIN)
    return not p.poll(0)


class ExecLinks(threading.Thread):
    """One per process that has a socket with an exec sender; started at its first socket."""

    def __init__(self, send: Callable[[Message], None]) -> None:
        super().__init__(name="topo:execlinks", daemon=True)
        self.send = send
        self._new: queue.SimpleQueue[tuple[zmq.Socket[Any], _Watched]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._lock = threading.Lock()
        self._closed = False

    def watch(self, instance: str, socket: str, monitor: zmq.Socket[Any], mailbox: int) -> None:
        """Hands over a monitor (its PAIR leaves the caller's thread: the queue's lock is
        the memory barrier pyzmq asks for) and the socket's ``ZMQ_FD``, read by the caller
        (the socket's owner until now); starts the thread the first time."""
        with self._lock:
            if self._closed:  # the context is being terminated: nothing more to report
                monitor.close(linger=0)
                return
            self._new.put((monitor, _Watched(instance, socket, mailbox)))
            if self.ident is None:
                self.start()
            try:
                os.write(self._wake_w, b"!")
            except OSError:
                pass  # full: the thread wakes anyway

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._wake_r, zmq.POLLIN)
        watched: dict[zmq.Socket[Any], _Watched] = {}
        try:
            while True:
                waiting = [w for w in watched.values() if w.pending]
                for sock, _ in poller.poll(int(RECHECK * 1000) if waiting else None):
                    if sock == self._wake_r:
                        os.read(self._wake_r, 256)
                        while True:
                            try:
                                monitor, w = self._new.get_nowait()
                            except queue.Empty:
                                break
                            watched[monitor] = w
                            poller.register(monitor, zmq.POLLIN)
                    elif sock in watched:
                        w = watched[sock]
                        count = handshakes_in(sock, w.fds)
                        if count:
                            w.pending, w.since = w.pending + count, w.since or time.monotonic()
                self._report([w for w in watched.values() if w.pending])
        except zmq.ZMQError:
            pass  # ETERM: the nodes' context is being terminated
        finally:
            with self._lock:
                self._closed = True
                for monitor in watched:
                    monitor.close(linger=0)
                while True:  # handed over after the last poll
                    try:
                        self._new.get_nowait()[0].close(linger=0)
                    except queue.Empty:
                        break
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _report(self, waiting: list[_Watched]) -> None:
        """Each socket whose new pipes its node's thread has taken (or that has waited
        :data:`TAKE_WITHIN` for it: a node busy elsewhere) is reported."""
        now = time.monotonic()
        for w in waiting:
            if not w.taken_at and taken(w.mailbox):
                w.taken_at = now
            # the pipes taken a look ago (its subscription handed to the receiver's I/O
            # thread), and what its connections sent read by the program's I/O thread
            settled = w.taken_at and now > w.taken_at and not any(unread(fd) for fd in w.fds)
            if settled or now - w.since >= TAKE_WITHIN:
                report = {"instance": w.instance, "socket": w.socket, "count": w.pending}
                conns = [c for c in map(tcp_ends, w.fds) if c is not None]
                if conns:  # on tcp, unread is not yet read by the program: its go waits for that
                    report["conns"] = conns[:MAX_CONNS]
                self.send(Message(Kind.EXEC_LINKED, report))
                w.pending, w.since, w.taken_at, w.fds = 0, 0.0, 0.0, []
