"""``topo up``'s stdout written by a thread: the supervisor never waits on a reader that
does not read; lines over the bound are dropped with a count, a reader that reads gets all."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from topo.supervisor import terminal
from topo.supervisor.terminal import Terminal


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_write_never_waits_on_a_reader_that_does_not_read(pipe: tuple[int, int],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal, "HARD_LIMIT", 1 << 20)
    r, w = pipe
    term = Terminal(w)
    line = "z" * 99 + "\n"
    for _ in range(50_000):  # 5 MB into a pipe of 64 kB nobody reads: returns at once
        term.write(line)
    assert term.dropped > 0
    assert not term.drain(0.1)  # bounded: gives up on a reader that takes nothing


def test_a_reader_that_reads_gets_every_line_in_order(pipe: tuple[int, int]) -> None:
    r, w = pipe
    term = Terminal(w)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(_read_all(r)))
    reader.start()
    for i in range(20_000):
        term.write(f"{i}\n")
        while term.hold_until() is not None:  # as the supervisor does: hold, not drop
            term.drain(10)
    assert term.drain(10)
    os.close(w)
    reader.join(10)
    assert got[0].decode().splitlines() == [str(i) for i in range(20_000)]
    assert term.dropped == 0


def _fill(fd: int) -> int:
    """Fills the pipe behind ``fd`` until a write would block; the bytes written."""
    os.set_blocking(fd, False)
    filled = 0
    try:
        while True:
            filled += os.write(fd, b"p" * 4096)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)
    return filled


def test_after_a_stall_the_terminal_says_how_many_lines_it_did_not_show(
        pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal, "HARD_LIMIT", 100_000)
    monkeypatch.setattr(terminal, "STALL", 0.0)
    r, w = pipe
    # The reader has stopped with the pipe full: the terminal's thread blocks on its first
    # write and takes nothing more, so every line over the bound is dropped in one place.
    # (With room in the pipe, the thread would write some and take more, and the drops
    # would be told in several notices, each where its lines were: right, but not one.)
    filled = _fill(w)
    term = Terminal(w, notice=lambda n: f"NOTICE {n}\n")
    for _ in range(3_000):  # 300 kB: three times the bound
        term.write("a" * 99 + "\n")
    dropped = term.dropped
    assert dropped > 0
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(_read_all(r)))
    reader.start()  # the reader comes back
    assert term.drain(10)
    term.write("after\n")
    assert term.drain(10)
    os.close(w)
    reader.join(10)
    lines = got[0][filled:].decode().splitlines()
    assert lines[-2:] == [f"NOTICE {dropped}", "after"]
    assert len(lines) == 3_000 - dropped + 2
    assert sum(line.startswith("NOTICE") for line in lines) == 1


def test_a_closed_reader_ends_the_display_only(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.close(r)
    term = Terminal(w)
    term.write("x\n")
    assert term.drain(10)  # EPIPE: nothing more to wait for
    term.write("y\n")  # and no error for the caller
