"""Recordings written by :class:`Recorder` and read back by :mod:`topo.observe.recorded`:
complete, cut off anywhere, hostile, and in bounded memory."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import pytest

from topo.observe.recorded import Recording, RecordingError, messages, summarize
from topo.observe.recording import Recorder, topic

PLAN = json.dumps({"topology": "demo", "nodes": [
    {"name": "source", "sockets": [{"name": "out", "type": "PUSH"}]},
    {"name": "sink", "sockets": [{"name": "in", "type": "PULL"}]},
]})
YAML = "topology: demo\nnodes: {}\n"


def write(path: Path, count: int = 20, **kw: object) -> list[tuple[str, int, list[bytes]]]:
    """A recording of ``count`` messages sent by source and received by sink."""
    sent = []
    with Recorder(path, YAML, PLAN, **kw) as rec:  # type: ignore[arg-type]
        for i in range(count):
            frames = [b"key", str(i).encode(), b""]
            rec.add("source", "out", "out", 1_000 + 10 * i, frames)
            rec.add("sink", "in", "in", 1_005 + 10 * i, frames)
            sent += [("source/out/out", 1_000 + 10 * i, frames), ("sink/in/in", 1_005 + 10 * i, frames)]
    return sent


def test_what_is_recorded_reads_back_in_order_with_its_times(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    sent = write(path)
    assert [(m.topic, m.time_ns, m.frames) for m in messages(path)] == sent
    assert [m.frames[1] for m in messages(path, {"sink/in/in"})] == [str(i).encode() for i in range(20)]


def test_the_summary_has_channels_counts_times_and_the_topology(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write(path)
    s = summarize(path)
    assert (s.topology, s.complete, s.ended, s.messages) == ("demo", True, None, 40)
    assert (s.start_ns, s.end_ns) == (1_000, 1_195)
    by_topic = {c.topic: c for c in s.channels}
    assert set(by_topic) == {"source/out/out", "sink/in/in"}
    out = by_topic["source/out/out"]
    assert (out.instance, out.socket, out.direction, out.type) == ("source", "out", "out", "PUSH")
    assert (out.messages, out.start_ns, out.end_ns, out.missed) == (20, 1_000, 1_190, 0)
    assert out.bytes == sum(4 + 3 * 4 + 3 + len(str(i)) for i in range(20))
    assert json.loads(json.dumps(s.to_json()))["channels"][0]["topic"] == "sink/in/in"


def test_the_topology_file_and_the_plan_are_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write(path, count=1)
    with Recording(path) as rec:
        rec.summarize()
        meta = rec.metadata["topo"]
    assert meta["topology_file"] == YAML and json.loads(meta["plan"]) == json.loads(PLAN)
    assert meta["topology"] == "demo"


def test_missed_copies_are_gaps_in_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    with Recorder(path, YAML, PLAN) as rec:
        rec.add("source", "out", "out", 1, [b"a"], missed=2)
        rec.add("source", "out", "out", 2, [b"b"])
        rec.add("source", "out", "out", 3, [b"c"], missed=5)
    assert [m.sequence for m in messages(path)] == [3, 4, 10]
    assert summarize(path).channels[0].missed == 7


def test_a_recording_cut_anywhere_reads_a_prefix_of_what_was_written(tmp_path: Path) -> None:
    """What a crash leaves: every whole chunk is read, nothing else, and no error."""
    full = tmp_path / "full.mcap"
    sent = write(full, count=30, chunk_size=200)
    data = full.read_bytes()
    cut = tmp_path / "cut.mcap"
    seen_partial = False
    for end in range(8, len(data), 13):
        cut.write_bytes(data[:end])
        with Recording(cut) as rec:
            got = [(m.topic, m.time_ns, m.frames) for m in rec.messages()]
            assert got == sent[:len(got)], end
            if end < len(data) - 8:  # (cut in the end magic, the footer has been read)
                assert not rec.complete and rec.ended and "cut off" in rec.ended
        seen_partial = seen_partial or 0 < len(got) < len(sent)
        assert summarize(cut).messages == len(got)
    assert seen_partial


def test_a_recording_being_written_reads_up_to_its_last_flush(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "r.mcap"
    rec = Recorder(path, YAML, PLAN, flush_interval=1.0, clock=lambda: now[0])
    try:
        rec.add("source", "out", "out", 1, [b"a"])
        assert rec.next_flush() == 1.0
        assert summarize(path).messages == 0  # held in the chunk in progress
        now[0] = 1.5
        rec.idle()
        assert rec.next_flush() is None
        assert summarize(path).messages == 1 and summarize(path).topology == "demo"
        rec.add("source", "out", "out", 2, [b"b"])
        now[0] = 3.0
        rec.add("source", "out", "out", 3, [b"c"])  # held over the interval: written out
        assert summarize(path).messages == 3
    finally:
        rec.close()
    assert summarize(path).complete


def test_memory_stays_bounded_whatever_was_written(tmp_path: Path) -> None:
    """The writer keeps one chunk (and its compressed copies), not the messages."""
    payload = bytes(range(256)) * 4  # 1 KiB
    tracemalloc.start()
    try:
        with Recorder(tmp_path / "big.mcap", YAML, PLAN) as rec:
            for i in range(20_000):
                rec.add("source", "out", "out", i, [payload, i.to_bytes(4, "little")])
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, f"peak {peak} bytes while writing 20 MB"  # 6 MiB measured: a chunk, copies
    assert summarize(tmp_path / "big.mcap").messages == 20_000


@pytest.mark.parametrize("content, says", [
    (b"", "too short"),
    (b"topology: demo\n", "not an MCAP file"),
    (b"\x89MCAP0\r\n" + b"\x01" + struct.pack("<Q", 5), None),
])
def test_files_that_are_not_recordings(tmp_path: Path, content: bytes, says: str | None) -> None:
    path = tmp_path / "x.mcap"
    path.write_bytes(content)
    if says is None:  # the magic, then a record cut off: an empty recording, cut off
        s = summarize(path)
        assert (s.complete, s.messages) == (False, 0) and s.ended and "cut off at byte 8" in s.ended
        return
    with pytest.raises(RecordingError, match=says):
        summarize(path)


def test_a_missing_file_is_a_recording_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="No such file"):
        summarize(tmp_path / "none.mcap")


def test_a_record_claiming_more_than_the_file_holds_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write(path, count=1)
    data = bytearray(path.read_bytes())
    # the first record after the magic is the header: claim 2**62 bytes for it
    data[9:17] = struct.pack("<Q", 2**62)
    path.write_bytes(bytes(data))
    s = summarize(path)
    assert not s.complete and s.ended and "cut off at byte 8" in s.ended


def test_a_channel_of_another_encoding_is_not_replayed_as_frames(tmp_path: Path) -> None:
    from mcap.writer import Writer

    path = tmp_path / "other.mcap"
    with open(path, "wb") as f:
        w = Writer(f)
        w.start()
        ch = w.register_channel("/chatter", "json", 0)
        w.add_message(ch, log_time=5, data=b'{"a": 1}', publish_time=5)
        w.finish()
    s = summarize(path)
    assert (s.topology, s.messages, s.channels[0].encoding) == (None, 1, "json")
    with pytest.raises(RecordingError, match="'json' messages, not ZeroMQ frames"):
        list(messages(path))


def test_wrong_calls_are_refused(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.mcap", YAML, PLAN)
    with pytest.raises(ValueError, match="'in' or 'out'"):
        rec.add("source", "out", "sideways", 1, [b"x"])
    with pytest.raises(ValueError, match="not an instance"):
        rec.add("a/b", "out", "out", 1, [b"x"])
    with pytest.raises(ValueError, match="negative"):
        rec.add("source", "out", "out", -1, [b"x"])
    rec.close()
    rec.close()
    with pytest.raises(ValueError, match="closed"):
        rec.add("source", "out", "out", 1, [b"x"])


def test_topics() -> None:
    assert topic("worker.0", "tasks", "out") == "worker.0/tasks/out"
