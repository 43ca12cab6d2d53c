"""ZMTP 3.0 by hand, NULL mechanism: what a peer sends first (its greeting and its READY
command), for test programs that must control when they read what a ZeroMQ peer wrote
(``unread_pub.py``; test_exec_linked.py's stand-in program)."""

import struct

#: The greeting: signature, version 3.0, mechanism NULL, as-server 0, filler (64 bytes).
GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def ready_command(socket_type: bytes) -> bytes:
    """A READY command naming the socket type (a short command frame)."""
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    return bytes([0x04, len(body)]) + body


def opening(socket_type: bytes) -> bytes:
    """What the peer sends before anything else: its greeting, then its READY."""
    return GREETING + ready_command(socket_type)
