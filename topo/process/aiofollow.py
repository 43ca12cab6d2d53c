"""An async node's asyncio socket made to follow the plain socket it shadows when that one
is pointed at another libzmq socket (a scale-down's hand-over: :mod:`topo.process.handover`).

pyzmq's asyncio socket keeps, besides its own handle, the descriptor its event loop
watches (``ZMQ_FD`` of the socket it was made from); both must move to the new socket, or
the loop goes on watching a closed descriptor. What is used here is pyzmq's own, not
public: :func:`can_follow` says whether this pyzmq has it (25 to 27 do).
"""

from __future__ import annotations

from typing import Any

import zmq

#: pyzmq's own socket class, whose ``__init__`` points a socket object at a libzmq socket.
_Raw: Any = zmq.backend.Socket
_NEEDS = ("_shadow_sock", "_fd", "_send_futures", "_clear_io_state", "_init_io_state", "_current_loop")


def can_follow(aio: Any) -> bool:
    return all(hasattr(aio, name) for name in _NEEDS)


def follow(aio: Any, shadow: zmq.Socket[Any]) -> None:
    """``aio`` points where ``shadow`` now does, and its event loop watches the new
    socket's descriptor instead of the old one's. In the loop's own thread, with no send
    of it waiting (its future would stay with the old socket)."""
    aio._clear_io_state()
    _Raw.__init__(aio, shadow.context, shadow=shadow.underlying)
    aio._fd = shadow.FD
    if aio._current_loop is not None:
        aio._init_io_state(aio._current_loop)
