"""Where a tap put on in the middle of a message begins: at the next message.

A tap is put on from another thread (:mod:`topo.process.tapping`) while the node may be
inside pyzmq's ``send_multipart`` or ``recv_multipart``, between two frames: the frames
after the socket's class was swapped reach the tapped ``send`` or ``recv``, the first ones
did not. Shown as they came they made a message nobody sent (``topo echo`` printed
``[0] tick 16`` for ``[b"a.", b"tick 16"]``, once in two full test runs). So a tap's
first frame is looked at once: when it is not the first of the message being sent or
received, the rest of that message is skipped and the tap begins with the next one.

How the first frame is told apart: pyzmq's ``send_multipart`` calls ``send`` with each of
its ``msg_parts`` in turn, so a frame that is not ``msg_parts[0]`` is a tail; its
``recv_multipart`` receives the first frame while building ``parts`` and the others once
``parts`` is bound. The caller is looked for one level up too (a relinked socket's
``send`` wraps the tapped one). A message the node sends or receives frame by frame with
its own calls (``send(..., zmq.SNDMORE)``) is not seen through: its tail may still show
as a message of its own (docs/observing.md). Only a tap's first frame pays for the look.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any, Protocol

import zmq


class Tap(Protocol):
    """What is looked at of a :class:`topo.process.tap.Tap` (which imports this module)."""

    _parts_out: list[bytes]
    _parts_in: list[bytes]


#: A tap's frames so far, in either direction, before its first frame (the object only
#: tells the state: never appended to).
UNSEEN: list[bytes] = [b"(no frame yet)"]
#: The rest of a message begun before the tap: skipped up to its last frame.
SKIPPING: list[bytes] = [b"(a message begun before the tap)"]

_SEND_MANY = zmq.Socket.send_multipart.__code__
_RECV_MANY = zmq.Socket.recv_multipart.__code__
_getframe = getattr(sys, "_getframe", None)


def skipped_out(tap: Tap, data: Any, more: int) -> bool:
    """Whether ``tap`` skips this frame while :data:`UNSEEN` or :data:`SKIPPING`; called
    by the tapped ``send`` itself (whose caller is looked at)."""
    if tap._parts_out is UNSEEN:
        caller = _multipart_caller(_SEND_MANY)
        if caller is None or _first_sent(caller, data):
            tap._parts_out = []
            return False
    tap._parts_out = SKIPPING if more else []
    return True


def skipped_in(tap: Tap, more: int) -> bool:
    """As :func:`skipped_out`, for a frame received, called by the tapped ``recv``."""
    if tap._parts_in is UNSEEN:
        caller = _multipart_caller(_RECV_MANY)
        if caller is None or "parts" not in caller.f_locals:
            tap._parts_in = []
            return False
    tap._parts_in = SKIPPING if more else []
    return True


def _multipart_caller(code: Any) -> FrameType | None:
    """The pyzmq multipart call (of ``code``) the tapped method was called from, if any:
    frames 0 to 2 are this function, ``skipped_*`` and the tapped method."""
    if _getframe is None:
        return None
    try:
        frame: FrameType | None = _getframe(3)
    except ValueError:
        return None
    for _ in range(2):
        if frame is None:
            return None
        if frame.f_code is code:
            return frame
        frame = frame.f_back
    return None


def _first_sent(caller: FrameType, data: Any) -> bool:
    """Whether ``data`` is the first of ``send_multipart``'s parts (the same object)."""
    parts = caller.f_locals.get("msg_parts")
    try:
        return parts is None or data is parts[0]
    except (TypeError, IndexError):
        return True
