"""The tap sender's batch format (topo.process.tapwire): what readers decode and relays count."""

from __future__ import annotations

import pytest
import zmq

from topo.process.tapwire import (
    BATCH_BYTES, BATCH_COPIES, HWM_BATCH, batch_count, batch_hwm, copies_in, cut, pack, unpack)


def _packed(copies: list[tuple[bytes, int, list[bytes]]]) -> bytes:
    """Copies as a tap queues them (a single frame alone, with a lower-case code), packed."""
    codes = [code if len(frames) == 1 else code.upper() for code, _, frames in copies]
    frames = [fs[0] if len(fs) == 1 else fs for _, _, fs in copies]
    sizes = [sum(map(len, fs)) for _, _, fs in copies]
    return pack(codes, frames, sizes, [t for _, t, _ in copies])


def test_a_batch_gives_back_each_copy_in_order() -> None:
    copies = [(b"o", 1, [b"one"]), (b"i", 2, [b"id", b"", b"body"]), (b"o", 3, [b""]), (b"i", 4, [])]
    assert unpack(4, _packed(copies)) == [("out", 1, [b"one"]), ("in", 2, [b"id", b"", b"body"]),
                                          ("out", 3, [b""]), ("in", 4, [])]


@pytest.mark.parametrize("count, packed", [
    (2, _packed([(b"o", 1, [b"x"])])),                          # fewer copies than said
    (1, _packed([(b"o", 1, [b"x"]), (b"o", 2, [b"y"])])),       # bytes after the last
    (1, _packed([(b"o", 1, [b"abc"])])[:-1]),                   # a frame cut short
    (1, _packed([(b"x", 1, [b"abc"])])),                        # no such direction
    (1, b"o" + bytes(8) + (2**31).to_bytes(4, "little")),        # frames it cannot hold
    (1, _packed([(b"o", 1, [b"ab", b"c"])])[:-1]),              # a multi-frame copy cut short
    (0, b""),
    (BATCH_COPIES + 1, b"o" * 14 * (BATCH_COPIES + 1)),            # more copies than a batch holds
    (1, b""),
])
def test_a_malformed_batch_is_refused(count: int, packed: bytes) -> None:
    with pytest.raises(ValueError):
        unpack(count, packed)


def test_a_relay_counts_a_dropped_batchs_copies() -> None:
    batch = [b"t", b"i", b"copies", b"1", b"0", b"3", _packed([(b"o", 1, [b"x"])] * 3)]
    assert copies_in(batch) == 3
    assert copies_in([zmq.Frame(f) for f in batch]) == 3
    assert copies_in([b"t", b"i", b"out", b"1", b"0", b"payload"]) == 1
    assert copies_in([b"t", b"i", b"missed", b"1", b"5"]) == 0
    assert copies_in(batch[:6]) == 0  # not a batch: no count to trust
    assert copies_in([*batch[:5], b"999999", batch[6]]) == 0


@pytest.mark.parametrize("text", [b"0", b"-1", b"", b"x", b"%d" % (BATCH_COPIES + 1), b"1" * 50])
def test_a_batch_count_out_of_range_is_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        batch_count(text)


def test_a_high_water_mark_in_full_batches_holds_about_the_copies_asked() -> None:
    assert batch_hwm(1000) * HWM_BATCH <= 1000 < (batch_hwm(1000) + 1) * HWM_BATCH
    assert batch_hwm(1) == 1


def test_a_batch_of_single_frames_and_one_of_mixed_copies_round_trip() -> None:
    singles = [(b"o", 10**18 + i, [b"%d" % i]) for i in range(BATCH_COPIES)]
    assert unpack(BATCH_COPIES, _packed(singles)) == [("out", t, f) for _, t, f in singles]
    ins = [(b"i", 5, [b"a"]), (b"i", 6, [b"b"])]
    assert unpack(2, _packed(ins)) == [("in", 5, [b"a"]), ("in", 6, [b"b"])]
    mixed = [(b"i", 1, [b"a"]), (b"o", 2, [b"b", b"c"]), (b"o", 3, [b"d"])]
    assert unpack(3, _packed(mixed)) == [("in", 1, [b"a"]), ("out", 2, [b"b", b"c"]), ("out", 3, [b"d"])]


def test_a_batch_ends_at_its_copy_bound_or_its_byte_bound() -> None:
    assert cut([1] * 3 * BATCH_COPIES, 0) == BATCH_COPIES
    assert cut([1] * 3 * BATCH_COPIES, 2 * BATCH_COPIES + 10) == 3 * BATCH_COPIES
    assert cut([BATCH_BYTES // 2] * 4, 0) == 2  # the copy reaching the bound is the batch's last
    assert cut([BATCH_BYTES * 3, 1], 0) == 1  # a larger copy goes alone
