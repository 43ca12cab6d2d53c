"""The messages a tap's sender (:mod:`topo.process.tapping`) sends its reader: their
format, as its readers (:mod:`topo.supervisor.tapreader`, :mod:`topo.observe.taprecorder`)
decode it and as those who pass them on need to know it: a relay between hosts
(:mod:`topo.hosts.taprelay`, :mod:`topo.supervisor.remotetaps`) reads only their first
frames, and counts what it drops.

Copies travel in batches: a message of one frame, up to :data:`BATCH_COPIES` copies and
about :data:`BATCH_BYTES` bytes of frames, because each zmq send is a hand-over of the
interpreter lock between the sender's thread and the node's (a message per copy cost the
node more than the copy itself; a batch of seven frames still cost it seven hand-overs).
The frame begins with a head (:func:`read_batch`: the batch's time in ns, the tap's running
count of misses, its number of copies, the lengths of the tap id and the instance, all
little-endian, ``<QQHHH``), then the tap id and the instance, then the copies laid out in
columns, ``count`` entries each: the directions (a byte each, ``o``/``i``), the times (ns
since the epoch, unsigned 64-bit), the frame counts (unsigned 32-bit), then every frame's
length (unsigned 32-bit), then every frame's bytes, in order. Columns, not a head per copy,
because then :func:`pack` and :func:`unpack` do their work in C (``array``, ``bytes.join``,
``map``) rather than in a Python loop per copy: the sender runs in the node's process,
under its interpreter lock, and every nanosecond it spends per copy is one the node waits.
A relay reads a message's tap id and instance with :func:`head`, whatever its kind.

A high-water mark counts messages, not copies: whoever queues batches divides the copies
it may hold by :data:`HWM_BATCH` (:func:`batch_hwm`), so that a socket holds about as many
copies of a flood (full batches) whatever a batch's size: a reader that reads nothing must
not hold a flood, but make the node drop and count. Batches are as small as the copies
queued when the sender takes them (one copy, at a slow rate): a socket sized in batches for
``N`` copies holds from ``N / HWM_BATCH`` copies (at a slow rate, where that is plenty) up
to ``N``, and never more than its messages times :data:`BATCH_BYTES` bytes.

A single copy may also come as ``[tap, instance, direction, time_ns, missed, *frames]``
with direction ``in`` or ``out`` (readers accept both). A marker has no frames and the
direction :data:`ON` (the tap is on the socket), :data:`MISSED` (copies were lost with
nothing left to carry the count) or :data:`END` (the process sent all it had: the last
word of its tap, with the final count of what it lost). ``missed`` is the running total of copies the tap lost.
"""

from __future__ import annotations

import struct
import time
from itertools import accumulate, islice
from typing import Any, NamedTuple, Sequence

#: Directions of the markers (frames-less messages) a reader gets.
ON, MISSED, END = "on", "missed", "end"
#: Most copies in one batch message: enough that the sender's sends (each lets the node's
#: thread take the interpreter lock, and the sender wait to get it back) are few per copy,
#: few enough that a reader's socket, bounded in messages, holds a bounded number of
#: copies of a flood (:data:`HWM_BATCH`) and still many small batches of a slow rate (a
#: reader that starts reading late, after the tapped process ended, finds them all).
BATCH_COPIES = 32
#: The copies a high-water mark counts per batch message (:func:`batch_hwm`): a full
#: batch's, so a socket sized for ``N`` copies of a flood holds about ``N``.
HWM_BATCH = BATCH_COPIES
#: A batch takes no more copies once its frames reach this many bytes (a single larger
#: copy goes alone).
BATCH_BYTES = 64 * 1024
#: What a tap queues per copy (:class:`topo.process.tap.Tap`): this many items of one
#: flat list, ``code, frames, size, time_ns``. ``code`` is the direction's byte, ``o``/``i``
#: for a single-frame copy (``frames``: the frame itself, as ``bytes``), ``O``/``I`` for any
#: other (``frames``: a list); ``size``: its frames' bytes. Flat, because the sender then
#: takes each column of a batch with one slice (``items[3::4]``: the times), in C.
STRIDE = 4
#: The codes of a single-frame copy, and of any other, in each direction.
OUT_ONE, IN_ONE, OUT_MANY, IN_MANY = b"o", b"i", b"O", b"I"

_ON, _MISSED = ON.encode(), MISSED.encode()
_MARKERS = frozenset({_ON, _MISSED, END.encode()})
_DIRECTIONS = {ord("o"): "out", ord("i"): "in"}
#: ``struct`` formats of a column of n numbers, made once per n.
_TIMES = [struct.Struct(f"<{n}Q") for n in range(BATCH_COPIES + 1)]
_U32S = [struct.Struct(f"<{n}I") for n in range(BATCH_COPIES + 1)]
#: A batch message's head: its time (ns), the tap's running count of misses, its copies,
#: the lengths of its tap id and of its instance (which follow it).
_HEAD = struct.Struct("<QQHHH")
#: The frame counts of a batch of single-frame copies, ready made.
_ONES = _U32S[BATCH_COPIES].pack(*[1] * BATCH_COPIES)


def pack(tap_id: bytes, instance: bytes, time_ns: int, missed: int, codes: list[bytes], frames: list[Any],
         sizes: list[int], times: list[int]) -> bytes:
    """One batch message's only frame, from its columns as the tap queued them (see
    :data:`STRIDE`; at most :data:`BATCH_COPIES` copies): one ``bytes.join``, so the batch's
    frames are copied once, and every copy a single frame (the common case), all of it in C."""
    n = len(codes)
    head = _HEAD.pack(time_ns, missed, n, len(tap_id), len(instance))
    if codes.count(OUT_ONE) == n:
        code_column = OUT_ONE * n
    elif codes.count(IN_ONE) == n:
        code_column = IN_ONE * n
    else:
        code_column = b"".join(codes)
    time_column = _TIMES[n].pack(*times)
    if code_column.islower():  # no O or I: every copy a single frame, its size its frame's length
        return b"".join([head, tap_id, instance, code_column, time_column, _ONES[:4 * n], _U32S[n].pack(*sizes),
                         *frames])
    listed = [f if type(f) is list else [f] for f in frames]
    flat = [frame for each in listed for frame in each]
    return b"".join([head, tap_id, instance, code_column.lower(), time_column, _U32S[n].pack(*map(len, listed)),
                     struct.pack(f"<{len(flat)}I", *map(len, flat)), *flat])


def cut(sizes: list[int], start: int) -> int:
    """Where the batch that begins at ``start`` ends: after :data:`BATCH_COPIES` copies, or
    after the copy whose frames bring it to :data:`BATCH_BYTES` bytes."""
    end = min(len(sizes), start + BATCH_COPIES)
    if sum(sizes[start:end]) < BATCH_BYTES:
        return end
    total = 0
    for i in range(start, end):
        total += sizes[i]
        if total >= BATCH_BYTES:
            return i + 1
    return end


def batch_hwm(copies: int) -> int:
    """The high-water mark, in batch messages, of a socket that may hold ``copies`` copies
    (of a flood, in batches of :data:`HWM_BATCH` or more)."""
    return max(1, copies // HWM_BATCH)


def _view(frame: Any) -> Any:
    """A frame's bytes without copying them (``bytes``, or a ``zmq.Frame``'s buffer)."""
    return frame if isinstance(frame, bytes) else frame.buffer


def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame.bytes)


class Batch(NamedTuple):
    """A batch message's head: whose copies, sent when, the tap's running count of misses,
    how many copies, and where in the frame their columns begin."""

    tap_id: bytes
    instance: bytes
    time_ns: int
    missed: int
    copies: int
    start: int


def read_batch(frame: Any) -> Batch:
    """The head of a batch message's frame (``bytes`` or ``zmq.Frame``), checked as far as
    the head goes: ValueError unless it holds 1 to :data:`BATCH_COPIES` copies and its ids."""
    data = _view(frame)
    if len(data) < _HEAD.size:
        raise ValueError("a batch shorter than its head")
    time_ns, missed, count, tap_len, instance_len = _HEAD.unpack_from(data, 0)
    if not 1 <= count <= BATCH_COPIES:
        raise ValueError(f"a batch of {count} copies")
    start = _HEAD.size + tap_len + instance_len
    if len(data) < start:
        raise ValueError("a batch shorter than its ids")
    return Batch(bytes(data[_HEAD.size:_HEAD.size + tap_len]), bytes(data[_HEAD.size + tap_len:start]),
                 time_ns, missed, count, start)


def head(frames: Sequence[Any]) -> tuple[bytes, bytes] | None:
    """The tap id and instance of any message of the sender's format (a batch, a copy, a
    marker), as ``bytes``; None for one that is none of them. What a relay routes by."""
    if len(frames) == 1:
        try:
            batch = read_batch(frames[0])
        except ValueError:
            return None
        return batch.tap_id, batch.instance
    if len(frames) < 5:
        return None
    return _bytes(frames[0]), _bytes(frames[1])


def copies_in(frames: Sequence[Any]) -> int:
    """How many copies one message of the sender's format carries: a batch's count, 1 for a
    single copy, or 0 for a marker (or a batch that is not one). What a relay that drops the
    message must count as missed; frames as ``bytes`` or ``zmq.Frame``."""
    if len(frames) == 1:
        try:
            return read_batch(frames[0]).copies
        except ValueError:
            return 0
    if len(frames) < 5:
        return 0
    return 0 if _bytes(frames[2]) in _MARKERS else 1


def unpack(frame: bytes) -> list[tuple[str, int, list[bytes]]]:
    """A batch message's copies as (direction, time_ns, frames), oldest first; ValueError if
    it does not hold exactly its ``count`` well-formed copies."""
    batch = read_batch(frame)
    directions, times, frames = unpack_columns(batch.copies, frame, batch.start)
    return list(zip(directions, times, frames))


def unpack_columns(count: int, packed: bytes, at: int = 0) -> tuple[list[str], list[int], list[list[bytes]]]:
    """The copies whose columns begin at ``at`` in ``packed`` as three lists (directions,
    times, frames), the way a reader that makes its own objects of them wants them;
    ValueError as :func:`unpack`."""
    if not 1 <= count <= BATCH_COPIES:
        raise ValueError(f"a batch of {count} copies")
    heads = at + 13 * count
    if len(packed) < heads:
        raise ValueError("a batch shorter than its copies' heads")
    codes = packed[at:at + count]
    if codes.count(b"o") == count:
        directions = ["out"] * count
    elif codes.count(b"i") == count:
        directions = ["in"] * count
    elif codes.translate(None, b"oi"):
        raise ValueError("a copy with no such direction")
    else:
        directions = list(map(_DIRECTIONS.__getitem__, codes))
    times = list(_TIMES[count].unpack_from(packed, at + count))
    if packed[at + 9 * count:heads] == _ONES[:4 * count]:  # every copy a single frame: the common case
        start = heads + 4 * count
        if start > len(packed):
            raise ValueError("a batch shorter than its frames' lengths")
        sizes = _U32S[count].unpack_from(packed, heads)
        size = sizes[0]
        if sizes.count(size) == count and start + size * count == len(packed):  # all of one size
            return directions, times, [[packed[at:at + size]] for at in range(start, len(packed), size or 1)] \
                if size else [[b""] for _ in range(count)]
        return directions, times, [[frame] for frame in _frames(packed, start, sizes)]
    counts = _U32S[count].unpack_from(packed, at + 9 * count)
    frames_in_all = sum(counts)
    start = heads + 4 * frames_in_all
    if start > len(packed):
        raise ValueError("a batch shorter than its frames' lengths")
    flat = _frames(packed, start, struct.unpack_from(f"<{frames_in_all}I", packed, heads))
    grouped: list[list[bytes]] = []
    at = 0
    for n in counts:
        grouped.append(flat[at:at + n])
        at += n
    return directions, times, grouped


def _frames(packed: bytes, start: int, sizes: Sequence[int]) -> list[bytes]:
    """The frames of ``sizes`` bytes each, one after another from ``start`` to the end of
    ``packed``; ValueError unless they end exactly where it does."""
    ends = list(accumulate(sizes, initial=start))
    if ends[-1] != len(packed):
        raise ValueError("a batch whose frames do not end where it does")
    return list(map(packed.__getitem__, map(slice, ends, islice(ends, 1, None))))


def owed_marker(frames: Sequence[Any]) -> list[bytes] | None:
    """What a relay that drops this message still owes the reader, as a marker: an ``on``
    marker itself, or a ``missed`` marker with the running total the message carried (the
    sender counts it told once it handed the message on, so a relay's drop must not lose
    it). Markers of one tap and instance and kind replace each other: only the last is owed."""
    if len(frames) == 1:
        try:
            batch = read_batch(frames[0])
        except ValueError:
            return None
        return [batch.tap_id, batch.instance, _MISSED, b"%d" % time.time_ns(), b"%d" % batch.missed]
    if len(frames) < 5:
        return None
    tap_id, instance, direction, _, missed = (_bytes(f) for f in frames[:5])
    kind = direction if direction == _ON else _MISSED
    return [tap_id, instance, kind, b"%d" % time.time_ns(), missed]
