"""An exec program that sends bad datagrams, prints its NOTIFY_SOCKET, waits for a line on
the FIFO named by its argument, then says READY=1 and exits (no topo import)."""

import os
import socket
import sys

path = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.sendto(b"STATUS=" + b"x" * 100_000, path)  # huge
    s.sendto(b"\xff\xfe\x00binary", path)        # not text
    s.sendto(b"hello there", path)              # not KEY=VALUE
print("notify socket", path, flush=True)
with open(sys.argv[1]) as fifo:
    fifo.readline()
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1", path)
print("ready sent", flush=True)
