"""Reading a recording, a truncated one included: its messages, its channels with their
counts and times.

The file is read from its start, record by record, with the ``mcap`` library's own record
parsers; the summary at its end is not needed. So a recording whose recorder was killed
(no summary, a chunk cut off halfway) reads up to its last whole chunk, and one still
being written reads up to what is on disk. Reading stops at the first record that is cut
off or cannot be read; :attr:`Recording.ended` says where and why, None once the footer
has been read. Nothing in the file is trusted: no length read from it sizes anything
beyond what the file holds, and a chunk may not claim more than :data:`MAX_CHUNK`
uncompressed bytes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Collection, Iterator, NamedTuple, cast

from topo.errors import TopoError
from topo.observe import frames as zmq_frames
from topo.observe.recording import METADATA_NAME, SEQUENCE_MODULO

if TYPE_CHECKING:
    from mcap.records import Channel, McapRecord

#: The most uncompressed bytes one chunk may claim (topo writes 1 MiB chunks; other
#: writers' are rarely over 100 MiB): a hostile size allocates nothing beyond this.
MAX_CHUNK = 1024 * 1024 * 1024


class RecordingError(TopoError):
    """A file that is not a recording one can read (not MCAP, not there)."""

    exit_code = 2


class Recorded(NamedTuple):
    """One recorded message: its channel's topic, when it was taken, its frames."""

    topic: str
    time_ns: int
    frames: list[bytes]
    sequence: int


@dataclass
class ChannelSummary:
    """One channel as a whole: what it is, how many messages, when."""

    topic: str
    encoding: str
    instance: str | None = None
    socket: str | None = None
    direction: str | None = None
    type: str | None = None
    messages: int = 0
    bytes: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    #: copies the recorder knew it had lost (gaps in the sequence numbers)
    missed: int = 0
    _last_sequence: int | None = field(default=None, repr=False)


@dataclass
class Summary:
    """A recording as a whole, as ``topo record --info`` shows it."""

    file: str
    size: int
    topology: str | None
    topo_version: str | None
    library: str | None
    complete: bool
    ended: str | None
    messages: int
    start_ns: int | None
    end_ns: int | None
    channels: list[ChannelSummary]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for channel in data["channels"]:
            channel.pop("_last_sequence", None)
        return data


class _Truncated(Exception):
    """A read past the end of what the file holds."""


class _Bounded:
    """The file as the ``mcap`` parsers read it, refusing a read past its end before it
    allocates (a hostile length would otherwise size a buffer): the file may still grow
    while it is read (a recording in progress), so its size is looked at again then."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.position = 0
        self._size = os.fstat(file.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise _Truncated("a read of unbounded length")
        if n > self._size - self.position:
            self._size = os.fstat(self._file.fileno()).st_size
            if n > self._size - self.position:
                raise _Truncated(f"{n} bytes wanted, {self._size - self.position} left")
        data = self._file.read(n)
        self.position += len(data)
        if len(data) < n:
            raise _Truncated(f"{n} bytes wanted, {len(data)} read")
        return data


class Recording:
    """One recording opened for reading; iterate :meth:`messages` or call :meth:`summarize`.

    :class:`RecordingError` when the file cannot be opened or does not start as MCAP."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")
        except OSError as err:
            raise RecordingError(f"{self.path}: {err.strerror or err}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        #: channels by id, as their records have been read
        self.channels: dict[int, Channel] = {}
        #: metadata records by name, as read
        self.metadata: dict[str, dict[str, str]] = {}
        self.library: str | None = None
        #: why reading stopped before the footer (None: it has not stopped, or read it all)
        self.ended: str | None = None
        self.complete = False

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def topology(self) -> str | None:
        return self.metadata.get(METADATA_NAME, {}).get("topology")

    def _records(self) -> Iterator[McapRecord]:
        """Every record from the file's start, chunks opened; stops (setting
        :attr:`ended`) at the first one that is cut off or unreadable."""
        from mcap.records import Channel, Chunk, Footer, Header, Metadata
        from mcap.stream_reader import StreamReader, breakup_chunk
        from mcap.writer import MCAP0_MAGIC as MAGIC

        self._file.seek(0)
        self.channels.clear()
        self.ended, self.complete = None, False
        stream = _Bounded(self._file)
        try:
            magic = stream.read(len(MAGIC))
        except _Truncated:
            raise RecordingError(f"{self.path}: not a recording: {self.size} bytes, too short "
                                 "for an MCAP file") from None
        if magic != MAGIC:
            raise RecordingError(f"{self.path}: not a recording: not an MCAP file")
        # the magic read here: the reader's own check would count it in the first record
        reader = StreamReader(cast(IO[bytes], stream), skip_magic=True, emit_chunks=True,
                              validate_crcs=True, record_size_limit=None)
        records = reader.records
        while True:
            at = stream.position
            try:
                record = next(records)
                if isinstance(record, Chunk):
                    if record.uncompressed_size > MAX_CHUNK:
                        raise ValueError(f"a chunk of {record.uncompressed_size} bytes")
                    inner = breakup_chunk(record, validate_crc=True)
                else:
                    inner = [record]
            except StopIteration:
                return
            except _Truncated:
                self.ended = f"cut off at byte {at}: the recorder did not finish the file"
                return
            except Exception as err:  # noqa: BLE001 - whatever the file's bytes make the parsers raise
                self.ended = f"unreadable at byte {at}: {type(err).__name__}: {err}"
                return
            for item in inner:
                if isinstance(item, Header):
                    self.library = item.library
                elif isinstance(item, Metadata):
                    self.metadata[item.name] = dict(item.metadata)
                elif isinstance(item, Channel):
                    self.channels[item.id] = item
                elif isinstance(item, Footer):
                    self.complete = True
                yield item

    def messages(self, topics: Collection[str] | None = None) -> Iterator[Recorded]:
        """The messages of ``topics`` (all: None) in file order, frames decoded; a channel
        not in the ``zmq-frames`` encoding is refused (:class:`RecordingError`), as is a
        message whose bytes are not frames."""
        from mcap.records import Message

        for record in self._records():
            if not isinstance(record, Message):
                continue
            channel = self.channels.get(record.channel_id)
            if channel is None or (topics is not None and channel.topic not in topics):
                continue
            if channel.message_encoding != zmq_frames.ENCODING:
                raise RecordingError(f"{self.path}: channel {channel.topic!r} holds "
                                     f"{channel.message_encoding or 'unnamed'!r} messages, not ZeroMQ frames")
            try:
                decoded = zmq_frames.decode(record.data)
            except zmq_frames.FramesError as err:
                raise RecordingError(f"{self.path}: a message of {channel.topic!r} at "
                                     f"{record.log_time}: {err}") from None
            yield Recorded(channel.topic, record.log_time, decoded, record.sequence)

    def summarize(self) -> Summary:
        """The whole file read once: every channel's count, bytes, times and losses."""
        from mcap.records import Message

        by_id: dict[int, ChannelSummary] = {}
        for record in self._records():
            if not isinstance(record, Message):
                continue
            channel = self.channels.get(record.channel_id)
            if channel is None:
                continue
            summary = by_id.get(channel.id)
            if summary is None:
                summary = by_id[channel.id] = _channel_summary(channel)
            summary.messages += 1
            summary.bytes += len(record.data)
            t = record.log_time
            summary.start_ns = t if summary.start_ns is None else min(summary.start_ns, t)
            summary.end_ns = t if summary.end_ns is None else max(summary.end_ns, t)
            if channel.message_encoding == zmq_frames.ENCODING:
                last = 0 if summary._last_sequence is None else summary._last_sequence
                summary.missed += (record.sequence - last - 1) % SEQUENCE_MODULO
                summary._last_sequence = record.sequence
        for channel in self.channels.values():  # channels with no message yet
            if channel.id not in by_id:
                by_id[channel.id] = _channel_summary(channel)
        channels = sorted(by_id.values(), key=lambda c: c.topic)
        starts = [c.start_ns for c in channels if c.start_ns is not None]
        ends = [c.end_ns for c in channels if c.end_ns is not None]
        meta = self.metadata.get(METADATA_NAME, {})
        return Summary(
            file=self.path, size=os.fstat(self._file.fileno()).st_size,
            topology=meta.get("topology"), topo_version=meta.get("topo_version"), library=self.library,
            complete=self.complete, ended=self.ended, messages=sum(c.messages for c in channels),
            start_ns=min(starts) if starts else None, end_ns=max(ends) if ends else None,
            channels=channels,
        )


def _channel_summary(channel: Channel) -> ChannelSummary:
    meta = channel.metadata
    return ChannelSummary(topic=channel.topic, encoding=channel.message_encoding,
                          instance=meta.get("instance"), socket=meta.get("socket"),
                          direction=meta.get("direction"), type=meta.get("type"))


def messages(path: str | os.PathLike[str], topics: Collection[str] | None = None) -> Iterator[Recorded]:
    """The messages of a recording (of ``topics`` only, when given), in file order."""
    with Recording(path) as recording:
        yield from recording.messages(topics)


def summarize(path: str | os.PathLike[str]) -> Summary:
    """A recording's channels, counts and times (also of a truncated one)."""
    with Recording(path) as recording:
        return recording.summarize()

