"""``run.tap("NODE.SOCKET")``: the messages on a live socket of a test's run, as an iterator.

The copies are taken in the node's own process without changing its delivery
(:mod:`topo.process.tapping`), through the run's control socket as ``topo echo`` takes
them (:mod:`topo.supervisor.tapreader`). :meth:`Run.tap <topo.testing.Run.tap>` returns
once the tap is on the socket (on every instance, for a node with replicas), so every
message the node sends or receives from then on is seen, in order.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from topo.errors import TopoError
from topo.supervisor.tapreader import TapMessage, TapReader

__all__ = ["Tap", "TapMessage", "TapTimeout"]


class TapTimeout(TopoError):
    """No message came on a tapped socket in time; says which socket and how long."""


class Tap:
    """The messages on ``target`` from the moment the tap is on: ``next(tap)`` (waits up to
    ``timeout`` seconds), ``tap.next(timeout=...)``, ``for message in tap``; each is a
    :class:`TapMessage` (``frames``, ``direction``, ``instance``, ``socket``, ``time_ns``).
    ``tap.messages`` holds every one read so far; ``tap.missed`` counts copies lost
    because the test read too slowly. A ``with`` block (or :meth:`close`) ends the tap."""

    def __init__(self, control: str, sockets_dir: str, target: str, directions: Sequence[str] = ("in", "out"),
                 timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self.messages: list[TapMessage] = []
        self.missed = 0
        self._reader = TapReader(control, sockets_dir, [target], directions).open()
        try:
            self._reader.wait_on(timeout)
        except BaseException:
            self._reader.close()
            raise

    def next(self, timeout: float | None = None) -> TapMessage:
        """The next message; :class:`TapTimeout` if none comes within ``timeout`` seconds
        (default: the tap's own)."""
        wait = self.timeout if timeout is None else timeout
        message = self._reader.next(wait)
        self.missed += self._reader.take_missed()
        if message is None:
            why = "the run has ended" if self._reader.gone.is_set() else f"none came within {wait:g}s"
            seen = f"{len(self.messages)} seen so far" + (f", {self.missed} missed" if self.missed else "")
            raise TapTimeout(f"waiting for a message on {self.target} ({seen}): {why}")
        self.messages.append(message)
        return message

    def __next__(self) -> TapMessage:
        return self.next()

    def __iter__(self) -> Iterator[TapMessage]:
        return self

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
