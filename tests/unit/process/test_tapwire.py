"""The tap sender's batch format (topo.process.tapwire): what readers decode and relays count."""

from __future__ import annotations

import pytest
import zmq

from topo.process.tapwire import (
    BATCH_COPIES, COPY_HEAD, FRAME_LEN, ONE_FRAME_HEAD, batch_count, batch_hwm, copies_in, unpack)


def _packed(copies: list[tuple[bytes, int, list[bytes]]]) -> bytes:
    parts: list[bytes] = []
    for code, time_ns, frames in copies:
        if len(frames) == 1:
            parts += [ONE_FRAME_HEAD.pack(code, time_ns, 1, len(frames[0])), frames[0]]
        else:
            parts.append(COPY_HEAD.pack(code, time_ns, len(frames)))
            for frame in frames:
                parts += [FRAME_LEN.pack(len(frame)), frame]
    return b"".join(parts)


def test_a_batch_gives_back_each_copy_in_order() -> None:
    copies = [(b"o", 1, [b"one"]), (b"i", 2, [b"id", b"", b"body"]), (b"o", 3, [b""]), (b"i", 4, [])]
    assert unpack(4, _packed(copies)) == [("out", 1, [b"one"]), ("in", 2, [b"id", b"", b"body"]),
                                          ("out", 3, [b""]), ("in", 4, [])]


@pytest.mark.parametrize("count, packed", [
    (2, _packed([(b"o", 1, [b"x"])])),                          # fewer copies than said
    (1, _packed([(b"o", 1, [b"x"]), (b"o", 2, [b"y"])])),       # bytes after the last
    (1, _packed([(b"o", 1, [b"abc"])])[:-1]),                   # a frame cut short
    (1, _packed([(b"x", 1, [b"abc"])])),                        # no such direction
    (1, COPY_HEAD.pack(b"o", 1, 2**31)),                        # frames it cannot hold
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
    assert batch_hwm(1000) * BATCH_COPIES <= 1000 < (batch_hwm(1000) + 1) * BATCH_COPIES
    assert batch_hwm(1) == 1
