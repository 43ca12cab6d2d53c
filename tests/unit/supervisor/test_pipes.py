"""Output pipes read outside the writing process: records keep the node's name and stream,
long lines are cut into atomic writes and joined again, raw fd output goes to the first
node, and what was written before the writer died is all there."""

from __future__ import annotations

import os

from topo.process.records import PIPE_BUF, encode_line, write_line
from topo.supervisor.pipes import ChildOutput, open_pipes, open_program_pipes


class Shown(list[tuple[str, str, bool]]):
    def __call__(self, name: str, line: str, err: bool) -> None:
        self.append((name, line, err))


def test_records_are_single_writes_a_pipe_keeps_whole() -> None:
    records = encode_line("worker.1", "é" * 5000, err=True)
    assert len(records) > 1 and all(len(r) <= PIPE_BUF for r in records)
    assert [r.split(b" ", 1)[1][:1] for r in records] == [b"E"] * (len(records) - 1) + [b"e"]


def test_lines_written_before_the_writer_is_gone_are_all_read() -> None:
    output, (records, out, err) = open_pipes("first")
    write_line(records, "a", "hello", False)
    write_line(records, "b", "x" * 10_000 + "\ud800", True)  # long, and a lone surrogate
    os.write(out, b"raw line\r\nno newline at the end")
    os.write(err, b"fd2: last words\n\xff\n")
    for fd in (records, out, err):  # the writer dies: nothing more will come
        os.close(fd)
    shown = Shown()
    output.close(shown)
    assert shown == [
        ("a", "hello", False),
        ("b", "x" * 10_000 + "\ufffd", True),
        ("first", "raw line", False),
        ("first", "fd2: last words", True),
        ("first", "\ufffd", True),
        ("first", "no newline at the end", False),
    ]


def test_a_programs_output_is_two_pipes_of_lines_even_record_like_ones() -> None:
    output, (out, err) = open_program_pipes("prog")  # (no records pipe: a program writes none)
    assert len(output.fds) == 2
    os.write(out, encode_line("other", "not a record here", False)[0])
    os.write(err, b"on stderr\n")
    for fd in (out, err):
        os.close(fd)
    shown = Shown()
    output.close(shown)
    assert shown[1] == ("prog", "on stderr", True)
    assert shown[0][0] == "prog" and shown[0][2] is False and "not a record here" in shown[0][1]


def test_a_malformed_record_is_shown_as_it_is() -> None:
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    output = ChildOutput(r, out_r, err_r, "first")
    os.write(w, b"garbage\n")
    for fd in (w, out_w, err_w):
        os.close(fd)
    shown = Shown()
    output.close(shown)
    assert shown == [("first", "garbage", False)]


def test_a_pipe_past_fd_1024_is_drained() -> None:
    """A supervisor of some 200 processes holds fds past select()'s limit: draining one
    such pipe at the run's stop raised ValueError (the run ended with exit 70)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard if hard != resource.RLIM_INFINITY else 4096) < 1100:
        import pytest

        pytest.skip("this process may not hold fds past 1024")
    if soft < 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1100, hard))
    r, w = os.pipe()
    high = os.dup2(r, 1090)
    os.close(r)
    (out, out_w), (err, err_w) = os.pipe(), os.pipe()
    try:
        output = ChildOutput(high, out, err, default="first")
        write_line(w, "a", "late words", False)
        shown = Shown()
        output.drain(shown)
        assert shown == [("a", "late words", False)]
    finally:
        for fd in (high, w, out, out_w, err, err_w):
            os.close(fd)
        if soft < 1100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
