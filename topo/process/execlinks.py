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
that binds puts its subscriptions into the pipe once its node's thread next touches the
socket (a receive or a poll does at once), and the context's I/O thread writes them to
the connection when it next runs. So a report waits for three facts: the node's thread
has taken the pipe (:func:`taken`), the I/O thread has done what was queued for it
before that (:class:`IoProbe`: the subscription is in the kernel), and the program has
read what was written (:func:`unread`). docs/exec-nodes.md says what is left.

The thread ends when the nodes' context is terminated (the process's stop or end): its
poll fails with ETERM and it closes the monitors, which would otherwise hold the
termination up.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import itertools
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


#: How often a handshake not reported yet is looked at again (its pipe taken? its probe
#: answered? its bytes read?), in seconds, and for how long at most before it is reported
#: anyway.
RECHECK, TAKE_WITHIN = 0.001, 1.0


#: What a probe's attempt makes its socket say, one of them at once (:class:`IoProbe`).
_ATTEMPT = zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CONNECTED | zmq.EVENT_CLOSED
_PROBES = itertools.count()


class IoProbe:
    """Whether a context's I/O thread has run everything queued for it before the probe
    was made: a socket of the context connects to an ipc path nothing listens on (in the
    run's private directory), which queues a command to that thread, and its monitor hears
    the failed attempt once the thread has handled it. Commands to the thread are taken in
    the order they were queued, so everything queued before has been handled by then; a
    subscription the node's thread queued is in the kernel. (One I/O thread per context,
    ZeroMQ's default, which topo's contexts keep: with more, the probe could land on
    another.) A probe that cannot be made (no descriptor left) answers at once: the report
    is then as it was before probes, a look after the pipe was taken."""

    __slots__ = ("_sock", "_monitor")

    def __init__(self, ctx: zmq.Context[Any], endpoint: str) -> None:
        self._sock: zmq.Socket[Any] | None = None
        self._monitor: zmq.Socket[Any] | None = None
        try:
            self._sock = ctx.socket(zmq.DEALER)
            self._sock.linger = 0
            # (its own name: pyzmq's default names it by the socket's descriptor, which a
            # socket made while an old one's monitor is still being reaped may reuse)
            self._monitor = self._sock.get_monitor_socket(_ATTEMPT, f"inproc://topo-io-probe-{next(_PROBES)}")
            self._sock.connect(endpoint)
        except zmq.ZMQError as err:
            self.close()
            if err.errno == zmq.ETERM:
                raise  # the context ends: so does the thread

    def done(self, wait_ms: int = 0) -> bool:
        """The monitor has heard something (looked at, or waited for up to ``wait_ms``)."""
        return self._monitor is None or bool(self._monitor.poll(wait_ms))

    def close(self) -> None:
        """The monitor stopped before its PAIR is closed: an event the I/O thread sends to
        a monitor whose PAIR is gone blocks that thread for good (libzmq sends events
        without ZMQ_DONTWAIT), and with it every socket of the context."""
        if self._sock is not None and self._monitor is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.disable_monitor()
        for sock in (self._monitor, self._sock):
            if sock is not None:
                sock.close(linger=0)
        self._sock = self._monitor = None


class _Watched:
    """One socket's monitor, and handshakes seen whose pipe its node has not yet taken."""

    __slots__ = ("instance", "socket", "mailbox", "ctx", "pending", "since", "fds", "probe")

    def __init__(self, instance: str, socket: str, mailbox: int, ctx: zmq.Context[Any]) -> None:
        self.instance, self.socket, self.mailbox, self.ctx = instance, socket, mailbox, ctx
        self.pending = 0
        self.since = 0.0
        #: The connections' descriptors (their accept or connect events).
        self.fds: list[int] = []
        #: Made once its node's thread was seen to have taken the new pipes (None: not yet).
        self.probe: IoProbe | None = None


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

    def __init__(self, send: Callable[[Message], None], probe: str) -> None:
        """``probe``: an ipc endpoint nothing ever listens on (:class:`IoProbe`)."""
        super().__init__(name="topo:execlinks", daemon=True)
        self.send = send
        self.probe = probe
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
            self._new.put((monitor, _Watched(instance, socket, mailbox, monitor.context)))
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
                            if w.probe is not None:  # made for the pipes before: the new one's
                                w.probe.close()      # taking and writing are still to come
                                w.probe = None
                self._report([w for w in watched.values() if w.pending])
        except zmq.ZMQError:
            pass  # ETERM: the nodes' context is being terminated
        finally:
            with self._lock:
                self._closed = True
                for monitor, w in watched.items():
                    if w.probe is not None:
                        w.probe.close()
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
            if w.probe is None and taken(w.mailbox):
                w.probe = IoProbe(w.ctx, self.probe)
            # the pipes taken, what that queued for the I/O thread done (the subscription
            # written), and what its connections sent read by the program's I/O thread
            settled = w.probe is not None and w.probe.done() and not any(unread(fd) for fd in w.fds)
            if settled or now - w.since >= TAKE_WITHIN:
                report = {"instance": w.instance, "socket": w.socket, "count": w.pending}
                conns = [c for c in map(tcp_ends, w.fds) if c is not None]
                if conns:  # on tcp, unread is not yet read by the program: its go waits for that
                    report["conns"] = conns[:MAX_CONNS]
                self.send(Message(Kind.EXEC_LINKED, report))
                if w.probe is not None:
                    w.probe.close()
                w.pending, w.since, w.probe, w.fds = 0, 0.0, None, []
