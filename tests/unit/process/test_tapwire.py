"""The tap sender's batch format (topo.process.tapwire): what readers decode and relays count."""

from __future__ import annotations

import pytest
import zmq

from topo.process.tapwire import (
    BATCH_BYTES, BATCH_COPIES, HWM_BATCH, batch_hwm, copies_in, cut, head, owed_marker, pack, read_batch, unpack)


def _packed(copies: list[tuple[bytes, int, list[bytes]]], missed: int = 0) -> bytes:
    """Copies as a tap queues them (a single frame alone, with a lower-case code), packed."""
    codes = [code if len(frames) == 1 else code.upper() for code, _, frames in copies]
    frames = [fs[0] if len(fs) == 1 else fs for _, _, fs in copies]
    sizes = [sum(map(len, fs)) for _, _, fs in copies]
    return pack(b"tap", b"w.0", 7, missed, codes, frames, sizes, [t for _, t, _ in copies])


def _recount(frame: bytes, count: int) -> bytes:
    """``frame`` with its head's count changed (the count is the head's 17th and 18th bytes)."""
    return frame[:16] + count.to_bytes(2, "little") + frame[18:]


def test_a_batch_gives_back_each_copy_in_order() -> None:
    copies = [(b"o", 1, [b"one"]), (b"i", 2, [b"id", b"", b"body"]), (b"o", 3, [b""]), (b"i", 4, [])]
    assert unpack(_packed(copies)) == [("out", 1, [b"one"]), ("in", 2, [b"id", b"", b"body"]),
                                       ("out", 3, [b""]), ("in", 4, [])]


def test_a_batchs_head_says_whose_copies_and_how_many_were_missed() -> None:
    frame = _packed([(b"o", 1, [b"x"])] * 3, missed=12)
    batch = read_batch(frame)
    assert (batch.tap_id, batch.instance, batch.time_ns, batch.missed, batch.copies) == (b"tap", b"w.0", 7, 12, 3)
    assert read_batch(zmq.Frame(frame)) == batch
    assert head([frame]) == head([zmq.Frame(frame)]) == (b"tap", b"w.0")
    assert head([b"t", b"i", b"on", b"1", b"0"]) == (b"t", b"i")
    assert head([b"too short"]) is None and head([b"t", b"i"]) is None
    assert owed_marker([frame])[:3] == [b"tap", b"w.0", b"missed"] and owed_marker([frame])[4] == b"12"


@pytest.mark.parametrize("frame", [
    _recount(_packed([(b"o", 1, [b"x"])]), 2),                     # fewer copies than said
    _packed([(b"o", 1, [b"x"])]) + b"y",                            # bytes after the last
    _packed([(b"o", 1, [b"abc"])])[:-1],                           # a frame cut short
    _packed([(b"x", 1, [b"abc"])]),                                # no such direction
    _packed([(b"o", 1, [b"a"])])[:24] + b"o" + bytes(8) + (2**31).to_bytes(4, "little"),  # frames it cannot hold
    _packed([(b"o", 1, [b"ab", b"c"])])[:-1],                      # a multi-frame copy cut short
    _recount(_packed([(b"o", 1, [b"x"])]), 0),
    _recount(_packed([(b"o", 1, [b"x"])] * BATCH_COPIES), BATCH_COPIES + 1),  # more than a batch holds
    _packed([(b"o", 1, [b"x"])])[:20],                             # its ids cut off
    b"",
])
def test_a_malformed_batch_is_refused(frame: bytes) -> None:
    with pytest.raises(ValueError):
        unpack(frame)


def test_a_relay_counts_a_dropped_batchs_copies() -> None:
    batch = [_packed([(b"o", 1, [b"x"])] * 3)]
    assert copies_in(batch) == 3
    assert copies_in([zmq.Frame(f) for f in batch]) == 3
    assert copies_in([b"t", b"i", b"out", b"1", b"0", b"payload"]) == 1
    assert copies_in([b"t", b"i", b"missed", b"1", b"5"]) == 0
    assert copies_in([b"t", b"i", b"end", b"1", b"5"]) == 0
    assert copies_in([batch[0][:10]]) == 0  # not a batch: no count to trust
    assert copies_in([_recount(batch[0], 999)]) == 0


def test_a_high_water_mark_in_full_batches_holds_about_the_copies_asked() -> None:
    assert batch_hwm(1000) * HWM_BATCH <= 1000 < (batch_hwm(1000) + 1) * HWM_BATCH
    assert batch_hwm(1) == 1


def test_a_batch_of_single_frames_and_one_of_mixed_copies_round_trip() -> None:
    singles = [(b"o", 10**18 + i, [b"%d" % i]) for i in range(BATCH_COPIES)]
    assert unpack(_packed(singles)) == [("out", t, f) for _, t, f in singles]
    ins = [(b"i", 5, [b"a"]), (b"i", 6, [b"b"])]
    assert unpack(_packed(ins)) == [("in", 5, [b"a"]), ("in", 6, [b"b"])]
    mixed = [(b"i", 1, [b"a"]), (b"o", 2, [b"b", b"c"]), (b"o", 3, [b"d"])]
    assert unpack(_packed(mixed)) == [("in", 1, [b"a"]), ("out", 2, [b"b", b"c"]), ("out", 3, [b"d"])]


def test_a_batch_ends_at_its_copy_bound_or_its_byte_bound() -> None:
    assert cut([1] * 3 * BATCH_COPIES, 0) == BATCH_COPIES
    assert cut([1] * 3 * BATCH_COPIES, 2 * BATCH_COPIES + 10) == 3 * BATCH_COPIES
    assert cut([BATCH_BYTES // 2] * 4, 0) == 2  # the copy reaching the bound is the batch's last
    assert cut([BATCH_BYTES * 3, 1], 0) == 1  # a larger copy goes alone
