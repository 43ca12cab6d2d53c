"""Writing a recording: channels, messages, the topology beside them, in bounded memory.

A recording is an MCAP file (docs/recording.md has the layout): one channel per instance,
socket and direction (topic ``INSTANCE/SOCKET/DIRECTION``, :func:`topic`), each message
one multipart message in the ``zmq-frames`` encoding (:mod:`topo.observe.frames`), its
``log_time`` (and ``publish_time``) the moment the copy was taken, in nanoseconds since
the Unix epoch; the topology file's text and the plan stored as the metadata record
``topo`` at the start of the file.

Memory stays bounded whatever the rate: messages go into an MCAP chunk that is compressed
and written out once it holds ``chunk_size`` bytes or has been open ``flush_interval``
seconds (looked at in each :meth:`Recorder.add`, and in :meth:`Recorder.idle`, which a
reader of copies calls when none has come for :meth:`Recorder.next_flush`), so what the writer keeps is one chunk and one index entry per chunk written
(for the summary the file ends with). The periodic flush is also what a crash leaves: a
recorder killed with SIGKILL loses at most the last ``flush_interval`` seconds, and
:mod:`topo.observe.recorded` reads the rest without the summary.

Not thread-safe: one thread adds, as one reader of the copies writes.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Sequence

from topo import __version__
from topo.observe import frames as zmq_frames

if TYPE_CHECKING:
    from mcap.writer import Writer

#: The ``direction`` of a copy: what the socket received, what it sent.
DIRECTIONS = ("in", "out")
#: The name of the metadata record that holds the topology.
METADATA_NAME = "topo"
#: MCAP's sequence field is a u32: a channel's count of copies taken, missed ones included,
#: modulo this.
SEQUENCE_MODULO = 2**32


def topology_text(path: str) -> str:
    """The topology file a recording stores, as it is now (at most 16 MiB; empty if it is
    gone or unreadable: a recording is worth making without it)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(16 * 2**20)
    except OSError:
        return ""


def topic(instance: str, socket: str, direction: str) -> str:
    """A channel's topic, ``worker.0/tasks/out``: ``/`` is in no instance or socket name."""
    return f"{instance}/{socket}/{direction}"


class Recorder:
    """Writes one recording; :meth:`close` (or the ``with`` block's end) writes its summary.

    ``topology_file_text``: the topology file as it was run (YAML); ``plan_json``: the plan
    as ``topo plan --json`` prints it (its ``topology`` names the run, its sockets' types go
    into the channels' metadata). ``clock``: monotonic seconds, for the periodic flush.
    """

    def __init__(self, path: str | os.PathLike[str], topology_file_text: str, plan_json: str, *,
                 chunk_size: int = 1024 * 1024, flush_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, file: BinaryIO | None = None) -> None:
        """``file``: written instead of opening ``path`` (a file opened by whoever checked
        that it can be written: ``topo up --record``)."""
        from mcap.writer import Writer

        plan = json.loads(plan_json)
        if not isinstance(plan, dict):
            raise ValueError("plan_json: not a JSON object")
        self.topology = str(plan.get("topology", ""))
        #: (instance, socket) → socket type, from the plan
        self._types: dict[tuple[str, str], str] = {
            (str(node.get("name")), str(sock.get("name"))): str(sock.get("type"))
            for node in plan.get("nodes", []) if isinstance(node, dict)
            for sock in node.get("sockets", []) if isinstance(sock, dict)
        }
        self.path = os.fspath(path)
        self._file: BinaryIO = file if file is not None else open(self.path, "wb")
        self._writer: Writer = Writer(self._file, chunk_size=chunk_size)
        self._clock = clock
        self._interval = flush_interval
        self._channels: dict[tuple[str, str, str], int] = {}
        self._sequence: dict[tuple[str, str, str], int] = {}
        #: messages added since the last flush, and when the first of them was
        self._pending = 0
        self._pending_since = 0.0
        self.messages = 0
        self.closed = False
        self._writer.start(library=f"topo/{__version__}")
        self._writer.add_metadata(METADATA_NAME, {
            "topology": self.topology,
            "topo_version": __version__,
            "topology_file": topology_file_text,
            "plan": plan_json,
            "started_ns": str(time.time_ns()),
        })
        self._file.flush()  # the header and the topology are on disk before the first message

    def add(self, instance: str, socket: str, direction: str, time_ns: int, frames: Sequence[bytes],
            missed: int = 0) -> None:
        """One copy: ``frames`` sent (``out``) or received (``in``) by ``instance``'s
        ``socket`` at ``time_ns``; ``missed``: copies of the same channel lost just before
        this one (the message's sequence number skips them)."""
        if self.closed:
            raise ValueError("the recording is closed")
        if time_ns < 0 or missed < 0:
            raise ValueError(f"time_ns {time_ns}, missed {missed}: neither may be negative")
        key = (instance, socket, direction)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._register(key)
        sequence = (self._sequence[key] + 1 + missed) % SEQUENCE_MODULO
        self._sequence[key] = sequence
        self._writer.add_message(channel_id=channel, log_time=time_ns, publish_time=time_ns,
                                 data=zmq_frames.encode(frames), sequence=sequence)
        self.messages += 1
        if not self._pending:
            self._pending_since = self._clock()
        self._pending += 1
        if self._clock() - self._pending_since >= self._interval:
            self.flush()

    def _register(self, key: tuple[str, str, str]) -> int:
        instance, socket, direction = key
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r}: 'in' or 'out'")
        if not instance or not socket or "/" in instance or "/" in socket:
            raise ValueError(f"{instance!r}, {socket!r}: not an instance and a socket name")
        metadata = {"instance": instance, "socket": socket, "direction": direction}
        kind = self._types.get((instance, socket))
        if kind:
            metadata["type"] = kind
        channel = self._writer.register_channel(topic(*key), zmq_frames.ENCODING, 0, metadata)
        self._channels[key] = channel
        self._sequence[key] = 0
        return channel

    def next_flush(self) -> float | None:
        """Seconds until the messages held are due to be written out (0: now), None when
        none is held: a reader of copies waits at most this long for the next one, then
        calls :meth:`idle`."""
        if not self._pending:
            return None
        return max(0.0, self._pending_since + self._interval - self._clock())

    def idle(self) -> None:
        """Nothing came for a while: what has been held ``flush_interval`` is written out."""
        if self._pending and self._clock() - self._pending_since >= self._interval:
            self.flush()

    def flush(self) -> None:
        """The chunk in progress compressed and written, the file flushed (not fsynced: a
        crash of the process loses nothing written, a crash of the machine may)."""
        if self.closed:
            return
        self._writer.flush()
        self._pending = 0

    def close(self) -> None:
        """The last chunk, the summary (channels, statistics, indexes) and the footer."""
        if self.closed:
            return
        self.closed = True
        try:
            self._writer.finish()
        finally:
            self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
