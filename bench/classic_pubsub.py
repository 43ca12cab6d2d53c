"""The classic way, as the ipc example of a common ZeroMQ cheat sheet does it: the
baseline of ``bench/launch.py``.

    python bench/classic_pubsub.py SOCKET_PATH [--slow]

multiprocessing ``spawn``; the SUB process is started first, then ``time.sleep(0.1)``,
then the PUB process, which binds, sleeps 0.2 s "to let subscribers connect", sends one
message, sleeps 0.1 s and closes. Only two things differ from the cheat sheet: the
subscriber has a 1 s receive timeout and prints whether it got the message (so a lost
message is counted, not hung on), and the socket path is an argument (a fresh temporary
directory per run). With ``--slow`` the subscriber first imports ``bench.slow_nodes``,
whose import takes 0.3 s: the same late subscriber as in topo's run.
"""

import importlib
import multiprocessing as mp
import os
import sys
import time

import zmq

RECEIVED = "bench: received"
LOST = "bench: lost"
RECEIVE_TIMEOUT_MS = 1000  # bench.launch_pubsub.RECEIVE_TIMEOUT


def publisher(socket_path: str) -> None:
    # Clean stale socket
    if os.path.exists(socket_path):
        os.unlink(socket_path)

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{socket_path}")

    time.sleep(0.2)  # allow subscribers to connect
    pub.send_multipart([b"topic", b"hello"])
    time.sleep(0.1)

    pub.close()
    ctx.term()


def subscriber(socket_path: str, slow_module: str | None) -> None:
    if slow_module:
        importlib.import_module(slow_module)  # the slow import of the subscriber's code

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVTIMEO, RECEIVE_TIMEOUT_MS)

    sub.connect(f"ipc://{socket_path}")
    sub.setsockopt(zmq.SUBSCRIBE, b"topic")

    try:
        sub.recv_multipart()
        print(RECEIVED, flush=True)
    except zmq.Again:
        print(LOST, flush=True)

    sub.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)  # safe default
    path = sys.argv[1]
    slow = "bench.slow_nodes" if "--slow" in sys.argv[2:] else None

    p_sub = mp.Process(target=subscriber, args=(path, slow))
    p_pub = mp.Process(target=publisher, args=(path,))

    p_sub.start()
    time.sleep(0.1)   # ensure SUB starts first
    p_pub.start()

    p_pub.join()
    p_sub.join()
