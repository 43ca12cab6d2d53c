"""Creating one node's sockets from the plan: types, options, subscriptions.

A declared PUB is created as an XPUB that reports every subscription (``XPUB_VERBOSE``):
that is how the gate sees subscribers arrive. Once the node runs, the socket is a
:class:`PubSocket`, which behaves as a PUB and now and then discards the subscription
messages that keep arriving (a subscriber restarting, unsubscribing), so they never pile
up in a long run.
"""

from __future__ import annotations

from typing import Any

import zmq

from topo.model import SocketType
from topo.plan import PlannedSocket

#: Sends between two discards of pending subscription messages: cheap enough to vanish
#: next to a send, frequent enough that a busy publisher holds only a handful.
DRAIN_EVERY = 64


class PubSocket(zmq.Socket):  # type: ignore[type-arg]
    """A PUB as far as the node can tell; underneath, the gate's verbose XPUB."""

    _topo_sends = 0

    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False,  # type: ignore[override]
             **kwargs: Any) -> Any:
        self._topo_sends += 1
        if self._topo_sends % DRAIN_EVERY == 0:
            self.drain_subscriptions()
        return super().send(data, flags, copy=copy, track=track, **kwargs)

    def drain_subscriptions(self) -> int:
        dropped = 0
        try:
            while int(self.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                self.recv(zmq.NOBLOCK)
                dropped += 1
        except zmq.ZMQError:
            pass
        return dropped

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        # A PUB cannot receive; only the drain calls this, always with NOBLOCK.
        if not flags & zmq.NOBLOCK:
            raise zmq.ZMQError(zmq.ENOTSUP, "a PUB socket cannot receive")
        return super().recv(flags, copy=copy, track=track)


def option_constant(name: str) -> int:
    return int(getattr(zmq, name.upper()))


def build(ctx: zmq.Context[Any], planned: PlannedSocket, linger_ms: int) -> zmq.Socket[Any]:
    """The socket, options set and subscriptions made, not yet bound or connected."""
    if planned.type is SocketType.PUB:
        sock: zmq.Socket[Any] = ctx.socket(zmq.XPUB, socket_class=PubSocket)
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    else:
        sock = ctx.socket(getattr(zmq, planned.type.value))
    sock.setsockopt(zmq.LINGER, linger_ms)
    for name, value in planned.options.items():
        constant = option_constant(name)
        if isinstance(value, str):
            sock.setsockopt(constant, value.encode())
        else:
            sock.setsockopt(constant, int(value))
    for topic in planned.subscribe:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    return sock
