"""Injection endpoints: where ``topo send`` reaches a receiving socket that no peer's dial
would reach.

``topo send`` puts a message into a node's receiving socket the way a linked peer does:
it dials an endpoint the socket binds, with the complementary type. Most receiving
sockets bind nothing a process outside the run could dial, though: a SUB or PULL with one
sender connects to it (the busier end binds), nodes sharing a process link over inproc,
and a tcp endpoint is CURVE, whose keys stay with the run's processes. Such a socket gets
one more bind of its own, an ipc file in the run's private directory (mode 0700: only the
run's user can reach it), made by the node's process before the node's code runs and
before any CURVE option is set on the socket (libzmq copies a socket's options per bind:
this one stays plain while the tcp ones are CURVE). No peer sees it and no delivery
changes; a receiving socket merely listens at one more address, which only ``topo send``
dials, and only while the node runs.

Not for a PAIR (libzmq gives it one peer, its own) nor a DEALER (what it sends is dealt
among its peers: an injector would take a share), nor the sending types. A socket that
already binds a plain ipc or tcp endpoint, or an ``external:`` one, is dialled there and
gets none.
"""

from __future__ import annotations

from typing import Iterable

from topo.file.model import SocketType, Transport

#: The receiving socket types an injector can join as one more peer without taking
#: anything from the others (fair-queued input, replies routed to the asker).
INJECTABLE = frozenset({SocketType.SUB, SocketType.XSUB, SocketType.PULL, SocketType.REP, SocketType.ROUTER})


def needs_endpoint(kind: SocketType, binds: Iterable[tuple[Transport, bool]], external_binds: Iterable[str]) -> bool:
    """Whether a socket of type ``kind`` that binds ``binds`` (transport, CURVE) and the
    outside endpoints ``external_binds`` (tcp or ipc, always plain) needs an injection
    endpoint: it can be injected into, and nothing it binds can be dialled plainly."""
    if kind not in INJECTABLE or any(True for _ in external_binds):
        return False
    return not any(transport is Transport.IPC or (transport is Transport.TCP and not secure)
                   for transport, secure in binds)
