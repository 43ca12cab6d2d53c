"""topo.process.delivery with plain kernel sockets standing in for libzmq's connections."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from topo.process.delivery import Deliveries, Held, Known, connections


Pair = tuple[str, socket.socket, socket.socket, socket.socket]


@pytest.fixture
def unix_pair(tmp_path: Path) -> Iterator[Pair]:
    """A listener at a path, a connection to it and its accepted end: (endpoint, listener,
    dialler, accepted), as an ipc bind and connect leave them."""
    path = str(tmp_path / "s")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    dialler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dialler.connect(path)
    accepted, _ = listener.accept()
    try:
        yield f"ipc://{path}", listener, dialler, accepted
    finally:
        for s in (listener, dialler, accepted):
            s.close()


def _close_all(found: list[Held]) -> None:
    for held in found:
        os.close(held.dup)


def test_a_bound_endpoint_finds_the_accepted_connection_not_the_listener(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    found = connections({endpoint}, set(), set())
    try:
        assert [h.original for h in found] == [accepted.fileno()]
    finally:
        _close_all(found)


def test_a_dialled_endpoint_finds_the_dialling_connection(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    found = connections(set(), {endpoint}, set())
    try:
        assert [h.original for h in found] == [dialler.fileno()]
    finally:
        _close_all(found)
    assert connections({"ipc:///nowhere"}, {"tcp://127.0.0.1:1"}, set()) == []


def test_held_until_the_owner_lets_go_and_the_peer_has_read_all(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    accepted.sendall(b"x" * 50_000)
    deliveries = Deliveries()
    assert len(deliveries.hold([endpoint], [])) == 1
    accepted.close()  # what libzmq does once its linger is over
    assert deliveries.settle(), "released with 50,000 bytes unread"
    got = 0
    while got < 50_000:
        got += len(dialler.recv(65536))
    assert not deliveries.settle()
    assert dialler.recv(10) == b""  # only now does the reader see the end


def test_not_released_while_the_owner_still_has_the_connection(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    deliveries = Deliveries()
    deliveries.hold([endpoint], [])
    assert deliveries.settle()  # nothing unread, but libzmq may still write
    accepted.close()
    assert not deliveries.settle()


def test_a_peer_that_has_gone_is_not_waited_for(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    accepted.sendall(b"x" * 50_000)
    deliveries = Deliveries()
    deliveries.hold([endpoint], [])
    accepted.close()
    dialler.close()  # the reader died with all of it unread
    assert not deliveries.settle()
    assert not deliveries.connected()


def test_a_second_hold_does_not_hold_the_first_ones_duplicates(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    deliveries = Deliveries()
    first = deliveries.hold([endpoint], [])
    second = deliveries.hold([endpoint], [])  # a second socket of the process closing on the same endpoint
    assert len(deliveries.held) == 1 and {h.original for h in deliveries.held} == {accepted.fileno()}
    assert second == first  # the connection already held, not duplicated once more
    accepted.close()
    assert not deliveries.settle()


def test_a_socket_is_looked_at_once_and_a_new_connection_is_still_found(unix_pair: Pair) -> None:
    """The scan remembers each socket inode (addresses of a connection never change);
    a connection made after an earlier scan is probed and found."""
    endpoint, listener, dialler, accepted = unix_pair
    known: Known = {}
    found = connections({endpoint}, set(), set(), known)
    assert [h.original for h in found] == [accepted.fileno()]
    _close_all(found)
    assert os.fstat(listener.fileno()).st_ino in {ino for _, ino in known}  # a listener: remembered
    assert known[(os.fstat(listener.fileno()).st_dev, os.fstat(listener.fileno()).st_ino)] is None
    later = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    later.connect(endpoint[len("ipc://"):])
    second, _ = listener.accept()
    try:
        found = connections({endpoint}, set(), set(), known)
        assert sorted(h.original for h in found) == sorted([accepted.fileno(), second.fileno()])
        _close_all(found)
    finally:
        later.close()
        second.close()


def test_drop_lets_go_of_everything(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    accepted.sendall(b"x" * 1000)
    deliveries = Deliveries()
    deliveries.hold([endpoint], [])
    accepted.close()
    deliveries.drop()
    assert not deliveries.held
    assert dialler.recv(2000) == b"x" * 1000
    assert dialler.recv(10) == b""


def test_tcp_connections_are_found_by_address() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    host, port = listener.getsockname()
    dialler = socket.create_connection((host, port))
    accepted, _ = listener.accept()
    try:
        endpoint = f"tcp://{host}:{port}"
        bound = connections({endpoint}, set(), set())
        dialled = connections(set(), {endpoint}, set())
        assert [h.original for h in bound] == [accepted.fileno()]
        assert [h.original for h in dialled] == [dialler.fileno()]
        _close_all(bound + dialled)
    finally:
        for s in (listener, dialler, accepted):
            s.close()


def test_the_close_waits_until_the_peer_has_read_what_the_kernel_holds(unix_pair: Pair) -> None:
    """Before libzmq's socket is closed: drained only once the reader has taken every byte
    (a stop ends the wait undrained)."""
    endpoint, listener, dialler, accepted = unix_pair
    accepted.sendall(b"x" * 50_000)
    deliveries = Deliveries()
    held = deliveries.hold([endpoint], [])
    stop = threading.Event()
    stop.set()
    assert not deliveries.wait_drained(held, stop)  # stopped with 50,000 bytes unread
    got = 0
    while got < 50_000:
        got += len(dialler.recv(65536))
    assert deliveries.wait_drained(held, threading.Event())
    deliveries.drop()


def test_the_close_does_not_wait_for_a_peer_that_has_gone(unix_pair: Pair) -> None:
    endpoint, listener, dialler, accepted = unix_pair
    accepted.sendall(b"x" * 50_000)
    deliveries = Deliveries()
    held = deliveries.hold([endpoint], [])
    dialler.close()  # the reader died with all of it unread: the kernel drops it
    assert deliveries.wait_drained(held, threading.Event())
    deliveries.drop()
