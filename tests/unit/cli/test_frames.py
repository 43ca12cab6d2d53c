"""Frames as ``topo echo`` shows them: never a control character on the terminal."""

from __future__ import annotations

import pytest

from topo.cli import frames
from topo.errors import UsageError


@pytest.mark.parametrize("data, fmt, shown", [
    (b"hello world", "auto", "hello world"),
    (b"", "auto", "''"),
    (b"caf\xc3\xa9", "auto", "café"),
    (b"line\nnext\ttab", "auto", "line\\nnext\\ttab"),
    (b"\x1b[2J\x07", "auto", "\\x1b[2J\\x07"),
    ("a\u202eb".encode(), "auto", "a\\u202eb"),             # a bidi override: shown, not obeyed
    (b"\xff\x00\x01", "auto", "0xff0001"),                 # not UTF-8: hex
    (b"\x17\x15`u", "auto", "0x17156075"),                 # UTF-8, but binary: hex too
    (b"\x17\x15`u", "text", "\\x17\\x15`u"),              # unless text is asked for
    (b"\x00\x00\x00\x07", "auto", "0x00000007"),
    (b"\xff\x00a", "text", "\\xff\\x00a"),                 # as text anyway, escaped
    (b"hi", "hex", "0x6869"),
    (b'{"a": [1, 2], "b": "\\u001b"}', "json", '{"a":[1,2],"b":"\\u001b"}'),
    (b"not json", "json", "(not JSON) not json"),
])
def test_show(data: bytes, fmt: str, shown: str) -> None:
    assert frames.show(data, fmt) == shown


@pytest.mark.parametrize("data", [bytes(range(256)), "\x1b]0;title\x07\r\x9b".encode(), b"\x7f\x85"])
def test_nothing_unprintable_gets_through(data: bytes) -> None:
    for fmt in ("auto", "text", "hex", "json"):
        assert frames.show(data, fmt).isprintable()


def test_long_frames_are_cut_and_counted() -> None:
    assert frames.show(b"x" * 30, limit=10) == "xxxxxxxxxx...(+20 chars)"


def test_a_line_has_time_label_direction_and_indexed_frames() -> None:
    line = frames.line("worker.1.tasks", "in", 1_700_000_000_123_456_000, [b"a", b"\xff"])
    assert line.endswith(" worker.1.tasks in  [0] a  [1] 0xff")
    assert line[:15].count(":") == 2 and line[8] == "."


def test_formats_are_checked() -> None:
    with pytest.raises(UsageError, match="unknown format 'yaml'"):
        frames.check_format("yaml")
    try:
        import msgpack  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="needs the msgpack package"):
            frames.check_format("msgpack")
    else:
        frames.check_format("msgpack")
