"""A recording's last word, confirmed: a process does not close the way its recorded
copies went until their reader has read them all.

A process's tap sender PUSHes its recorded copies to an ipc PULL: the recorder's
(:mod:`topo.observe.taprecorder`), or on another host the agent's relay
(:mod:`topo.hosts.recordfeed`), and either reads them only as fast as it can pass them on.
Were the process to exit while that PULL is full, what it wrote last would still sit in
the kernel between the two, and a ZeroMQ PULL that is not reading drops that when its
peer hangs up: the recording's tail, its ``end`` marker included, would be lost. So at
its end the process asks the reader, on a REQ of its own, whether it has read the ``end``
of each recorded tap (named by tap, instance and the marker's time, so that a restarted
process's ``end`` is never taken for its predecessor's), and closes once told so, or at
its finish's deadline.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import zmq


def ask(ctx: zmq.Context[Any], endpoint: str, ends: Sequence[tuple[bytes, bytes, int]], deadline: float) -> bool:
    """``ends``: (tap, instance, time_ns) of the ``end`` markers sent; True once the reader
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


class Asks:
    """The answering side, in whoever reads the recorded copies (the agent's relay, the
    recorder): the ``end`` markers read, by tap and instance, and the questions waiting
    for theirs (at most :data:`MAX_ASKS`; a malformed one is never answered)."""

    MAX_ASKS = 256

    def __init__(self) -> None:
        #: Per recorded tap (id, instance): the time of the last ``end`` read.
        self.ends: dict[tuple[bytes, bytes], int] = {}
        self._waiting: list[tuple[bytes, list[tuple[tuple[bytes, bytes], int]]]] = []

    def ended(self, tap: bytes, instance: bytes, time_ns: bytes) -> None:
        if time_ns.isdigit() and len(time_ns) < 24:
            self.ends[(tap[:64], instance[:64])] = int(time_ns)

    def asked(self, frames: list[bytes]) -> None:
        """``[id, "", (tap, instance, time)...]`` from a REQ, as a ROUTER reads it."""
        body = frames[2:]
        if len(frames) < 3 or frames[1] != b"" or len(body) % 3 or len(body) > 3 * self.MAX_ASKS \
                or len(self._waiting) >= self.MAX_ASKS or not all(t.isdigit() for t in body[2::3]):
            return
        ends = [((body[i][:64], body[i + 1][:64]), int(body[i + 2])) for i in range(0, len(body), 3)]
        self._waiting.append((frames[0], ends))

    def answered(self) -> list[bytes]:
        """The askers whose every ``end`` is read (no longer waiting)."""
        ready = [who for who, ends in self._waiting if self._read(ends)]
        self._waiting = [(who, ends) for who, ends in self._waiting if not self._read(ends)]
        return ready

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def _read(self, ends: list[tuple[tuple[bytes, bytes], int]]) -> bool:
        return all(self.ends.get(key, -1) >= t for key, t in ends)
