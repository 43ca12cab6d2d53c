"""What a user reads about a node must be true: its state while its code imports, how it
failed when the error has no message, that it was stopped when it ignored the stop."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

from conftest import Topo, wait_until


def test_a_node_whose_code_still_imports_is_shown_importing_not_waiting_for_peers(
        topo: Topo, tmp_path: Path) -> None:
    release = tmp_path / "release"
    os.mkfifo(release)
    # the module's import blocks until the test writes to the fifo; its node has no peers
    (topo.tmp / "heldmod.py").write_text(
        "import os\nopen(os.environ['HELD_RELEASE']).read()\ndef node(node):\n    print('node ran')\n")
    path = topo.file(f"""
        topology: held
        nodes:
          held: {{run: 'heldmod:node', env: {{HELD_RELEASE: {str(release)!r}}}}}
        """)
    proc = topo.start("up", path)
    try:
        states: list[str] = []

        def importing() -> bool:
            for run in json.loads(topo.run("ps", "held", "--json").out or "[]"):
                states.extend(n["state"] for n in run.get("nodes", []))
            return bool(states) and states[-1] == "importing its code"

        wait_until(importing, 30, "held shown importing its code in topo ps")
        releaser = threading.Thread(target=lambda: open(release, "w").close(), daemon=True)
        releaser.start()  # blocks until the import opens the fifo for reading: it has
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "node ran" in out
    # (a node with no peers may show "waiting for peers" for the moment between its binds
    # and its gate's first look; what matters is what it shows while the import runs)
    assert states[-1] == "importing its code"


def test_an_error_without_a_message_has_no_dangling_colon(topo: Topo) -> None:
    path = topo.file("""
        topology: quiet
        nodes:
          q: {run: 'envnodes:exit_quietly'}
        """)
    result = topo.run("up", path)
    assert result.code == 1, result.out + result.err
    assert "q failed: SystemExit\n" in result.out, result.out
    assert "SystemExit: " not in result.out


def test_a_node_that_ignored_the_stop_is_reported_stopped(topo: Topo) -> None:
    """docs/running.md: 'reported as stopped, with ignored the stop: abandoned after ...'."""
    path = topo.file("""
        topology: deaf
        nodes:
          deaf: {run: 'itnodes:ignore_stop', sockets: {out: PUSH}}
          sink: {run: 'itnodes:block_forever', sockets: {in: PULL}}
        links: [deaf.out -> sink.in]
        """)
    proc = topo.start("up", path, "--grace", "1")
    try:
        topo.wait_for_line(proc, "ready")
        down = topo.run("down", "deaf")
        assert down.code == 0, down.out + down.err
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    table = out[out.index("NODE"):]
    assert "failed: ignored the stop" not in table, table
    if "ignored the stop" in out:  # the process abandoned it itself (else SIGTERM ended it), or,
        # still there a second after SIGTERM (a loaded machine), it was killed
        assert re.search(r"stopped \(ignored the stop: (abandoned|killed) after the 1s grace period\)", table), table
    [outcome_file] = (topo.home / "logs").rglob("outcome.json")
    assert json.loads(outcome_file.read_text())["nodes"]["deaf"].startswith("stopped"), outcome_file.read_text()


def test_a_node_whose_process_had_to_be_killed_in_the_stop_is_reported_stopped(topo: Topo) -> None:
    """A process frozen through the stop (SIGSTOP: neither the stop nor SIGTERM reach its
    code) is SIGKILLed a second after SIGTERM: its node ignored the stop, and is reported
    as stopped with that said, as a program's is; it was reported failed, 'its process
    killed by SIGKILL', as if it had crashed (seen in CI for a node ignoring the stop on a
    loaded machine, whose process was a moment late)."""
    path = topo.file("""
        topology: frozen
        nodes:
          ice: {run: 'itnodes:block_forever', sockets: {in: PULL}}
          feed: {run: 'itnodes:idle', sockets: {out: PUSH}}
        links: [feed.out -> ice.in]
        """)
    proc = topo.start("up", path, "--grace", "1")
    try:
        topo.wait_for_line(proc, r"all 2 node\(s\) ready")
        ice = json.loads(topo.run("ps", "frozen", "--json").out)[0]
        pid = next(n["pid"] for n in ice["nodes"] if n["name"] == "ice")
        os.kill(pid, signal.SIGSTOP)
        assert topo.run("down", "frozen").code == 0
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "ice ignored the stop: killed after the 1s grace period" in out, out
    table = out[out.index("NODE"):]
    assert re.search(r"ice +stopped \(ignored the stop: killed after the 1s grace period\)", table), table
    [outcome_file] = (topo.home / "logs").rglob("outcome.json")
    outcome = json.loads(outcome_file.read_text())
    assert outcome["code"] == 0 and outcome["nodes"]["ice"].startswith("stopped"), outcome
