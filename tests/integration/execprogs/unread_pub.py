"""An exec PUB that speaks ZMTP 3.0 by hand over tcp so that it can leave its receivers'
subscriptions unread in its kernel: what a real program's I/O thread does for a moment
when its host is busy. topo's go must wait until they are read.

Connects to its one receiver, does the NULL handshake, waits until the subscription is in
its socket's receive queue, then looks for the go for ``HOLD`` seconds without reading it:
a go now comes too early (exit 4). Then it reads the subscription, waits for the go and
sends one message, ``[b"t", b"first"]``.
"""

import os
import select
import socket
import struct
import sys
import time

from zmtp import opening  # (this script's directory is first on sys.path)

HOLD, DEADLINE = 0.5, 20.0  # (HOLD: well within the go's own bound, topo.supervisor.goheld)


def read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            sys.exit("the receiver hung up")
        data += chunk
    return data


def wait_readable(fd: int, seconds: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(seconds * 1000))


(endpoint,) = os.environ["TOPO_SOCKET_OUT_CONNECT"].split()
host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
conn = socket.create_connection((host.strip("[]"), int(port)), timeout=DEADLINE)
conn.sendall(opening(b"PUB"))
read_exactly(conn, 64)  # its greeting
flags, size = read_exactly(conn, 2)
read_exactly(conn, size if not flags & 0x02 else struct.unpack(">Q", bytes([size]) + read_exactly(conn, 7))[0])

go = int(os.environ["TOPO_GO_FD"])
if not wait_readable(conn.fileno(), DEADLINE):
    sys.exit("no subscription came")
if wait_readable(go, HOLD):
    print("go while the subscription is unread", flush=True)
    sys.exit(4)
conn.recv(4096)  # the subscription, read: as a PUB's I/O thread takes it in
print("subscription read", flush=True)
start = time.monotonic()
if not wait_readable(go, DEADLINE) or os.read(go, 1) != b"1":
    sys.exit("no go")
print(f"go {time.monotonic() - start:.3f} s after the read", flush=True)
conn.sendall(b"\x01\x01t" + b"\x00\x05first")
conn.shutdown(socket.SHUT_WR)
wait_readable(conn.fileno(), DEADLINE)  # the receiver's hang-up (or more of it)
