"""The looks a receiver takes before it reports an exec sender's connection."""

from __future__ import annotations

import os
import socket

from topo.process.execlinks import taken, tcp_ends, unread


def test_a_mailbox_with_a_command_waiting_is_not_taken():
    r, w = os.pipe()  # stands for the socket's eventfd: readable while commands wait
    try:
        assert taken(r)
        os.write(w, b"!")
        assert not taken(r)
        os.read(r, 1)
        assert taken(r)
    finally:
        os.close(r)
        os.close(w)


def test_unread_counts_what_the_peer_has_not_read():
    a, b = socket.socketpair()
    fd = a.fileno()
    with a, b:
        assert unread(a.fileno()) == 0
        a.send(b"\x01topic")
        assert unread(a.fileno()) > 0  # (a unix socket counts its buffers, not the bytes)
        b.recv(16)
        assert unread(a.fileno()) == 0
    assert unread(fd) == 0  # closed: nothing to wait for


def test_a_tcp_connection_is_named_by_both_ends_and_anything_else_by_nothing():
    server = socket.create_server(("127.0.0.1", 0))
    with server:
        dialer = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    with dialer, accepted:
        assert tcp_ends(accepted.fileno()) == [*dialer.getsockname(), *accepted.getsockname()]
        assert accepted.fileno() >= 0  # still open: it was looked at through a duplicate
    a, b = socket.socketpair()
    with a, b:
        assert tcp_ends(a.fileno()) is None
    r, w = os.pipe()
    before = len(os.listdir("/proc/self/fd"))
    try:
        assert tcp_ends(r) is None  # not a socket: nothing, and no descriptor left behind
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        os.close(r)
        os.close(w)
