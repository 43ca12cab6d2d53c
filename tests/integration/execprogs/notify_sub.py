"""An exec SUB in plain pyzmq (no topo import): binds or connects as told, says STATUS,
waits for a line on the FIFO named by its first argument (the test's go-ahead), then says
READY=1 and prints the first message it receives."""

import json
import os
import socket
import sys

import zmq


def notify(text: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(text.encode(), os.environ["NOTIFY_SOCKET"])


wiring = json.loads(os.environ["TOPO_SOCKETS"])["in"]
sub = zmq.Context().socket(zmq.SUB)
for ep in wiring["bind"]:
    sub.bind(ep)
for ep in wiring["connect"]:
    sub.connect(ep)
for topic in wiring["subscribe"]:
    sub.setsockopt_string(zmq.SUBSCRIBE, topic)
notify("STATUS=waiting for the test")
with open(sys.argv[1]) as fifo:
    fifo.readline()
notify("READY=1\nSTATUS=serving")
print("got", sub.recv_multipart()[-1].decode(), flush=True)
