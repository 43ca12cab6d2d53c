"""A go held until its program has read what its tcp receivers sent it: the kernel's count
of unread bytes on real loopback connections, and the writer's hold, release and bound."""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Iterator

import pytest

from topo.supervisor import goheld
from topo.supervisor.goheld import GoWriter, unread


@pytest.fixture(params=[("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)], ids=["ipv4", "ipv6"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket, list[object]]]:
    """A program's connection (``program``) to a receiver (``receiver``), and the
    connection as the receiver reports it."""
    host, family = request.param
    try:
        server = socket.create_server((host, 0), family=family)
    except OSError:
        pytest.skip(f"no {host} here")
    with server:
        program = socket.create_connection(server.getsockname()[:2])
        receiver, _ = server.accept()
    own, peer = receiver.getsockname(), receiver.getpeername()
    with program, receiver:
        yield program, receiver, [peer[0], peer[1], own[0], own[1]]


def _arrived(program: socket.socket, n: int) -> None:
    """Waits (bounded) until ``n`` bytes are in the program's receive queue, unread."""
    p = select.poll()
    p.register(program, select.POLLIN)
    assert p.poll(5000), "the receiver's bytes never arrived"
    assert len(program.recv(n, socket.MSG_PEEK)) == n


def _readable(fd: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def test_the_kernel_says_what_the_program_has_not_read(pair):
    program, receiver, conn = pair
    assert unread([conn]) == 0
    receiver.sendall(b"\x01t")
    _arrived(program, 2)
    assert unread([conn]) == 2
    program.recv(16)
    assert unread([conn]) == 0


def test_connections_this_host_does_not_know_hold_nothing_back():
    assert unread([["10.255.255.1", 40000, "10.255.255.2", 5000]]) == 0
    assert unread([["not an address", 1, "::1", 2]]) == 0
    assert unread([]) == 0


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A go pipe: its read end (the program's) and its write end (the writer's)."""
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def _give_with_two_unread(writer: GoWriter, pair, w: int) -> None:
    """The receiver's subscription (2 bytes) in the program's socket, unread; the go given."""
    program, receiver, conn = pair
    receiver.sendall(b"\x01t")
    _arrived(program, 2)
    writer.give("pub", w, [conn])


def test_the_go_is_held_until_the_program_reads_then_written_at_the_next_look(pair, pipe):
    (program, _, _), (r, w) = pair, pipe
    said: list[str] = []
    writer = GoWriter(said.append)
    _give_with_two_unread(writer, pair, w)
    assert not _readable(r) and writer.next_deadline() is not None
    writer.look(time.monotonic())
    assert not _readable(r)  # still unread
    program.recv(16)
    writer.look(time.monotonic())
    assert os.read(r, 1) == b"1" and writer.next_deadline() is None and said == []


def test_a_go_with_nothing_unread_is_written_at_once(pair, pipe):
    (_, _, conn), (r, w) = pair, pipe
    writer = GoWriter(print)
    writer.give("pub", w, [conn])
    assert os.read(r, 1) == b"1" and writer.next_deadline() is None


def test_a_program_that_never_reads_gets_its_go_at_the_bound_and_it_is_said(pair, pipe):
    r, w = pipe
    said: list[str] = []
    writer = GoWriter(said.append)
    _give_with_two_unread(writer, pair, w)
    writer.look(time.monotonic() + goheld.READ_WITHIN + 0.001)
    assert os.read(r, 1) == b"1"
    assert said == [f"pub: its go given with 2 byte(s) from its tcp receivers still unread by it after "
                    f"{goheld.READ_WITHIN:g}s (its first message may miss a subscriber)"]


def test_a_held_go_forgotten_is_never_written(pair, pipe):
    """Its pipe is about to be closed (the program ended, restarts, the run stops): a later
    look must not write to a descriptor that may be another's by then."""
    (program, _, _), (r, w) = pair, pipe
    writer = GoWriter(print)
    _give_with_two_unread(writer, pair, w)
    writer.forget("pub")
    program.recv(16)
    writer.look(time.monotonic() + 10)
    assert not _readable(r) and writer.next_deadline() is None
