"""The supervisor's poll over ZeroMQ sockets and plain descriptors.

``zmq.Poller`` keeps its sockets in a list and, on ``unregister``, moves every later
entry's index down one, in Python: taking one descriptor out costs the number of
descriptors registered after it. A loop that watches three descriptors per process (its
pidfd and two output pipes) and takes them out as each process ends paid that for every
end: with 200 programs, a fifth of the run's own work (``bench/exec.py --nodes 200``).
:class:`Poller` answers the same calls, and takes a descriptor out by moving the last
entry into its place: the same cost at any size. What it gives up is the order of
registration among the entries (a poll's answer lists the ready ones in the order they
are kept); nothing here reads an order into that list.
"""

from __future__ import annotations

from typing import Any

import zmq


class Poller(zmq.Poller):
    """A ``zmq.Poller`` (passed wherever one is), its three calls done here with the same
    meanings (``register(x, 0)`` takes ``x`` out; ``unregister`` of what is not there
    raises ``KeyError``), over its public ``sockets`` list and an index of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.sockets: list[tuple[Any, int]] = []
        self._index: dict[Any, int] = {}

    def register(self, sock: Any, flags: int = zmq.POLLIN | zmq.POLLOUT) -> None:
        if not flags:
            if sock in self._index:
                self.unregister(sock)
            return
        at = self._index.get(sock)
        if at is None:
            self._index[sock] = len(self.sockets)
            self.sockets.append((sock, flags))
        else:
            self.sockets[at] = (sock, flags)

    def unregister(self, sock: Any) -> None:
        at = self._index.pop(sock)
        last = self.sockets.pop()
        if at < len(self.sockets):
            self.sockets[at] = last
            self._index[last[0]] = at

    def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """The ready entries (socket or descriptor, events); ``timeout`` in milliseconds,
        None or negative: until one is ready."""
        if timeout is None or timeout < 0:
            timeout = -1
        return list(zmq.zmq_poll(self.sockets, int(timeout)))
