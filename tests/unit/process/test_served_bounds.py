"""A node's CURVE endpoint takes frames of a bounded size from a stranger; the bound stays
with that endpoint (libzmq copies options at bind time) and a file's own setting wins."""

from __future__ import annotations

import socket
from typing import Any

import psutil
import pytest
import zmq

from topo.process import curve

GREETING = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\0") + b"\0" + b"\0" * 31


def _held_after_attack(endpoint: str) -> int:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    me = psutil.Process()
    before = me.memory_info().rss
    with socket.create_connection((host, int(port))) as stranger:
        stranger.sendall(GREETING + b"\x06" + (100 * 2**20).to_bytes(8, "big"))
        try:
            for _ in range(48):
                stranger.sendall(b"x" * 2**20)
        except OSError:
            pass
        return me.memory_info().rss - before


@pytest.mark.parametrize("own", [None, 2**20])
def test_a_served_endpoint_is_bounded_and_the_bound_stays_with_it(own: int | None) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    keys = curve.make_keys(["local"])["local"]
    handler = curve.ZapHandler(ctx, keys)
    handler.start()
    sock = ctx.socket(zmq.ROUTER)
    try:
        if own is not None:
            sock.setsockopt(zmq.MAXMSGSIZE, own)  # the file's `options: {maxmsgsize: ...}`
        with curve.secured(sock, keys):
            sock.bind("tcp://127.0.0.1:*")
        assert sock.getsockopt(zmq.MAXMSGSIZE) == (-1 if own is None else own)  # restored
        assert sock.getsockopt(zmq.HANDSHAKE_IVL) == 30_000
        assert _held_after_attack(sock.last_endpoint.decode()) < 24 * 2**20
    finally:
        sock.close(linger=0)
        ctx.term()


def test_the_files_max_message_bounds_what_the_runs_own_peers_send_too() -> None:
    """``security: {max_message: N}`` reaches :func:`curve.secured` as the endpoint's
    ``max_message``: a frame over it ends the connection (libzmq's rule), one under it passes."""
    from zmq.utils.monitor import recv_monitor_message

    ctx: zmq.Context[Any] = zmq.Context()
    keys = curve.make_keys(["local"])["local"]
    curve.ZapHandler(ctx, keys).start()
    server, client = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    monitor = client.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    try:
        with curve.secured(server, keys, None, 4096):
            server.bind("tcp://127.0.0.1:*")
        with curve.secured(client, keys, "local"):
            client.connect(server.last_endpoint.decode())

        def next_event() -> int:
            assert monitor.poll(10_000), "no event from the client's connection within 10s"
            return int(recv_monitor_message(monitor)["event"])

        assert next_event() == zmq.EVENT_HANDSHAKE_SUCCEEDED
        client.send(b"x" * 5000)  # over the bound: the server drops the connection
        assert next_event() == zmq.EVENT_DISCONNECTED
        assert next_event() == zmq.EVENT_HANDSHAKE_SUCCEEDED  # (the client dials again)
        client.send(b"y" * 3000)
        assert server.poll(10_000)
        assert server.recv() == b"y" * 3000  # and the big one never came
    finally:
        client.disable_monitor()
        for sock in (monitor, client, server):
            sock.close(linger=0)
        ctx.term()
