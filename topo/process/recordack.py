"""A recording's last word, confirmed: a process on another host does not close the way
its recorded copies went until its agent has read them all.

A process's tap sender PUSHes its recorded copies to the agent's relay (an ipc PULL,
:mod:`topo.hosts.recordfeed`), which reads them only as fast as the recorder takes them.
Were the process to exit while that PULL is full, what it wrote last would still sit in
the kernel between the two, and a ZeroMQ PULL that is not reading drops that when its
peer hangs up: the recording's tail, its ``end`` marker included, would be lost. So at
its end the process asks the relay, on a REQ of its own, whether it has read the ``end``
of each recorded tap (named by tap, instance and the marker's time, so that a restarted
process's ``end`` is never taken for its predecessor's), and closes once told so, or at
its finish's deadline.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import zmq


def ask(ctx: zmq.Context[Any], endpoint: str, ends: Sequence[tuple[bytes, bytes, int]], deadline: float) -> bool:
    """``ends``: (tap, instance, time_ns) of the ``end`` markers sent; True once the relay
    has read them all, False at ``deadline``."""
    if not ends:
        return True
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    try:
        req.connect(endpoint)
        req.send_multipart([part for tap, instance, t in ends for part in (tap, instance, b"%d" % t)])
        wait = max(0.0, deadline - time.monotonic())
        return bool(req.poll(int(wait * 1000), zmq.POLLIN)) and req.recv() == b"ok"
    except zmq.ZMQError:
        return False
    finally:
        req.close(linger=0)
