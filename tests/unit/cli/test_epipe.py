"""A reader that has gone (topo.cli.epipe): told apart from topo's own broken pipes, the
streams silenced, the status 141 without a word. The real command against closed pipes:
tests/integration/test_cli_logs.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TextIO

import pytest
from click.testing import CliRunner

from topo.cli import epipe
from topo.cli.main import EXIT_INTERNAL, EXIT_PIPE, cli


@pytest.fixture
def gone() -> Iterator[TextIO]:
    """A stream whose reader has gone: the write end of a pipe whose read end is closed."""
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    yield stream
    stream.close()


def test_the_status_is_a_shells_for_sigpipe() -> None:
    assert EXIT_PIPE == 141


def test_a_broken_pipe_of_stdout_is_the_reader_gone(gone: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", gone)
    assert epipe.stream_gone(gone)
    assert epipe.reader_gone(BrokenPipeError())
    assert not epipe.reader_gone(ConnectionResetError())


def test_a_broken_pipe_elsewhere_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = os.pipe()
    try:
        with os.fdopen(os.dup(write), "w") as open_pipe:
            monkeypatch.setattr(sys, "stdout", open_pipe)
            monkeypatch.setattr(sys, "stderr", open_pipe)
            assert not epipe.stream_gone(open_pipe)
            assert not epipe.reader_gone(BrokenPipeError())  # some other pipe of topo's own
    finally:
        os.close(read)
        os.close(write)


def test_streams_without_a_descriptor_are_never_gone() -> None:
    import io

    assert not epipe.stream_gone(io.StringIO())
    assert not epipe.stream_gone(None)


def test_silence_points_only_the_gone_streams_at_dev_null(gone: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = os.pipe()
    with os.fdopen(write, "w") as fine:
        monkeypatch.setattr(sys, "stdout", gone)
        monkeypatch.setattr(sys, "stderr", fine)
        gone.write("x" * 100)  # buffered: the interpreter's last flush would raise
        epipe.silence()
        gone.flush()  # now it does not
        assert os.path.samestat(os.fstat(gone.fileno()), os.stat(os.devnull))
        fine.write("still read\n")
    with os.fdopen(read) as reader:
        assert reader.read() == "still read\n"


def test_die_ends_the_process_by_sigpipe_even_blocked() -> None:
    code = ("import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE}); "
            "from topo.cli import epipe; epipe.die()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGPIPE, done.stderr
    assert done.stderr == ""


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()


def broken_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def write_to_a_gone_reader() -> str:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("topo.file.schema.schema_json", write_to_a_gone_reader)


def test_a_command_whose_reader_has_gone_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    broken_schema(monkeypatch)
    monkeypatch.setattr(epipe, "reader_gone", lambda err: isinstance(err, BrokenPipeError))
    monkeypatch.setattr(epipe, "silence", lambda: None)
    result = runner().invoke(cli, ["schema"], prog_name="topo")
    assert result.exit_code == EXIT_PIPE
    assert result.stdout == "" and result.stderr == ""


def test_a_broken_pipe_of_topos_own_stays_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken_schema(monkeypatch)
    monkeypatch.setattr(epipe, "reader_gone", lambda err: False)
    monkeypatch.delenv("TOPO_DEBUG", raising=False)
    result = runner().invoke(cli, ["schema"], prog_name="topo")
    assert result.exit_code == EXIT_INTERNAL
    assert "internal error: BrokenPipeError" in result.stderr


def test_the_command_ends_by_sigpipe_after_the_atexit_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit

    from topo.cli import main as cli_module

    done: list[object] = []

    class Died(Exception):
        pass

    def die() -> None:
        done.append("die")
        raise Died

    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: done.append("atexit"))
    monkeypatch.setattr(epipe, "die", die)
    monkeypatch.setattr(os, "_exit", lambda code: done.append(code))
    with pytest.raises(Died):
        cli_module._exit_now(EXIT_PIPE)
    assert done == ["atexit", "die"]
