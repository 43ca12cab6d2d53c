"""One message put into a node's receiving socket from outside, as a linked peer would:
the core of ``topo send``, shared by the command (a node of this host) and an agent (a
node of its host, :mod:`topo.hosts.taprelay`).

The injector dials an endpoint the node's socket binds with a socket of the
complementary type: a publisher for a SUB, a PUSH for a PULL, a REQ for a REP, a DEALER
for a ROUTER. The node's process is not asked to do anything: its code receives the
message from its own socket as from any linked peer. Nothing here waits longer than the
timeout plus the linger.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from topo.errors import TopoError

if TYPE_CHECKING:
    from topo.process.curve import HostKeys

#: Receiving socket type → the injector's type.
INJECTORS = {"SUB": "XPUB", "XSUB": "XPUB", "PULL": "PUSH", "REP": "REQ", "ROUTER": "DEALER"}
#: Node types that may answer the injector (the injector waits for it up to the timeout).
ANSWERING = frozenset({"REP", "ROUTER"})
#: How long the injector's socket may still deliver once the message is handed to it (ms).
LINGER_MS = 1000


def deliver(kind: str, address: str, name: str, frames: list[bytes], timeout: float,
            keys: HostKeys | None = None, server_host: str = "") -> list[bytes] | None:
    """Sends ``frames`` to the socket ``name`` (of type ``kind``) at ``address`` and returns
    the reply (None: none within ``timeout``, or a socket that does not answer). With
    ``keys``, the connection is a CURVE client of ``server_host``'s. A peer that cannot be
    reached within ``timeout``, or a SUB that would drop the message, is a
    :class:`TopoError`."""
    import zmq  # here: the command line imports this module for its tables, and starts faster without

    from topo.process.curve import dial

    # a context of its own, terminated below: closing a socket only hands what it holds
    # to libzmq's I/O thread, and a command's exit (os._exit) would end that thread with
    # the message still in it; ctx.term() waits for it, the linger at most
    ctx: Any = zmq.Context()
    sock: Any = ctx.socket(getattr(zmq, INJECTORS[kind]))
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # ready to send only once really connected
    if keys is not None:
        dial(sock, keys, server_host)
    deadline = time.monotonic() + timeout
    try:
        sock.connect(address)
        if kind in ("SUB", "XSUB"):
            _await_subscription(sock, name, frames[0], deadline)
        elif not sock.poll(_left_ms(deadline), zmq.POLLOUT):
            raise TopoError(f"could not reach {name} at {address} within {timeout:g}s")
        sock.send_multipart(frames, zmq.NOBLOCK)
        if kind not in ANSWERING:
            return None
        if not sock.poll(_left_ms(deadline), zmq.POLLIN):
            return None
        reply: list[bytes] = sock.recv_multipart()
        return reply
    finally:
        sock.close()
        ctx.term()


def _left_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def _await_subscription(sock: Any, name: str, first: bytes, deadline: float) -> None:
    """A SUB drops what it has not subscribed to, and a publisher sends only once the
    subscriptions came: waits for one that the message's first frame matches."""
    import zmq

    seen: list[bytes] = []
    while sock.poll(_left_ms(deadline), zmq.POLLIN):
        sub = sock.recv()
        if sub[:1] == b"\x01":
            seen.append(sub[1:])
            if first.startswith(sub[1:]):
                return
    if seen:
        topics = ", ".join(repr(t.decode("utf-8", "backslashreplace")) for t in seen)
        raise TopoError(f"{name} subscribes only to {topics}: the message's first frame "
                        "matches none, so it would be dropped; nothing sent")
    raise TopoError(f"{name} subscribed to nothing within the timeout: nothing sent")
