"""What a node function receives: its sockets, its arguments, and whether to go on."""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import logging


class Node:
    """The one argument of a node function (SPEC section 2)."""

    def __init__(self, name: str, replica: int, replicas: int, args: Mapping[str, Any],
                 sockets: Mapping[str, Any], stopping: threading.Event) -> None:
        self.name = name
        self.replica = replica
        #: How many instances of this node run (an extension of the SPEC's names).
        self.replicas = replicas
        self.args: Mapping[str, Any] = args
        self.sockets: Mapping[str, Any] = MappingProxyType(dict(sockets))
        self._log: logging.Logger | None = None
        self._stopping = stopping
        #: Set once ``topo apply`` removes this instance; True once it has read all its feed
        #: dealt it (:mod:`topo.process.handover`): the node ends as if its work were done.
        self._retired: Callable[[], bool] | None = None
        #: How many times this instance has been restarted (an extension of the SPEC).
        self.restarts = 0

    @property
    def log(self) -> logging.Logger:
        """A logger whose records show under the node's name (made on first use)."""
        if self._log is None:
            from topo.process.nodelog import node_logger

            self._log = node_logger(self.name)
        return self._log

    @property
    def running(self) -> bool:
        """False once the topology is stopping (or this instance was removed and has
        drained its input): loops should end and the function return."""
        retired = self._retired
        return not self._stopping.is_set() and (retired is None or not retired())

    def sleep(self, seconds: float) -> bool:
        """Paces a node (a sender at a chosen rate): waits ``seconds``, less when the
        topology stops meanwhile; returns :attr:`running`. Not a way to wait for a peer:
        the gate has done that before the node runs. In a ``def`` node only (an ``async
        def`` one awaits ``asyncio.sleep``)."""
        self._stopping.wait(max(0.0, seconds))
        return self.running

    def __repr__(self) -> str:
        return f"<Node {self.name} sockets={sorted(self.sockets)}>"
