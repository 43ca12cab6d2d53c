"""A receiver reports an exec sender's connection only once its subscription is written.

A SUB that binds puts its subscription into the new pipe when its node's thread takes the
connection in; its context's I/O thread writes it to the connection when it next runs.
Reported a look after the pipe was taken, with nothing unread, the report could come
before the I/O thread had written anything (nothing unread because nothing sent), and the
program's go with it: its first message then missed this subscriber. Reproduced here by
keeping that thread off the CPU (pinned beside a busy loop, at the lowest priority): the
report came before the subscription in 26 of 40 tries with one program before the probe
(:class:`topo.process.execlinks.IoProbe`), and this test failed in 10 runs of 10.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import socket
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from execprogs.zmtp import opening
from topo.process import execlinks
from topo.process.control import Kind, Message
from topo.process.execlinks import ExecLinks, IoProbe

ROUNDS = 8
PROGRAMS = 3
DEADLINE = 20.0


def _tasks() -> dict[int, str]:
    """This process's threads, by id: their names."""
    names = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            names[int(tid)] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    return names


@contextlib.contextmanager
def _starved_context() -> Iterator[zmq.Context[Any]]:
    """A context whose I/O thread shares one CPU with a busy loop, at the lowest priority:
    it runs, but seldom (the fault: a loaded host)."""
    before = _tasks()
    ctx: zmq.Context[Any] = zmq.Context()
    ctx.socket(zmq.PAIR).close()  # its threads start with its first socket
    new = {tid: name for tid, name in _tasks().items() if tid not in before}
    io = [tid for tid, name in new.items() if "IO" in name] or list(new)  # (libzmq names it ZMQbg/IO/0)
    cpu = max(os.sched_getaffinity(0))
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        os.sched_setaffinity(busy.pid, {cpu})
        for tid in io:
            os.sched_setaffinity(tid, {cpu})
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        yield ctx
    finally:
        busy.kill()
        busy.wait()
        if not _ended(ctx):
            raise AssertionError(f"the context did not end within {DEADLINE:g}s: a socket of it left open")


def _ended(ctx: zmq.Context[Any]) -> bool:
    """The context terminated within :data:`DEADLINE` (it waits for every socket to be
    closed: the receiver's thread closes its monitors and probes when it ends)."""
    ending = threading.Thread(target=ctx.term, daemon=True)
    ending.start()
    ending.join(DEADLINE)
    return not ending.is_alive()


class _Program(threading.Thread):
    """An exec PUB's ZeroMQ, by hand over the ipc path (a thread of this process, not
    starved): the NULL handshake, then it reads everything the receiver writes."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.conn = socket.socket(socket.AF_UNIX)
        self.conn.settimeout(DEADLINE)
        self.conn.connect(path)
        self._lock = threading.Lock()
        self._read = bytearray()  # what it has read, under the lock

    def run(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.sendall(opening(b"PUB"))
            poll = select.poll()
            poll.register(self.conn, select.POLLIN)
            while poll.poll(DEADLINE * 1000):
                with self._lock:  # (readable: the read does not wait)
                    chunk = self.conn.recv(4096)
                    if not chunk:
                        return
                    self._read += chunk

    def subscribed(self) -> bool:
        """Whether the receiver has written more than its greeting (64 bytes) and READY
        (2 + its size): what it wrote, read by this thread or still in its socket."""
        with self._lock:
            waiting = array.array("i", [0])
            fcntl.ioctl(self.conn.fileno(), termios.FIONREAD, waiting, True)
            got = bytes(self._read) + (self.conn.recv(waiting[0], socket.MSG_PEEK) if waiting[0] else b"")
        return len(got) > 66 and len(got) > 66 + got[65]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux's CPU affinity")
def test_an_exec_sender_is_reported_only_once_the_subscription_is_written(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round, :data:`PROGRAMS` programs connect at once to one bound SUB: at every
    report, as many programs as it and the reports before it counted have the subscription
    (a handshake that came after the pipes before it were taken needs its own look)."""
    monkeypatch.setattr(execlinks, "TAKE_WITHIN", DEADLINE)  # the starved thread, not the bound, decides
    early = []
    subs: list[zmq.Socket[Any]] = []  # (open to the end: a new one reusing a closed one's
    with _starved_context() as ctx:  # descriptor would name its monitor as the old one did)
        for n in range(ROUNDS):
            path = str(tmp_path / f"in{n}")
            sub = ctx.socket(zmq.SUB)
            subs.append(sub)
            sub.subscribe(b"t")
            sub.bind(f"ipc://{path}")
            programs: list[_Program] = []
            reports: list[tuple[int, int]] = []  # (count reported, programs subscribed then)

            def linked(m: Message) -> None:
                assert m.kind is Kind.EXEC_LINKED
                reports.append((m.data["count"], sum(p.subscribed() for p in programs)))

            links = ExecLinks(linked, f"ipc://{tmp_path}/nothing-listens")
            try:
                links.watch("rx", "in", sub.get_monitor_socket(), sub.getsockopt(zmq.FD))
                programs += [_Program(path) for _ in range(PROGRAMS)]
                for program in programs:
                    program.start()
                deadline = time.monotonic() + DEADLINE
                while sum(c for c, _ in reports) < PROGRAMS and time.monotonic() < deadline:
                    sub.poll(5)  # the node's thread, in a poll on its socket
                assert sum(c for c, _ in reports) == PROGRAMS, f"round {n}: reports {reports} within {DEADLINE:g}s"
                counted = 0
                for count, subscribed in reports:
                    counted += count
                    if subscribed < counted:
                        early.append((n, reports))
                        break
            finally:
                for program in programs:
                    with contextlib.suppress(OSError):
                        program.conn.shutdown(socket.SHUT_RDWR)  # (wakes its recv; a close would not)
                    program.join(DEADLINE)
                    program.conn.close()
        for sub in subs:
            sub.close(linger=0)  # (the context's end ends the threads, their monitors and probes)
    assert not early, f"reported before the subscription was written (round, [(count, subscribed)]): {early}"


def test_a_probe_that_cannot_be_made_answers_at_once_and_keeps_nothing_open() -> None:
    """No report waits on a probe that failed (here an ipc path longer than any socket's):
    it is then as a look after the pipe was taken was before."""
    ctx: zmq.Context[Any] = zmq.Context()
    probe = IoProbe(ctx, "ipc:///" + "x" * 300)
    assert probe.done()
    assert _ended(ctx), "a socket of the failed probe left open"  # (made and closed by it)


def test_a_probe_hears_back(tmp_path: Path) -> None:
    """The failed attempt to an ipc path nothing listens on is heard (a probe that never
    answered would hold every report for its whole bound)."""
    ctx: zmq.Context[Any] = zmq.Context()
    probe = IoProbe(ctx, f"ipc://{tmp_path}/nothing-listens")
    try:
        assert probe.done(int(DEADLINE * 1000))
    finally:
        probe.close()
        assert _ended(ctx)


def test_probes_closed_before_their_attempt_leave_the_io_thread_working(tmp_path: Path) -> None:
    """A probe closed at once (a report that could wait no longer, the thread's end) has its
    monitor stopped before its PAIR goes: libzmq sends monitor events without DONTWAIT, and
    one sent to a monitor whose PAIR was closed blocked the context's I/O thread for good
    (closed in the other order, a message between two sockets of the context never went
    through, every time)."""
    ctx: zmq.Context[Any] = zmq.Context()
    for _ in range(50):
        IoProbe(ctx, f"ipc://{tmp_path}/nothing-listens").close()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind(f"ipc://{tmp_path}/pair")
        b.connect(f"ipc://{tmp_path}/pair")
        b.send(b"through")
        assert a.poll(int(DEADLINE * 1000)), "the I/O thread is stuck"
        assert a.recv() == b"through"
    finally:
        a.close(linger=0)
        b.close(linger=0)
        assert _ended(ctx)
