"""An agent's end of ``topo up --record`` for its host's nodes: their recorded copies,
relayed to the supervisor without losing one while everyone is alive.

The agent starts its processes with a :class:`topo.process.boot.Recording` whose endpoint
is this PULL, an ipc file in its private directory (:data:`RECORD`), apart from the
taps' one (:mod:`topo.hosts.taprelay`): a plain tap's copies may be dropped when the way
is full, a recording's may not, and each must be able to stop reading its own.

The copies go up on the taps' DEALER on credit: at most a window of bytes (and the one
message that crosses it) ahead of what the supervisor has passed on to the recorder
(:mod:`topo.supervisor.recordways`). Out of credit, or with the DEALER full, this PULL is not read: the copies wait in the processes'
PUSHes, then in their taps, whose nodes wait for room (:mod:`topo.process.taprecord`).
A copy read is never dropped here: held until the DEALER takes it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from topo.process.recordack import Asks
from topo.process.tapwire import END, ON
from topo.supervisor.recordways import FLUSHED, WINDOW, weight
from topo.supervisor.remotetaps import COPY

if TYPE_CHECKING:
    from topo.process.boot import Recording

#: The agent's ipc file its processes' recorded copies go to.
RECORD = "rec"
#: The agent's ipc file its processes ask on whether their last copies are in.
ACK = "rec-ack"
#: Copies waiting in the PULL before the processes' PUSHes are full.
HWM = 1000
_ON, _END = ON.encode(), END.encode()
#: Seconds the agent's end waits for credits before it gives the supervisor up.
FLUSH_STALL = 1.0


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
        #: Where the processes ask whether their ``end`` is read (:mod:`topo.process.recordack`).
        self.ack_endpoint = f"ipc://{directory}/{ACK}"
        self.ack = ctx.socket(zmq.ROUTER)
        self.ack.linger = 0
        self.ack.bind(self.ack_endpoint)
        self._asks = Asks()
        #: Recorded taps (id, instance) that said ``on``, less those that said ``end``: at
        #: the agent's end, their last copies are still to come.
        self.open: dict[tuple[bytes, bytes], int] = {}
        #: The supervisor has read this agent's :data:`FLUSHED`, so every copy before it.
        self.confirmed = False

    def granted(self, frames: list[bytes]) -> None:
        """``[CREDIT, bytes]`` from the supervisor (never above a window: an agent
        launched again starts with a full one, and old grants may still come)."""
        if len(frames) == 2 and frames[1].isdigit() and len(frames[1]) < 12:
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
                self._marker(self.held)
            try:
                up.send_multipart(self.held, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break  # the way up is full: held, the PULL no longer read
            self.credit -= weight(self.held[1:])  # may go below 0: one message crosses the window
            self.held = None
            sent = True
        return sent

    def _marker(self, message: list[Any]) -> None:
        if len(message) == 6:  # a marker: [COPY, tap, instance, direction, time, missed]
            direction = message[3].bytes
            if direction in (_ON, _END):
                key = (message[1].bytes[:64], message[2].bytes[:64])
                if direction == _END:
                    self._asks.ended(key[0], key[1], message[4].bytes)
                    if self._asks:
                        self._answer()
                count = self.open.get(key, 0) + (1 if direction == _ON else -1)
                if count > 0:
                    self.open[key] = count
                else:
                    self.open.pop(key, None)

    def asked(self) -> None:
        """Processes asking whether their ``end`` is read (:class:`Asks`)."""
        while True:
            try:
                self._asks.asked(self.ack.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        self._answer()

    def _answer(self) -> None:
        for who in self._asks.answered():
            try:
                self.ack.send_multipart([who, b"", b"ok"], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # it gave up waiting

    def flush(self, up: zmq.Socket[Any], credits: Any, deadline: float) -> None:
        """At the agent's end (its processes have ended): what they sent goes up, up to
        each recorded tap's ``end``, before ``deadline`` or until :data:`FLUSH_STALL`
        seconds pass in which the supervisor let none go (no credit, or the way up full:
        it is gone, and an orphan does not wait for it); ``credits()`` reads the
        supervisor's grants meanwhile. Then the word that all went (:data:`FLUSHED`),
        which the supervisor's end waits for."""
        progress = time.monotonic()
        while time.monotonic() < deadline:
            if self.relay(up) or (self.credit > 0 and self.held is None):
                # sent, or nothing held up by the supervisor: the stall counts only while it
                # is (a process's last copies slow to come, or this agent not given the CPU
                # for a second, gave the supervisor up with copies unsent: CI, loaded)
                progress = time.monotonic()
            if self.held is None and not self.open and not self.pull.poll(0):
                break
            if time.monotonic() >= progress + FLUSH_STALL:
                break  # (looked at after a try: a pause of this agent's own is no stall)
            credits()
            self.asked()  # a process whose last copies came late waits for its word to close
            if self.credit <= 0 or self.held is not None:
                up.poll(10, zmq.POLLIN | (zmq.POLLOUT if self.credit > 0 else 0))
            else:
                self.pull.poll(10)  # a process's last copies, still on their way
        # the supervisor waits for this word (all sent, or all that will be), not for a quiet
        # moment: it waits for room behind the last copies rather than be lost to a full DEALER
        try:
            if up.poll(max(1, int((deadline - time.monotonic()) * 1000)), zmq.POLLOUT):
                up.send_multipart([FLUSHED], zmq.NOBLOCK)
                self._confirmation(up, credits, deadline)
        except zmq.ZMQError:
            pass

    def _confirmation(self, up: zmq.Socket[Any], read: Any, deadline: float) -> None:
        """Until the supervisor says it read :data:`FLUSHED` (``read()`` takes what it sends,
        :meth:`confirm` included), or ``deadline``. Sent is not received: once ZeroMQ has
        handed the last copies to the kernel, the agent's context ends at once and it exits;
        with a supervisor behind (its ROUTER not reading, the connection's window shut) they
        were still in the agent's kernel, and the credits the supervisor kept granting,
        unread at the exit, made the kernel reset the connection and drop them, ``FLUSHED``
        too (a remote flood's last ~600 batches, 1 run in 5 under load)."""
        poller = zmq.Poller()
        poller.register(up, zmq.POLLIN)
        poller.register(self.ack, zmq.POLLIN)  # and a process asks after its ``end`` went up
        while not self.confirmed:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(int(left * 1000) + 1):
                return
            read()
            self.asked()

    def confirm(self, frames: list[bytes]) -> None:
        """``[FLUSHED]`` from the supervisor: it has read this agent's."""
        if len(frames) == 1:
            self.confirmed = True

    def close(self) -> None:
        self.pull.close(linger=0)
        self.ack.close(linger=0)


def recording_here(record: Recording | None, feed: RecordFeed | None) -> Recording | None:
    """What the agent's processes are started with: the recorded sockets, their copies to
    its ``feed`` (None: nothing recorded, or no way to the supervisor)."""
    if record is None or feed is None:
        return None
    return record._replace(endpoint=feed.endpoint, ack=feed.ack_endpoint)
