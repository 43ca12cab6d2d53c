"""Attributing a process's output to the node instances running in its threads.

Every test restores ``sys.stdout``/``sys.stderr`` and fds 1/2 even when it fails (the
``guard`` fixture), so the suite behaves the same with pytest's capture and with ``-s``.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from topo.process import capture as capture_mod
from topo.process.capture import MAX_LINE, Capture
from topo.process.nodelog import log_handler, node_logger

Line = tuple[str, str, bool]


class Recorder:
    """An ``emit`` that records lines and lets a test wait for them without sleeping."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, line: str, err: bool) -> None:
        with self._cond:
            self.lines.append((name, line, err))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Line]], bool], timeout: float = 10) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.lines), timeout):
                raise AssertionError(f"timed out; got {self.lines!r}")


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


@pytest.fixture(autouse=True)
def guard() -> Iterator[None]:
    """Puts streams and fds back even if a test fails half way through a capture."""
    streams = (sys.stdout, sys.stderr)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    ids = {fd: _fd_identity(fd) for fd in (1, 2)}
    try:
        yield
    finally:
        leaked = list(capture_mod._active)
        for cap in leaked:
            cap.close()
        moved = [fd for fd in (1, 2) if _fd_identity(fd) != ids[fd]]
        for fd in moved:
            os.dup2(saved[fd], fd)
        for fd in saved.values():
            os.close(fd)
        replaced = (sys.stdout, sys.stderr) != streams
        sys.stdout, sys.stderr = streams
        assert not leaked, "a Capture was left open"
        assert not moved, f"fds {moved} were not restored"
        assert not replaced, "sys.stdout/sys.stderr were not restored"


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def test_install_replaces_and_close_restores_streams(rec: Recorder) -> None:
    before = (sys.stdout, sys.stderr)
    cap = Capture(rec, "main")
    cap.install()
    assert (sys.stdout, sys.stderr) != before
    assert not sys.stdout.isatty()
    assert sys.stdout.encoding == "utf-8"
    with pytest.raises(io.UnsupportedOperation):
        sys.stdout.fileno()
    cap.close()
    assert (sys.stdout, sys.stderr) == before


def test_unbound_threads_use_the_default_name(rec: Recorder) -> None:
    with Capture(rec, "proc") as cap:
        cap.install()
        print("hello")
        print("oops", file=sys.stderr)
    assert rec.lines == [("proc", "hello", False), ("proc", "oops", True)]


def test_two_bound_threads_interleaving_are_attributed(rec: Recorder) -> None:
    barrier = threading.Barrier(2)

    def node(name: str) -> None:
        cap.bind_thread(name)
        for i in range(20):
            sys.stdout.write(f"{name} starts {i}, ")  # a partial line...
            barrier.wait()  # ...while the other thread writes its own
            print(f"{name} ends {i}")
            barrier.wait()

    with Capture(rec, "proc") as cap:
        cap.install()
        threads = [threading.Thread(target=node, args=(n,)) for n in ("alpha", "beta")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(rec.lines) == 40
    for name, line, err in rec.lines:
        assert line.startswith(f"{name} starts ") and f"{name} ends " in line
        assert not err
    for name in ("alpha", "beta"):
        mine = [line for n, line, _ in rec.lines if n == name]
        assert mine == [f"{name} starts {i}, {name} ends {i}" for i in range(20)]


def test_a_thread_object_can_be_bound_before_it_starts(rec: Recorder) -> None:
    with Capture(rec, "proc") as cap:
        cap.install()
        t = threading.Thread(target=lambda: print("from helper"))
        cap.bind_thread("node-a", t)
        t.start()
        t.join()
        assert cap.name_of(t) == "node-a"
        assert cap.name_of() == "proc"
    assert rec.lines == [("node-a", "from helper", False)]


def test_partial_lines_wait_for_newline_flush_or_close(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.install()
        sys.stdout.write("abc")
        sys.stdout.flush()  # a stream flush keeps the line open, as a terminal would
        assert rec.lines == []
        sys.stdout.write("def\nghi")
        assert rec.lines == [("p", "abcdef", False)]
        cap.flush()
        assert rec.lines[-1] == ("p", "ghi", False)
        sys.stderr.write("left at close")
    assert rec.lines[-1] == ("p", "left at close", True)
    assert len(rec.lines) == 3


def test_partial_lines_are_kept_per_stream(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.install()
        sys.stdout.write("out-")
        sys.stderr.write("err-")
        sys.stdout.write("line\n")
        sys.stderr.write("line\n")
    assert rec.lines == [("p", "out-line", False), ("p", "err-line", True)]


def test_unbind_flushes_the_threads_partial_line(rec: Recorder) -> None:
    def node() -> None:
        cap.bind_thread("n")
        sys.stdout.write("no newline")
        cap.unbind_thread()
        print("after")

    with Capture(rec, "p") as cap:
        cap.install()
        t = threading.Thread(target=node)
        t.start()
        t.join()
    assert rec.lines == [("n", "no newline", False), ("p", "after", False)]


def test_crlf_and_empty_lines(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.install()
        sys.stdout.write("dos\r\n\nend\n")
    assert [line for _, line, _ in rec.lines] == ["dos", "", "end"]


def test_endless_line_is_cut(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.install()
        sys.stdout.write("x" * (MAX_LINE + 10))
        assert [len(line) for _, line, _ in rec.lines] == [MAX_LINE]
    assert [len(line) for _, line, _ in rec.lines] == [MAX_LINE, 10]


def test_binary_buffer_writes_are_captured(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.install()
        sys.stdout.buffer.write("bytes caf\u00e9\n".encode())
    assert rec.lines == [("p", "bytes caf\u00e9", False)]


def test_write_line_emits_each_line(rec: Recorder) -> None:
    with Capture(rec, "p") as cap:
        cap.write_line("n", "Traceback\n  boom", err=True)
    assert rec.lines == [("n", "Traceback", True), ("n", "  boom", True)]


def test_failing_emit_falls_back_to_the_real_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    real_err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", real_err)

    def broken(name: str, line: str, err: bool) -> None:
        raise ConnectionError("channel closed")

    with Capture(broken, "p") as cap:
        cap.install()
        print("still shown")  # must not raise into the node
    assert real_err.getvalue() == "p | still shown\n"


def test_emit_that_prints_does_not_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    real_err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", real_err)
    got: list[str] = []

    def chatty(name: str, line: str, err: bool) -> None:
        got.append(line)
        print(f"debug: {line}")

    with Capture(chatty, "p") as cap:
        cap.install()
        print("payload")
    assert got == ["payload"]
    assert real_err.getvalue() == "p | debug: payload\n"


# -- fd level -----------------------------------------------------------------------------


def test_raw_fd_writes_are_captured_and_fds_restored(rec: Recorder) -> None:
    before = {fd: _fd_identity(fd) for fd in (1, 2)}
    cap = Capture(rec, "proc")
    try:
        cap.capture_fds()
        assert _fd_identity(1) != before[1]
        os.write(1, b"raw\n")
        os.write(2, b"raw err\n")
        rec.wait_for(lambda lines: len(lines) == 2)
    finally:
        cap.close()
    assert {fd: _fd_identity(fd) for fd in (1, 2)} == before
    assert sorted(rec.lines) == [("proc", "raw", False), ("proc", "raw err", True)]


def test_subprocess_output_is_captured(rec: Recorder) -> None:
    cap = Capture(rec, "proc")
    try:
        cap.capture_fds()
        subprocess.run(["echo", "from echo"], check=True)
        subprocess.run(["sh", "-c", "echo to stderr >&2"], check=True)
        rec.wait_for(lambda lines: len(lines) == 2)
    finally:
        cap.close()
    assert sorted(rec.lines) == [("proc", "from echo", False), ("proc", "to stderr", True)]


def test_fd_partial_line_is_emitted_at_close(rec: Recorder) -> None:
    cap = Capture(rec, "proc")
    try:
        cap.capture_fds()
        os.write(1, b"first\nno newline")
        rec.wait_for(lambda lines: len(lines) == 1)
    finally:
        cap.close()
    assert rec.lines == [("proc", "first", False), ("proc", "no newline", False)]


def test_close_does_not_wait_for_a_child_holding_the_pipe(rec: Recorder) -> None:
    cap = Capture(rec, "proc")
    child = None
    try:
        cap.capture_fds()
        child = subprocess.Popen(["sh", "-c", "echo child up; exec cat"], stdin=subprocess.PIPE)
        rec.wait_for(lambda lines: len(lines) == 1)
    finally:
        cap.close()  # the child still holds the write end of the pipe
        if child is not None:
            child.communicate(timeout=10)
    assert rec.lines == [("proc", "child up", False)]


def test_python_and_fd_capture_together(rec: Recorder) -> None:
    cap = Capture(rec, "proc")
    try:
        cap.install()
        cap.capture_fds()

        def node() -> None:
            cap.bind_thread("node-1")
            print("python level")
            os.write(1, b"fd level\n")

        t = threading.Thread(target=node)
        t.start()
        t.join()
        rec.wait_for(lambda lines: len(lines) == 2)
    finally:
        cap.close()
    assert sorted(rec.lines) == [("node-1", "python level", False), ("proc", "fd level", False)]


# -- logging ------------------------------------------------------------------------------


def test_node_logger_formats_and_attributes(rec: Recorder) -> None:
    with Capture(rec, "proc"):
        log = node_logger("worker.0")
        assert log.name == "topo.node.worker.0"
        assert not log.propagate
        log.debug("hidden at INFO")
        log.info("started")
        log.warning("slow")
    assert rec.lines == [("worker.0", "INFO started", False), ("worker.0", "WARNING slow", True)]


def test_node_logger_from_another_thread_keeps_its_node(rec: Recorder) -> None:
    with Capture(rec, "proc"):
        log = node_logger("n")
        t = threading.Thread(target=log.info, args=("from a helper",))
        t.start()
        t.join()
    assert rec.lines == [("n", "INFO from a helper", False)]


def test_node_logger_twice_does_not_double_lines(rec: Recorder) -> None:
    with Capture(rec, "proc"):
        node_logger("n")
        node_logger("n", level=logging.DEBUG).debug("once")
    assert rec.lines == [("n", "DEBUG once", False)]


def test_logged_traceback_is_one_event_per_line(rec: Recorder) -> None:
    with Capture(rec, "proc"):
        try:
            raise ValueError("boom")
        except ValueError:
            node_logger("n").exception("failed")
    lines = [line for _, line, _ in rec.lines]
    assert lines[0] == "ERROR failed"
    assert lines[-1] == "ValueError: boom"
    assert all(err for _, _, err in rec.lines)


def test_log_handler_with_explicit_capture(rec: Recorder) -> None:
    other = Recorder()
    mine = Capture(rec, "mine")
    try:
        with Capture(other, "newer"):
            logger = logging.getLogger("test_capture.explicit")
            logger.propagate = False
            handler = log_handler("n", capture=mine)
            logger.addHandler(handler)
            try:
                logger.error("to mine")
            finally:
                logger.removeHandler(handler)
    finally:
        mine.close()
    assert rec.lines == [("n", "ERROR to mine", True)]
    assert other.lines == []


def test_wait_helper_fails_cleanly_on_timeout(rec: Recorder) -> None:
    start = time.monotonic()
    with pytest.raises(AssertionError):
        rec.wait_for(lambda lines: bool(lines), timeout=0.05)
    assert time.monotonic() - start < 5
