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
