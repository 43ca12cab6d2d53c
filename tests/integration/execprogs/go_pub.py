"""An exec PUB in plain pyzmq (no topo import): connects, waits for topo's go on
TOPO_GO_FD, sends one message, exits."""

import os
import sys

import zmq

ctx = zmq.Context()
pub = ctx.socket(zmq.PUB)
for ep in os.environ["TOPO_SOCKET_OUT_BIND"].split():
    pub.bind(ep)
for ep in os.environ["TOPO_SOCKET_OUT_CONNECT"].split():
    pub.connect(ep)
if os.read(int(os.environ["TOPO_GO_FD"]), 1) != b"1":
    sys.exit(3)  # end of file: the run is stopping
pub.getsockopt(zmq.EVENTS)  # takes in the subscriptions that arrived
pub.send_multipart([b"t", b"first"])
pub.close(linger=5000)
# pyzmq does not end a context at the interpreter's exit: without this, what the I/O thread
# has not written to every subscriber's connection yet dies with the process
ctx.term()
