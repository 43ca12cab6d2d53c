"""Nothing outside what a run made itself is trusted: a run base another user made in a
shared /tmp, a path or a pid that a planted ``run.json`` names (docs/security.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conftest import Topo

STRANGER = 54321  # a uid nobody on this machine has: what matters is that it is not ours


def _shared_tmp(topo: Topo, tmp_path: Path) -> Path:
    """The environment of a user with neither XDG_RUNTIME_DIR nor TOPO_HOME: the run base
    is TMPDIR/topo-UID. Returns that path (not created)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    for key in ("TOPO_HOME", "XDG_RUNTIME_DIR"):
        topo.env.pop(key, None)
    topo.env.update(TMPDIR=str(tmpdir), XDG_STATE_HOME=str(tmp_path / "state"))
    return tmpdir / f"topo-{os.getuid()}"


def _plant(base: Path, victim: Path) -> None:
    planted = base / "x-abcdef"
    planted.mkdir(parents=True)
    (planted / "run.json").write_text(json.dumps({"pid": 1, "started": 0, "sockets": str(victim),
                                                  "topology": "x", "run_id": "abcdef"}))


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a directory to another uid: needs root")
@pytest.mark.parametrize("command", ["ps", "up"])
def test_a_run_base_another_user_made_is_refused_and_nothing_it_names_is_touched(
        topo: Topo, tmp_path: Path, command: str) -> None:
    base = _shared_tmp(topo, tmp_path)
    victim = tmp_path / "important"
    victim.mkdir()
    (victim / "data").write_text("keep me")
    _plant(base, victim)
    os.chown(base, STRANGER, STRANGER)  # the other user made /tmp/topo-UID first
    path = topo.file("topology: t\nnodes:\n  a: {run: 'envnodes:print_lines', args: {count: 1}}\n")
    result = topo.run(*(["ps"] if command == "ps" else ["up", path]), timeout=30)
    assert result.code == 2, result.out + result.err
    assert f"{base} belongs to another user (uid {STRANGER})" in result.err
    assert (victim / "data").read_text() == "keep me"


def test_a_dead_runs_files_are_removed_only_inside_the_base(topo: Topo, tmp_path: Path) -> None:
    """A run.json (ours, but written by anyone who could) naming a path outside the base:
    the dead run's directory goes, the path it names stays."""
    victim = tmp_path / "important"
    victim.mkdir()
    (victim / "data").write_text("keep me")
    base = topo.home / "runs"
    base.mkdir(mode=0o700, parents=True)
    _plant(base, victim)
    result = topo.run("ps")
    assert result.code == 0, result.out + result.err
    assert not (base / "x-abcdef").exists()
    assert (victim / "data").read_text() == "keep me"


def test_an_agent_ends_only_a_predecessor_whose_pid_and_start_time_match(tmp_path: Path) -> None:
    """A planted agent directory's run.json naming any pid made the agent SIGKILL it."""
    from topo.hosts.agent_dir import end_predecessor

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(bystander.pid).create_time()
        for named in ({"pid": bystander.pid, "started": None}, {"pid": bystander.pid, "started": started - 100},
                      {"pid": bystander.pid}):
            (tmp_path / "run.json").write_text(json.dumps({"agent": True, **named}))
            end_predecessor(tmp_path)
            assert bystander.poll() is None, f"killed on {named}"
        (tmp_path / "run.json").write_text(json.dumps({"agent": True, "pid": bystander.pid, "started": started}))
        end_predecessor(tmp_path)  # its own predecessor, as recorded: ended
        assert bystander.wait(10) is not None
    finally:
        if bystander.poll() is None:
            bystander.kill()
            bystander.wait()


def test_malformed_messages_on_the_supervisors_own_sockets_are_dropped(topo: Topo) -> None:
    """Deep JSON, missing or wrong-typed fields, a node name that would be a file name:
    each killed the run with an internal error (and outcome.json said code 0)."""
    import zmq

    path = topo.file("""
        topology: hostile
        nodes:
          a: {run: 'itnodes:block_forever', sockets: {in: PULL}}
          b: {run: 'itnodes:idle', sockets: {out: PUSH}}
        links: [b.out -> a.in]
        """)
    proc = topo.start("up", path)
    ctx = zmq.Context()
    try:
        topo.wait_for_line(proc, "all 2 node")
        [run_dir] = [p for p in (topo.home / "runs").iterdir() if (p / "ev").exists()]
        push = ctx.socket(zmq.PUSH)
        push.linger = 1000
        push.connect(f"ipc://{run_dir}/ev")
        for frames in ([b"exited", b"[" * 100_000], [b"output", b'{"instance": "a"}'],
                       [b"output", b'{"instance": "../../x", "line": "x", "err": false}'],
                       [b"bound", b'{"instances": ["a"], "endpoints": {"k": 1}}'],
                       [b"failed", b'{"instance": "a", "error": 3}'], [b"bye", b'{"process": 7}'],
                       [b"\xff"], [b"hello", b"\xff\xfe"]):
            push.send_multipart(frames)
        push.close()
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.connect(f"ipc://{run_dir}/ctl")
        req.send(b"[" * 100_000)  # the control socket too
        assert not req.poll(500), "a malformed request got an answer"
        req.close()
        ps = topo.run("ps", "hostile", "--json")  # still answering
        assert ps.code == 0 and "running" in ps.out, ps.out + ps.err
        down = topo.run("down", "hostile")
        assert down.code == 0, down.out + down.err
        out, err = proc.communicate(timeout=30)
    finally:
        ctx.term()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "internal error" not in err
    [outcome_file] = (topo.home / "logs").rglob("outcome.json")
    outcome = json.loads(outcome_file.read_text())
    assert outcome["code"] == 0 and outcome["nodes"] == {"a": "stopped", "b": "exited"}, outcome
