"""The pure parts of `topo up -d`, `topo attach` and `topo ps`: the status pipe's checks and
words, which runs belong to the current project, and how a finished node is shown."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from topo.cli.client import _state, of_project
from topo.cli.detach import StatusPipe
from topo.errors import UsageError
from topo.supervisor.runstate import NodeState, ProcState, snapshot


def test_the_status_pipe_must_be_a_pipe() -> None:
    with tempfile.TemporaryFile() as regular:
        with pytest.raises(UsageError, match="not a pipe"):
            StatusPipe(regular.fileno())
    with pytest.raises(UsageError, match="--status-fd 999"):
        StatusPipe(999)  # not open


def test_the_status_pipe_says_run_then_goes_quiet_once_closed() -> None:
    read, write = os.pipe()
    try:
        status = StatusPipe(write)
        assert not os.get_inheritable(write)  # no node process holds the parent's signal
        status.tell("run", "t/20261203-120000-abcdef")
        status.close()
        status.tell("ready", "t/20261203-120000-abcdef")  # after close: nothing, no error
        assert os.read(read, 100) == b"run t/20261203-120000-abcdef\n"
        assert os.read(read, 100) == b""  # closed: the parent sees the end
    finally:
        os.close(read)


def test_the_status_pipe_of_a_gone_parent_is_no_error() -> None:
    read, write = os.pipe()
    os.close(read)
    status = StatusPipe(write)
    status.tell("run", "t/x")  # EPIPE: the run goes on
    assert status.fd is None


def test_a_run_is_of_the_project_its_file_or_its_start_is_in(tmp_path: Path) -> None:
    here = tmp_path / "proj"
    assert of_project({"file": str(here / "topo.yaml")}, here)
    assert of_project({"file": str(here / "deep" / "down" / "t.yaml")}, here)
    assert of_project({"file": "/elsewhere/t.yaml", "cwd": str(here)}, here)
    assert of_project({"file": "/elsewhere/t.yaml", "cwd": str(here / "sub")}, here)
    assert not of_project({"file": "/elsewhere/t.yaml", "cwd": "/elsewhere"}, here)
    assert not of_project({"file": str(tmp_path / "proj2" / "t.yaml")}, here)  # a prefix is not a parent
    # what run.json says is not trusted to be a path: not one, not this project's
    assert not of_project({"file": 7, "cwd": ["x"]}, here)
    assert not of_project({"file": "relative/t.yaml"}, here)
    assert of_project({}, None)  # no current directory: nothing to tell apart


def test_a_node_that_ended_shows_its_exit_and_when() -> None:
    now = time.monotonic()
    nodes = {
        "done": NodeState("done", "p1", state="exited", started=now - 5, ended=now - 2),
        "bad": NodeState("bad", "p2", state="failed", started=now - 5, ended=now - 1, error="boom"),
        "up": NodeState("up", "p3", state="running", started=now - 5),
    }
    procs = {name: ProcState(name, (node,)) for node, name in (("done", "p1"), ("bad", "p2"), ("up", "p3"))}
    rows = {r["name"]: r for r in snapshot(nodes, procs)}
    assert (rows["done"]["exit"], rows["bad"]["exit"], rows["up"]["exit"]) == (0, 1, None)
    assert abs(rows["done"]["ended"] - (time.time() - 2)) < 0.5
    assert rows["up"]["ended"] is None
    assert _state({"state": "exited", "exit": 0, "ended": time.time() - 12}) == "exited (0) 12.0s ago"
    assert _state({"state": "running", "exit": None, "ended": None}) == "running"
    assert _state({"state": "stopped", "exit": None, "ended": time.time() - 61}).startswith("stopped 1m0")


def test_attachs_ctrl_c_is_a_request_of_its_own() -> None:
    from topo.supervisor.runstate import answer, interrupts

    assert answer(b'{"cmd": "interrupt"}', {}, {}, "local") == ({"ok": True}, False)  # not a `topo down`
    assert interrupts(b'{"cmd": "interrupt"}')
    for other in (b'{"cmd": "down"}', b'{"cmd": "ps"}', b"", b"[1]", b"\xff", b'{"cmd": ["interrupt"]}'):
        assert not interrupts(other)
