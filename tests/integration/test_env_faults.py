"""A broken environment gets a clear message, never an internal error or a hang: a log
directory that cannot be created, a log disk that fills during the run, names too long
for the files they become."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Topo

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                               reason="mounts a tmpfs: needs root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """``tmpfs(dir, options)``: a tmpfs mounted there for the test, unmounted after."""
    mounted: list[Path] = []

    def mount(where: Path, options: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


@ROOT_ONLY
def test_an_unwritable_log_directory_is_a_clear_error_before_the_start(topo: Topo, tmp_path: Path,
                                                                        tmpfs) -> None:  # type: ignore[no-untyped-def]
    home = tmpfs(tmp_path / "home", "ro,size=64k")
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    topo.env.pop("TOPO_HOME")
    topo.env.pop("XDG_STATE_HOME", None)
    topo.env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    path = topo.file("""
        topology: rofs
        nodes:
          a: {run: 'envnodes:print_lines', args: {count: 1}}
        """)
    result = topo.run("up", path, timeout=30)
    assert result.code == 2, result.out + result.err
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert f"cannot create the log directory {home}/.local/state/topo/logs/rofs/" in lines[0]
    assert "Read-only file system" in lines[0] and "XDG_STATE_HOME" in lines[0]
    assert "internal error" not in result.err
    assert not any((runtime / "topo").glob("rofs*")), "a run directory was left behind"


@ROOT_ONLY
def test_a_log_disk_that_fills_during_the_run_stops_the_logs_not_the_run(topo: Topo, tmpfs) -> None:  # type: ignore[no-untyped-def]
    tmpfs(topo.home / "logs", "size=256k")
    path = topo.file("""
        topology: fulldisk
        nodes:
          chatty: {run: 'envnodes:print_lines', args: {count: 20000}, on_exit: stop}
        """)
    result = topo.run("up", path, timeout=60)  # 2 MB of output into 256 KB of disk
    assert result.code == 0, result.out[-3000:] + result.err
    assert result.out.count("log files stopped (") == 1, result.out[-3000:]
    assert "No space left on device" in result.out
    assert "LAST LINE" in result.out  # the terminal kept every line
    assert "internal error" not in result.err
    assert not topo.socket_files()


def test_names_of_the_longest_allowed_length_run(topo: Topo) -> None:
    """200 characters is what the file allows; its log directory and files must exist."""
    name, node = "t" * 200, "n" * 200
    path = topo.file(f"""
        topology: {name}
        nodes:
          {node}: {{run: 'envnodes:print_lines', args: {{count: 1}}, replicas: 2}}
        """)
    result = topo.run("up", path, timeout=60)
    assert result.code == 0, result.out + result.err
    logs = {p.name for p in (topo.home / "logs" / name).glob("*/*.log")}
    assert logs >= {f"{node}.0.log", f"{node}.1.log"}, logs


def test_check_rejects_a_topology_name_up_could_not_run(topo: Topo) -> None:
    path = topo.file(f"topology: {'t' * 256}\nnodes:\n  a: {{run: 'envnodes:print_lines'}}\n")
    result = topo.run("check", path)
    assert result.code == 2, result.out + result.err
    assert "at most 200 (it names files)" in result.out + result.err


@pytest.mark.parametrize("selector", ["..", "../secret", "t/../../secret", "/etc"])
def test_logs_reads_nothing_outside_the_log_directory(topo: Topo, selector: str) -> None:
    """`topo logs ..` listed `*.log` files one level above every topology's logs."""
    secret = topo.home / "secret" / "20261203-000000-abcdef"
    secret.mkdir(parents=True)
    (secret / "x.log").write_text("2026-12-03T00:00:00.000000Z out the secret\n")
    (topo.home / "logs").mkdir(exist_ok=True)
    result = topo.run("logs", selector, "--no-color")
    assert result.code == 2, result.out + result.err
    assert "the secret" not in result.out + result.err
    assert "is not a run" in result.err
