"""The zmq-frames encoding: what goes in comes out, and bytes that lie are refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topo.observe.frames import FramesError, decode, encode


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_frames_come_back_as_they_went_in(frames: list[bytes]) -> None:
    assert decode(encode(frames)) == frames


def test_the_layout_is_the_documented_one() -> None:
    """docs/recording.md: u32 count, then per frame a u32 length and its bytes, little-endian."""
    assert encode([b"ab", b""]) == b"\x02\x00\x00\x00" + b"\x02\x00\x00\x00ab" + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("data, says", [
    (b"", "too short"),
    (struct.pack("<I", 10**9), "frames claimed"),
    (struct.pack("<II", 1, 5) + b"abc", "5 bytes claimed, 3 left"),
    (struct.pack("<II", 1, 1) + b"ab", "after the last"),
    (struct.pack("<II", 2, 0) + b"\x00", "frames claimed"),
])
def test_bytes_that_lie_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(FramesError, match=says):
        decode(data)


@given(st.binary(max_size=40))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    try:
        frames = decode(data)
    except FramesError:
        return
    assert encode(frames) == data
