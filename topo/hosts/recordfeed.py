"""An agent's end of ``topo up --record`` for its host's nodes: their recorded copies,
relayed to the supervisor without losing one while everyone is alive.

The agent starts its processes with a :class:`topo.process.boot.Recording` whose endpoint
is this PULL, an ipc file in its private directory (:data:`RECORD`), apart from the
taps' one (:mod:`topo.hosts.taprelay`): a plain tap's copies may be dropped when the way
is full, a recording's may not, and each must be able to stop reading its own.

The copies go up on the taps' DEALER on credit: at most a window ahead of what the
supervisor has passed on to the recorder (:mod:`topo.supervisor.recordways`). Out of
credit, or with the DEALER full, this PULL is not read: the copies wait in the processes'
PUSHes, then in their taps, whose nodes wait for room (:mod:`topo.process.taprecord`).
A copy read is never dropped here: held until the DEALER takes it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from topo.supervisor.recordways import WINDOW
from topo.supervisor.remotetaps import COPY

if TYPE_CHECKING:
    from topo.process.boot import Recording

#: The agent's ipc file its processes' recorded copies go to.
RECORD = "rec"
#: Copies waiting in the PULL before the processes' PUSHes are full.
HWM = 1000


class RecordFeed:
    """The PULL, the copy held (the DEALER full), the credits left."""

    def __init__(self, ctx: zmq.Context[Any], directory: Path) -> None:
        self.endpoint = f"ipc://{directory}/{RECORD}"
        self.pull = ctx.socket(zmq.PULL)
        self.pull.linger = 0
        self.pull.rcvhwm = HWM
        self.pull.bind(self.endpoint)
        self.credit = WINDOW
        self.held: list[Any] | None = None

    def granted(self, frames: list[bytes]) -> None:
        """``[CREDIT, count]`` from the supervisor (never above a window: an agent
        launched again starts with a full one, and old grants may still come)."""
        if len(frames) == 2 and frames[1].isdigit() and len(frames[1]) < 10:
            self.credit = min(WINDOW, self.credit + int(frames[1]))

    @property
    def reading(self) -> bool:
        """Whether the PULL is to be read: credit left, nothing held."""
        return self.credit > 0 and self.held is None

    def relay(self, up: zmq.Socket[Any], most: int = HWM) -> bool:
        """What is held, then up to ``most`` copies read, sent on ``up`` while credit
        lasts; True if one was sent."""
        sent = False
        for _ in range(most):
            if self.credit <= 0:
                break
            if self.held is None:
                try:
                    self.held = [COPY, *self.pull.recv_multipart(zmq.NOBLOCK, copy=False)]
                except zmq.Again:
                    break
            try:
                up.send_multipart(self.held, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break  # the way up is full: held, the PULL no longer read
            self.held = None
            self.credit -= 1
            sent = True
        return sent

    def flush(self, up: zmq.Socket[Any], credits: Any, deadline: float) -> None:
        """At the agent's end (its processes have ended): what they sent goes up before
        ``deadline``; ``credits()`` reads the supervisor's grants meanwhile."""
        while time.monotonic() < deadline:
            self.relay(up)
            if self.held is None and not self.pull.poll(0):
                return
            credits()
            up.poll(10, zmq.POLLIN | (zmq.POLLOUT if self.credit > 0 else 0))

    def close(self) -> None:
        self.pull.close(linger=0)


def recording_here(record: Recording | None, feed: RecordFeed | None) -> Recording | None:
    """What the agent's processes are started with: the recorded sockets, their copies to
    its ``feed`` (None: nothing recorded, or no way to the supervisor)."""
    return record._replace(endpoint=feed.endpoint) if record is not None and feed is not None else None
