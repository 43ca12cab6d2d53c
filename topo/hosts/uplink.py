"""What an agent says to its supervisor, in order, within a bound: its own reports, its
processes' events, and their output lines, read from pipes the agent owns.

A process on another host writes its output as a local one does: its lines and its fds 1/2
go into pipes whose read ends its agent holds (:mod:`topo.supervisor.pipes`, the same code
as the supervisor's), so its last words are in the agent's hands the moment the write
returns, even if the process dies the next instant. The agent sends each line on as an
``output`` event; the supervisor shows and logs it exactly as a local process's line.

Order: everything goes through one FIFO in front of the agent's DEALER, so the supervisor
gets it in the order the agent read it. A process's pipes are read to the bottom before
its events "exited", "failed", "stopped" and "bye" are passed on, and before its end is
reported (as the supervisor does for a local process).

Bound: the agent never waits for the supervisor, and never holds more than a little. While
anything waits in the FIFO (the DEALER's queue is full: the supervisor, or the network, is
behind), the agent reads neither the pipes nor its processes' event sockets, so a printing
node waits in ``print`` and a process's events wait in its own outbox, as a local process
waits for a terminal that is behind. What waits here is therefore at most what one read
of one pipe returned (64 KiB), the drain of a process at its end (what its pipes held) and
the agent's own few reports; beyond that, only the DEALER's queue (its high-water mark).
Once the supervisor is gone (:meth:`Uplink.cut_off`), everything is read and dropped, so
that the processes stopping are never kept waiting in ``print``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Iterable

import zmq

from topo.process.control import Kind, Message
from topo.supervisor.pipes import Pipes


class Uplink:
    """The agent's DEALER to its supervisor, with the FIFO in front of it and the pipes of
    the agent's processes (:attr:`pipes`) that feed it; see the module."""

    def __init__(self, sock: zmq.Socket[Any], poller: zmq.Poller, feeds: tuple[zmq.Socket[Any], ...]) -> None:
        self.sock = sock
        self._poller = poller
        #: The sockets the processes' events come in on: not read while the FIFO is behind.
        self._feeds = feeds
        self._queue: deque[list[bytes]] = deque()
        self._held = False
        #: The supervisor is gone: nothing is queued or sent any more.
        self.cut = False
        #: The processes' output pipes; each line becomes an ``output`` event in the FIFO.
        self.pipes = Pipes(poller, self._line)
        for sock_ in (sock, *feeds):
            poller.register(sock_, zmq.POLLIN)

    @property
    def behind(self) -> bool:
        """Messages wait for room in the DEALER: read no more input meanwhile."""
        return bool(self._queue)

    def send(self, frames: list[bytes]) -> None:
        """Queued behind everything before it and sent as soon as the DEALER takes it;
        never blocks, never drops (unless :attr:`cut`)."""
        if self.cut:
            return
        self._queue.append(frames)
        self.flush()

    def report(self, message: Message) -> None:
        self.send(message.encode())

    def report_all(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.report(message)

    def beat(self, message: Message) -> None:
        """A heartbeat, only if nothing waits: a beat queued behind other messages would
        tell the supervisor nothing they do not (any message shows the agent alive)."""
        if not self._queue:
            self.report(message)

    def flush(self) -> None:
        """Sends what the DEALER takes now; call when the poller says it has room."""
        while self._queue:
            try:
                self.sock.send_multipart(self._queue[0], zmq.NOBLOCK)
            except zmq.Again:
                break
            self._queue.popleft()
        self._hold(bool(self._queue))

    def cut_off(self) -> None:
        """The supervisor is gone: what waits is dropped, and from now on every line and
        event is read and dropped, so no process is kept waiting for a reader."""
        self.cut = True
        self._queue.clear()
        self._hold(False)

    def finish(self, deadline: float) -> None:
        """The last words: every pipe left is read and closed, and the FIFO handed to the
        DEALER until it is empty or ``deadline`` (``time.monotonic()``) has passed."""
        self.pipes.close_all()
        while self._queue and not self.cut:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1, zmq.POLLOUT):
                return
            self.flush()

    def _line(self, name: str, line: str, err: bool) -> None:
        self.report(Message(Kind.OUTPUT, {"instance": name, "line": line, "err": err}))

    def _hold(self, held: bool) -> None:
        """While held, the pipes and the feeds are out of the poller (they would wake it for
        input it does not read) and the DEALER is polled for room too."""
        if held == self._held:
            return
        self._held = held
        self.pipes.hold(held)
        self._poller.register(self.sock, zmq.POLLIN | (zmq.POLLOUT if held else 0))
        for feed in self._feeds:
            if held:
                self._poller.unregister(feed)
            else:
                self._poller.register(feed, zmq.POLLIN)
