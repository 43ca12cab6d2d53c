"""One multipart message as one MCAP message: the byte layout, both ways.

MCAP stores one opaque byte string per message; a ZeroMQ message is a list of frames, and
where one frame ends is part of what was sent (an envelope, a topic frame). The layout,
called ``zmq-frames`` in a recording's channels (docs/recording.md, for other tools)::

    u32 N                      the number of frames, little-endian like all of MCAP
    N times: u32 LEN, LEN bytes

An empty message (N = 0) cannot be sent by ZeroMQ but is still representable. Reading
trusts nothing: a count or a length that runs past the data, or bytes left over, is a
:class:`FramesError`.
"""

from __future__ import annotations

import struct
from typing import Sequence

#: The ``message_encoding`` of a recording's channels.
ENCODING = "zmq-frames"

_U32 = struct.Struct("<I")
#: A frame's (or the count's) largest value: a u32.
MAX_LENGTH = 2**32 - 1


class FramesError(ValueError):
    """Bytes that are not a ``zmq-frames`` message."""


def encode(frames: Sequence[bytes]) -> bytes:
    """The bytes of one message; a frame of 4 GiB or more cannot be recorded."""
    parts = [_U32.pack(len(frames))]
    for frame in frames:
        if len(frame) > MAX_LENGTH:
            raise FramesError(f"a frame of {len(frame)} bytes: at most {MAX_LENGTH} can be recorded")
        parts.append(_U32.pack(len(frame)))
        parts.append(bytes(frame))
    return b"".join(parts)


def decode(data: bytes) -> list[bytes]:
    """The frames of one message, or :class:`FramesError` saying where the bytes go wrong."""
    view = memoryview(data)
    if len(view) < 4:
        raise FramesError(f"{len(view)} bytes: too short for the frame count")
    (count,) = _U32.unpack_from(view, 0)
    # each frame takes at least its 4-byte length: a count beyond that is a lie, refused
    # before it sizes anything
    if count > (len(view) - 4) // 4:
        raise FramesError(f"{count} frames claimed in {len(view)} bytes")
    frames: list[bytes] = []
    at = 4
    for i in range(count):
        if at + 4 > len(view):
            raise FramesError(f"frame {i}: its length runs past the end ({len(view)} bytes)")
        (length,) = _U32.unpack_from(view, at)
        at += 4
        if at + length > len(view):
            raise FramesError(f"frame {i}: {length} bytes claimed, {len(view) - at} left")
        frames.append(bytes(view[at:at + length]))
        at += length
    if at != len(view):
        raise FramesError(f"{len(view) - at} bytes after the last of {count} frames")
    return frames
