"""The pure parts of ``topo send``: the message from the command line, the file bound,
the address a wildcard bind is dialled at."""

from __future__ import annotations

from pathlib import Path

import pytest

from topo.cli.send import dialable, frames_of, read_bounded
from topo.errors import UsageError


def test_frames_come_in_order_args_json_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\x00\xff")
    assert frames_of(["a", "é"], '{"x": 1}', str(path)) == [b"a", "é".encode(), b'{"x": 1}', b"\x00\xff"]
    assert frames_of([""], None, None) == [b""]  # an empty frame is a frame


def test_bad_messages_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing to send"):
        frames_of([], None, None)
    with pytest.raises(UsageError, match="--json: not JSON"):
        frames_of([], "{", None)
    with pytest.raises(UsageError, match="No such file"):
        frames_of([], None, str(tmp_path / "missing"))


def test_a_file_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2049)
    with pytest.raises(UsageError, match="larger than"):
        read_bounded(str(path), limit=2048)
    assert read_bounded(str(path), limit=2049) == b"x" * 2049


def test_wildcard_binds_are_dialled_on_loopback() -> None:
    assert dialable("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert dialable("tcp://0.0.0.0:41234") == "tcp://127.0.0.1:41234"
    assert dialable("tcp://[::]:7") == "tcp://[::1]:7"
    assert dialable("ipc:///tmp/x/y.sock") == "ipc:///tmp/x/y.sock"
