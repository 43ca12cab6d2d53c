"""Node processes with processes of their own (issue 13, items 5 and 6).

A node process's end must be seen whatever its children hold open (they inherit the
descriptors multiprocessing watches), and what a node process started must not outlive
it: not after a normal end, not after Ctrl-C, not after ``kill -9`` of the process.
Every wait here is on a real signal (a line read, a pid gone) with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import psutil
import pytest

from conftest import Topo, wait_until

#: Bound for seeing a node process's end and acting on it: generous for a loaded machine,
#: far below "never" (the bug: forever).
SEEN_WITHIN = 20.0


def _pids(lines: list[str], node: str) -> list[int]:
    for line in reversed(lines):
        found = re.match(rf"^{node}\s+\| pids ([\d ]+)$", line)
        if found:
            return [int(p) for p in found.group(1).split()]
    raise AssertionError(f"no pids line of {node} in:\n{''.join(lines)}")


def _gone(pids: list[int]) -> bool:
    """True when none of ``pids`` is a live process (a zombie has ended: it only waits to
    be reaped by whoever is its parent now)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def _finish(topo: Topo, up: subprocess.Popen[str], timeout: float = SEEN_WITHIN) -> str:
    """``topo up``'s remaining output, once it has exited by itself within ``timeout``."""
    try:
        out, _ = up.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"topo up did not exit within {timeout}s") from None
    return out


@pytest.mark.parametrize("run", ["fork_child", "os_fork_child", "popen_no_close_child"])
def test_a_killed_node_process_with_a_live_child_is_seen_failed_and_restarted(topo: Topo, run: str) -> None:
    path = topo.file(f"""
        topology: forks
        nodes:
          sp: {{run: "childnodes:{run}", restart: on-failure}}
          other: {{run: "childnodes:idle"}}
    """)
    up = topo.start("up", path)
    lines = topo.wait_for_line(up, r"^sp\s+\| pids ")
    node_pid, child_pid = _pids(lines, "sp")
    os.kill(node_pid, signal.SIGKILL)
    # the new process's first line comes through its output pipe, the ready report through
    # the control channel: either may be read first
    lines += topo.wait_for_lines(up, [r"sp failed \(its process sp killed by SIGKILL\); restarting",
                                      r"sp ready again \(restart 1\)", rf"^sp\s+\| pids (?!{node_pid} )"],
                                 timeout=SEEN_WITHIN)
    wait_until(lambda: _gone([child_pid]), SEEN_WITHIN, "the killed node process's child to end")
    new_node, new_child = _pids(lines, "sp")
    assert new_node != node_pid
    down = topo.run("down", "forks", timeout=SEEN_WITHIN + 10)
    assert down.code == 0, down.out + down.err
    _finish(topo, up)
    assert up.returncode == 0
    wait_until(lambda: _gone([new_node, new_child]), SEEN_WITHIN, "the second process and its child to end")


def test_a_node_process_that_exits_while_its_child_lives_fails_promptly(topo: Topo) -> None:
    pidfile = topo.tmp / "pids"
    path = topo.file(f"""
        topology: exits
        nodes:
          quitter: {{run: "childnodes:fork_then_exit", args: {{pidfile: "{pidfile}"}}}}
          other: {{run: "childnodes:idle"}}
    """)
    up = topo.start("up", path)
    out = _finish(topo, up)
    _, child_pid = (int(p) for p in pidfile.read_text().split())
    assert up.returncode == 1, out
    assert "quitter failed: its process quitter exited with status 3" in out, out
    wait_until(lambda: _gone([child_pid]), SEEN_WITHIN, "the exited node process's child to end")


def test_children_of_a_killed_node_process_end_with_it(topo: Topo) -> None:
    path = topo.file("""
        topology: orphans
        nodes:
          parent: {run: "childnodes:children"}
          other: {run: "childnodes:idle"}
    """)
    up = topo.start("up", path)
    node_pid, *children = _pids(topo.wait_for_line(up, r"^parent\s+\| pids "), "parent")
    assert not _gone(children)
    os.kill(node_pid, signal.SIGKILL)
    wait_until(lambda: _gone(children), SEEN_WITHIN, f"the children {children} of the killed process to end")
    out = _finish(topo, up)
    assert "parent failed: its process parent killed by SIGKILL" in out, out


@pytest.mark.parametrize("how", ["returns", "ctrl-c"])
def test_no_descendant_survives_the_end_of_a_run(topo: Topo, how: str) -> None:
    ret = how == "returns"
    path = topo.file(f"""
        topology: ends
        nodes:
          parent: {{run: "childnodes:children", args: {{ret: {str(ret).lower()}}}, on_exit: stop}}
          other: {{run: "childnodes:idle"}}
    """)
    up = topo.start("up", path)
    node_pid, *children = _pids(topo.wait_for_line(up, r"^parent\s+\| pids "), "parent")
    if not ret:  # the node runs: every node is ready
        os.killpg(up.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out = _finish(topo, up)
    assert up.returncode == (0 if ret else 130), out
    wait_until(lambda: _gone([node_pid, *children]), SEEN_WITHIN, "every descendant to end")



def test_a_restarted_process_is_wired_while_a_child_of_the_old_one_holds_its_connection(topo: Topo) -> None:
    """A forked child that left the node's group outlives the killed node process, and with
    it a copy of the process's control connection, under the identity (the process name)
    the restarted process connects with. Before: the supervisor's ROUTER kept that name for
    the old connection and left the new one unrouted, its HELLO lost for good even once
    the old connection closed: the restarted process never got its CONNECT and never
    became ready ('restarting in 0.1s', then nothing)."""
    path = topo.file("""
        topology: keeper
        nodes:
          sp: {run: "childnodes:os_fork_child_own_session", restart: on-failure}
          other: {run: "childnodes:idle"}
    """)
    up = topo.start("up", path)
    lines = topo.wait_for_line(up, r"^sp\s+\| pids ")
    node_pid, child_pid = _pids(lines, "sp")
    survivors = [psutil.Process(child_pid)]  # psutil checks against pid reuse when it kills
    try:
        os.kill(node_pid, signal.SIGKILL)
        lines += topo.wait_for_lines(up, [r"sp failed \(its process sp killed by SIGKILL\); restarting",
                                          r"sp ready again \(restart 1\)", rf"^sp\s+\| pids (?!{node_pid} )"],
                                     timeout=SEEN_WITHIN)
        assert not _gone([child_pid]), "the old process's child ended: nothing held the old connection"
        new_node, new_child = _pids(lines, "sp")
        survivors.append(psutil.Process(new_child))
        # it holds multiprocessing's resource tracker open, and with it topo up's stderr
        survivors[0].kill()
        wait_until(lambda: _gone([child_pid]), SEEN_WITHIN, "the child that left the group to end")
        down = topo.run("down", "keeper", timeout=SEEN_WITHIN + 10)
        assert down.code == 0, down.out + down.err
        _finish(topo, up)
        assert up.returncode == 0
    finally:
        for survivor in survivors:
            try:
                survivor.kill()
            except psutil.Error:
                pass
