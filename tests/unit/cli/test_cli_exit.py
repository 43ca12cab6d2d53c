"""How the ``topo`` entry point ends the process: at once, with the command's status, after
the atexit handlers and a flush; by the interpreter's ordinary exit when that is safer."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path

import pytest

from topo.cli import main as cli


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@pytest.fixture
def os_exit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``os._exit`` replaced by an exception carrying the status, so the test survives it;
    and the atexit handlers' run recorded instead of done: run for real, it would run (and
    clear) every handler of the test process itself (multiprocessing's among them)."""
    codes: list[int] = []

    def fake(code: int) -> None:
        codes.append(code)
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", fake)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: codes.append(-1))
    return codes


def test_main_ends_with_os_exit_and_the_commands_status(tmp_path: Path, os_exit: list[int],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("topology: t\nnodes: {}\nlinks: [\n")
    monkeypatch.setattr(sys, "argv", ["topo", "check", str(bad)])
    with pytest.raises(_Exited):
        cli.main()
    assert os_exit == [-1, 2]  # the atexit handlers, then the exit with check's status


def test_main_runs_the_atexit_handlers_first(os_exit: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["topo", "--version"])
    with pytest.raises(_Exited):
        cli.main()
    assert os_exit == [-1, 0]


def test_a_running_non_daemon_thread_leaves_the_exit_to_the_interpreter(
        os_exit: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)
    worker.start()
    monkeypatch.setattr(sys, "argv", ["topo", "--version"])
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        release.set()
        worker.join()
    assert exited.value.code == 0
    assert os_exit == []


def test_a_ctrl_c_wrapped_on_its_way_up_is_an_interruption_not_an_internal_error() -> None:
    """Python 3.11 wraps a KeyboardInterrupt raised while a class is made (a Ctrl-C during
    an import) in ``RuntimeError: Error calling __set_name__``: seen in CI as 'internal
    error' (exit 70) for a Ctrl-C in topo up's first second; it is an interruption (130)."""
    import click
    from click.testing import CliRunner

    @click.command("wrapped-ctrl-c")
    def wrapped() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ctrl_c:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'at'") from ctrl_c

    cli.cli.add_command(wrapped)
    try:
        result = CliRunner().invoke(cli.cli, ["wrapped-ctrl-c"])
    finally:
        cli.cli.commands.pop("wrapped-ctrl-c", None)
    assert result.exit_code == cli.EXIT_INTERRUPTED == 130, result.output
    assert "interrupted" in result.output and "internal error" not in result.output, result.output
