"""The messages a tap's sender (:mod:`topo.process.tapping`) sends its reader, as far as
those who pass them on need to know them: a relay between hosts
(:mod:`topo.hosts.taprelay`, :mod:`topo.supervisor.remotetaps`) reads only their first
frames, and counts what it drops.

A copy is ``[tap, instance, direction, time_ns, missed, *frames]`` with direction ``in``
or ``out``; a marker has no frames and the direction :data:`ON` (the tap is on the
socket), :data:`MISSED` (copies were lost with nothing left to carry the count) or
:data:`END` (the process sent all it had: the last word of a recording's tap).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

#: Directions of the markers (frames-less messages) a reader gets.
ON, MISSED, END = "on", "missed", "end"

_ON, _MISSED = ON.encode(), MISSED.encode()
_MARKERS = frozenset({_ON, _MISSED, END.encode()})


def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame.bytes)


def copies_in(frames: Sequence[Any]) -> int:
    """How many copies one message of the sender's format carries: 1, or 0 for a marker.
    What a relay that drops the message must count as missed; frames as ``bytes`` or
    ``zmq.Frame``."""
    if len(frames) < 3:
        return 0
    return 0 if _bytes(frames[2]) in _MARKERS else 1


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
