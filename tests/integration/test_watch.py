"""``topo up --watch FILE``: a saved topology applied, a saved module restarting the nodes
whose code it is, a broken save keeping the run, editor save patterns applied once,
Ctrl-C ending it all. Real processes, files edited as an editor saves them; each test
waits on the command's output lines, with deadlines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

from conftest import Topo, processes_with_home, wait_until
from test_edit import pids

TOPOLOGY = """
    topology: watched
    nodes:
      alpha: {{run: "wmod_a:run", args: {{every: {every}}}}}
      beta: {{run: "wmod_b:run"}}
      gamma: {{run: "wmod_b:run"}}
"""
NODE = """
    {imports}

    def run(node):
        while node.sleep(node.args.get("every", 0.1)):
            pass
"""


def setup(topo: Topo, every: float = 0.1) -> str:
    """The topology and its modules in tmp_path: alpha's imports ``wshared``."""
    (topo.tmp / "wmod_a.py").write_text(textwrap.dedent(NODE.format(imports="import wshared")))
    (topo.tmp / "wmod_b.py").write_text(textwrap.dedent(NODE.format(imports="")))
    (topo.tmp / "wshared.py").write_text("VALUE = 1\n")
    return topo.file(TOPOLOGY.format(every=every))


def started(topo: Topo, file: str) -> tuple[subprocess.Popen[str], dict[str, tuple[int, int]]]:
    proc = topo.start("up", "--watch", "--no-color", file)
    topo.wait_for_line(proc, r"all 3 node\(s\) ready")
    return proc, pids(topo, "watched")


def saved_at(path: Path, text: str) -> float:
    """``text`` written over ``path`` (truncate and write); when it was written."""
    path.write_text(textwrap.dedent(text))
    return time.monotonic()


def applied(topo: Topo, proc: subprocess.Popen[str]) -> list[str]:
    """The lines up to a save's apply's last one: its time, then the difference."""
    return topo.wait_for_lines(proc, [r"topo +\| topo\.yaml applied in \d", r"topo +\| = \d+ unchanged"])


def test_a_saved_topology_is_applied_and_only_its_changed_node_restarts(topo: Topo, record_property: Any) -> None:
    file = Path(setup(topo))
    proc, before = started(topo, str(file))
    written = saved_at(file, TOPOLOGY.format(every=0.2))
    lines = topo.wait_for_line(proc, r"topo +\| topo\.yaml applied in \d")
    latency = time.monotonic() - written
    lines += topo.wait_for_line(proc, r"topo +\| = \d+ unchanged")
    record_property("save_to_applied_s", round(latency, 3))
    print(f"save -> applied: {latency:.3f}s")
    text = "".join(lines)
    assert "topo.yaml saved: applying" in text
    assert re.search(r"topo +\| ~ alpha \(args\)", text), text
    assert re.search(r"topo +\| ↻ process alpha", text), text
    after = pids(topo, "watched")
    assert after["alpha"][0] != before["alpha"][0] and after["alpha"][1] == 1
    assert {n: after[n] for n in ("beta", "gamma")} == {n: before[n] for n in ("beta", "gamma")}


def test_a_saved_module_restarts_only_the_nodes_whose_code_it_is(topo: Topo, record_property: Any) -> None:
    proc, before = started(topo, setup(topo))
    written = saved_at(topo.tmp / "wshared.py", "VALUE = 2\n")  # imported by alpha's module
    topo.wait_for_line(proc, r"topo +\| wshared\.py saved: restarting alpha$")
    topo.wait_for_line(proc, r"topo +\| alpha ready again \(restart 1\)")
    latency = time.monotonic() - written
    record_property("module_save_to_ready_s", round(latency, 3))
    print(f"module save -> restarted node ready: {latency:.3f}s")
    middle = pids(topo, "watched")
    assert middle["alpha"][0] != before["alpha"][0]
    assert {n: middle[n] for n in ("beta", "gamma")} == {n: before[n] for n in ("beta", "gamma")}

    saved_at(topo.tmp / "wmod_b.py", NODE.format(imports="import os"))  # beta's and gamma's
    topo.wait_for_line(proc, r"topo +\| wmod_b\.py saved: restarting beta, gamma$")
    topo.wait_for_lines(proc, [r"beta ready again \(restart 1\)", r"gamma ready again \(restart 1\)"])
    after = pids(topo, "watched")
    assert after["alpha"] == middle["alpha"]
    assert after["beta"][0] != before["beta"][0] and after["gamma"][0] != before["gamma"][0]


def test_a_module_that_does_not_compile_is_reported_and_its_nodes_go_on(topo: Topo) -> None:
    proc, before = started(topo, setup(topo))
    saved_at(topo.tmp / "wmod_b.py", "def run(node:\n")
    topo.wait_for_line(proc, r"topo +\| wmod_b\.py saved: nodes not restarted, the run goes on as it was")
    topo.wait_for_line(proc, r"topo +\| \S*wmod_b\.py:1:\d+: ")
    saved_at(topo.tmp / "wmod_b.py", NODE.format(imports=""))
    topo.wait_for_lines(proc, [r"beta ready again \(restart 1\)", r"gamma ready again \(restart 1\)"])
    after = pids(topo, "watched")
    assert after["alpha"] == before["alpha"]


def test_a_broken_save_keeps_the_run_and_the_next_good_save_applies(topo: Topo) -> None:
    file = Path(setup(topo))
    proc, before = started(topo, str(file))
    saved_at(file, TOPOLOGY.format(every=0.2).replace("beta: {", "beta: {{"))
    lines = topo.wait_for_line(proc, r"topo +\| topo\.yaml saved: not applied, the run goes on as it was")
    lines += topo.wait_for_lines(proc, [r"topo +\| \S*topo\.yaml:\d+:\d+: ", r"topo +\| 1 problem$"])
    assert not any("applying" in line for line in lines), lines
    assert pids(topo, "watched") == before  # every node still running, untouched
    saved_at(file, TOPOLOGY.format(every=0.2))
    lines = applied(topo, proc)
    assert re.search(r"~ alpha \(args\)", "".join(lines))
    after = pids(topo, "watched")
    assert after["alpha"][0] != before["alpha"][0] and after["beta"] == before["beta"]


def test_editor_saves_apply_once_each(topo: Topo) -> None:
    """Write a temporary file and rename it over the file (most editors); move the file
    aside, write it anew, delete the backup (vim); truncate and write in several writes."""
    file = Path(setup(topo))
    proc, _ = started(topo, str(file))

    def rename_save(every: float) -> None:
        tmp = file.with_name(".topo.yaml.tmp")
        tmp.write_text(textwrap.dedent(TOPOLOGY.format(every=every)))
        os.replace(tmp, file)

    def backup_save(every: float) -> None:
        backup = file.with_name("topo.yaml~")
        os.replace(file, backup)
        file.write_text(textwrap.dedent(TOPOLOGY.format(every=every)))
        backup.unlink()

    def piecewise_save(every: float) -> None:
        text = textwrap.dedent(TOPOLOGY.format(every=every))
        with open(file, "w") as f:
            for i in range(0, len(text), 16):
                f.write(text[i:i + 16])
                f.flush()

    read: list[str] = []
    for save, every in ((rename_save, 0.2), (backup_save, 0.3), (piecewise_save, 0.4), (rename_save, 0.2)):
        save(every)
        read += applied(topo, proc)
    # a save of the same text again: nothing to apply, nothing printed; then a module
    # save, whose line comes after anything the saves above could still have caused
    rename_save(0.2)
    saved_at(topo.tmp / "wshared.py", "VALUE = 3\n")
    read += topo.wait_for_line(proc, r"wshared\.py saved: restarting alpha")
    text = "".join(read)
    assert text.count("topo.yaml saved: applying") == 4, text
    assert text.count("topo.yaml applied in") == 4, text
    assert "not applied" not in text, text
    assert pids(topo, "watched")["alpha"][1] == 5  # 4 applies and the module save


def test_ctrl_c_ends_the_watch_and_every_process(topo: Topo) -> None:
    file = Path(setup(topo))
    proc, _ = started(topo, str(file))
    saved_at(file, TOPOLOGY.format(every=0.2))
    applied(topo, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "stopped: Ctrl-C" in out, out
    wait_until(lambda: not processes_with_home(topo.home), 10, "every process of the run to end")
    assert not topo.run_dirs()


def test_a_node_added_by_a_save_has_its_module_watched_from_then_on(topo: Topo) -> None:
    file = Path(setup(topo))
    proc, before = started(topo, str(file))
    (topo.tmp / "wmod_c.py").write_text(textwrap.dedent(NODE.format(imports="")))
    saved_at(file, TOPOLOGY.format(every=0.1) + '      delta: {run: "wmod_c:run"}\n')
    lines = applied(topo, proc)
    assert re.search(r"topo +\| \+ delta \(process delta\)", "".join(lines)), lines
    tmp = topo.tmp / ".wmod_c.py.new"  # saved as most editors save: a new file renamed over it
    tmp.write_text(textwrap.dedent(NODE.format(imports="import json")))
    os.replace(tmp, topo.tmp / "wmod_c.py")
    topo.wait_for_lines(proc, [r"topo +\| wmod_c\.py saved: restarting delta$", r"delta ready again \(restart 1\)"])
    after = pids(topo, "watched")
    assert {n: after[n] for n in before} == before


def test_watch_is_refused_with_detach(topo: Topo) -> None:
    result = topo.run("up", "-d", "--watch", setup(topo))
    assert result.code == 2
    assert "--watch stays in the foreground" in result.err
    assert not processes_with_home(topo.home)


def test_a_saved_overlay_is_applied(topo: Topo) -> None:
    file = setup(topo)
    over = Path(topo.file("nodes:\n  gamma: {args: {n: 1}}\n", name="over.yaml"))
    proc = topo.start("up", "--watch", "--no-color", file, "-f", str(over))
    topo.wait_for_line(proc, r"all 3 node\(s\) ready")
    before = pids(topo, "watched")
    saved_at(over, "nodes:\n  gamma: {args: {n: 2}}\n")
    lines = applied(topo, proc)
    assert re.search(r"~ gamma \(args\)", "".join(lines))
    after = pids(topo, "watched")
    assert after["gamma"][0] != before["gamma"][0] and after["beta"] == before["beta"]
