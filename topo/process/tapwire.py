"""The messages a tap's sender (:mod:`topo.process.tapping`) sends its reader: their
format, as its readers (:mod:`topo.supervisor.tapreader`, :mod:`topo.observe.taprecorder`)
decode it and as those who pass them on need to know it: a relay between hosts
(:mod:`topo.hosts.taprelay`, :mod:`topo.supervisor.remotetaps`) reads only their first
frames, and counts what it drops.

Copies travel in batches, ``[tap, instance, b"copies", time_ns, missed, count, packed]``:
up to :data:`BATCH_COPIES` copies and about :data:`BATCH_BYTES` bytes of frames in one
message, because a zmq message per copy (six frames, each a send in a thread that shares
the node's interpreter lock) cost the tapped node more than the copy itself. ``packed``
holds, per copy, a :data:`COPY_HEAD` (direction ``o``/``i``, time in ns since the epoch,
frame count) then each frame as a :data:`FRAME_LEN` length and its bytes. A high-water
mark counts messages, not copies: whoever queues batches divides the copies it may hold
by :data:`BATCH_COPIES` (:func:`batch_hwm`). Batches are as small as the copies queued
when the sender takes them (one copy, at a slow rate): a socket sized in batches for
``N`` copies holds from ``N`` up to :data:`BATCH_COPIES` times ``N`` copies, and never more
than its messages times :data:`BATCH_BYTES` bytes (one copy a message had no byte bound).

A single copy may also come as ``[tap, instance, direction, time_ns, missed, *frames]``
with direction ``in`` or ``out`` (readers accept both). A marker has no frames and the
direction :data:`ON` (the tap is on the socket), :data:`MISSED` (copies were lost with
nothing left to carry the count) or :data:`END` (the process sent all it had: the last
word of a recording's tap). ``missed`` is the running total of copies the tap lost.
"""

from __future__ import annotations

import struct
import time
from typing import Any, Sequence

#: Directions of the markers (frames-less messages) a reader gets.
ON, MISSED, END = "on", "missed", "end"
#: The direction frame of a batch of copies.
COPIES = "copies"
#: Most copies in one batch message: enough that the sender's zmq sends (each lets the
#: node's thread take the interpreter lock, and the sender wait to get it back) are few
#: per copy, few enough that a reader's socket, bounded in messages, holds a bounded
#: number of copies (and never more bytes than :data:`BATCH_BYTES` a message).
BATCH_COPIES = 32
#: A batch takes no more copies once its frames reach this many bytes (a single larger
#: copy goes alone).
BATCH_BYTES = 64 * 1024
#: Per copy in a batch: direction (``o``/``i``), time_ns, number of frames.
COPY_HEAD = struct.Struct("<cQI")
#: Per frame in a batch: its length.
FRAME_LEN = struct.Struct("<I")
#: A one-frame copy's head and its frame's length at once (the sender's common case).
ONE_FRAME_HEAD = struct.Struct("<cQII")

_ON, _MISSED, _COPIES = ON.encode(), MISSED.encode(), COPIES.encode()
_MARKERS = frozenset({_ON, _MISSED, END.encode()})
_DIRECTIONS = {b"o": "out", b"i": "in"}


def batch_hwm(copies: int) -> int:
    """The high-water mark, in batch messages, of a socket that may hold ``copies`` copies."""
    return max(1, copies // BATCH_COPIES)


def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame.bytes)


def batch_count(frame: Any) -> int:
    """The ``count`` frame of a batch, checked: ValueError unless 1 to :data:`BATCH_COPIES`."""
    text = _bytes(frame)
    if not text.isdigit() or len(text) > 3:
        raise ValueError(f"not a batch's count: {text[:8]!r}")
    count = int(text)
    if not 1 <= count <= BATCH_COPIES:
        raise ValueError(f"a batch of {count} copies")
    return count


def copies_in(frames: Sequence[Any]) -> int:
    """How many copies one message of the sender's format carries: a batch's count, 1 for a
    single copy, or 0 for a marker (or a batch that is not one). What a relay that drops the
    message must count as missed; frames as ``bytes`` or ``zmq.Frame``."""
    if len(frames) < 3:
        return 0
    direction = _bytes(frames[2])
    if direction == _COPIES:
        if len(frames) != 7:
            return 0
        try:
            return batch_count(frames[5])
        except ValueError:
            return 0
    return 0 if direction in _MARKERS else 1


def unpack(count: int, packed: bytes) -> list[tuple[str, int, list[bytes]]]:
    """A batch's copies as (direction, time_ns, frames), oldest first; ValueError if
    ``packed`` does not hold exactly ``count`` well-formed copies."""
    out: list[tuple[str, int, list[bytes]]] = []
    pos, end = 0, len(packed)
    head, frame_len = COPY_HEAD, FRAME_LEN
    try:
        for _ in range(count):
            code, time_ns, n = head.unpack_from(packed, pos)
            pos += head.size
            if n > end - pos:  # each frame takes at least its length's 4 bytes
                raise ValueError("a copy with more frames than bytes")
            frames = []
            for _ in range(n):
                (size,) = frame_len.unpack_from(packed, pos)
                pos += frame_len.size
                if size > end - pos:
                    raise ValueError("a frame beyond the batch's end")
                frames.append(packed[pos:pos + size])
                pos += size
            out.append((_DIRECTIONS[code], time_ns, frames))
    except (struct.error, KeyError) as e:
        raise ValueError(f"a malformed batch: {e}") from None
    if pos != end:
        raise ValueError("bytes after a batch's last copy")
    return out


def owed_marker(frames: Sequence[Any]) -> list[bytes] | None:
    """What a relay that drops this message still owes the reader, as a marker: an ``on``
    marker itself, or a ``missed`` marker with the running total the message carried (the
    sender counts it told once it handed the message on, so a relay's drop must not lose
    it). Markers of one tap and instance and kind replace each other: only the last is owed."""
    if len(frames) < 5:
        return None
    tap_id, instance, direction, _, missed = (_bytes(f) for f in frames[:5])
    kind = direction if direction == _ON else _MISSED
    return [tap_id, instance, kind, b"%d" % time.time_ns(), missed]
