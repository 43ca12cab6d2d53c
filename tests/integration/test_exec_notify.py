"""Exec nodes that speak sd_notify, and the go signal, with real programs and the real
``topo``: ready at READY=1, STATUS in ``topo ps``, the ready deadline, the watchdog,
hostile datagrams, and an exec PUB's first message after its go."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import HERE, Topo

PROGS = HERE / "execprogs"
PY = sys.executable


def _fifo(topo: Topo) -> Path:
    path = topo.tmp / "go.fifo"
    os.mkfifo(path)
    return path


def _release(path: Path) -> None:
    """Writes the line a program waits for on its FIFO (open blocks until it reads)."""
    with open(path, "w") as fifo:
        fifo.write("go\n")


def _ps(topo: Topo) -> dict[str, dict[str, object]]:
    result = topo.run("ps", "--json")
    assert result.code == 0, result.err
    (run,) = json.loads(result.out)
    return {n["name"]: n for n in run["nodes"]}


def test_a_script_ready_by_notify_gets_a_python_publishers_first_message(topo: Topo) -> None:
    fifo = _fifo(topo)
    path = topo.file(f"""\
        topology: notified
        nodes:
          pub: {{run: "itnodes:publish_once", sockets: {{out: PUB}}}}
          sub:
            exec: [{PY}, {PROGS / 'notify_sub.py'}, {fifo}]
            ready: notify
            sockets: {{in: {{type: SUB, subscribe: t}}}}
        links: [pub.out -> sub.in]
        """)
    proc = topo.start("up", path)
    topo.wait_for_line(proc, r"started 2 process")
    # the program has said STATUS, not READY=1: topo ps shows both
    ps = {}
    for _ in range(200):
        ps = _ps(topo)
        if ps["sub"]["status"]:
            break
        threading.Event().wait(0.05)  # polling topo ps for a state, with a bound
    assert ps["sub"]["state"] == "waiting for READY=1" and ps["sub"]["status"] == "waiting for the test"
    table = topo.run("ps").out
    assert re.search(r"sub\s+sub\s+\d+\s+waiting for READY=1 .*waiting for the test", table), table
    _release(fifo)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    lines = out.splitlines()
    ready = next(i for i, line in enumerate(lines) if "all 2 node(s) ready" in line)
    assert any("sub  | got pub" in line for line in lines)
    assert ready < next(i for i, line in enumerate(lines) if "sub exited with status 0" in line)


def test_a_program_that_never_notifies_fails_at_the_ready_deadline_naming_it(topo: Topo) -> None:
    path = topo.file("""\
        topology: silent
        nodes:
          mute:
            exec: [sleep, "30"]
            ready: notify
        """)
    result = topo.run("up", "--ready-timeout", "2", path)
    assert result.code == 1, result.out + result.err
    assert re.search(r"mute failed: not ready within 2s: its program \(pid \d+\) never sent READY=1 to "
                     r"NOTIFY_SOCKET \(ready: notify\)", result.out), result.out


def test_a_missed_watchdog_fails_the_node_and_its_restart_policy_applies(topo: Topo) -> None:
    path = topo.file(f"""\
        topology: dog
        nodes:
          hung:
            exec: [{PY}, {PROGS / 'watchdog_prog.py'}]
            ready: notify
            watchdog: 0.5
            restart: on-failure
            max_restarts: 1
            sockets: {{out: PUSH}}
          sink: {{run: "itnodes:block_forever", sockets: {{in: PULL}}}}
        links: [hung.out -> sink.in]
        """)
    result = topo.run("up", path)
    assert result.code == 1, result.out + result.err
    assert re.search(r"hung +\| watchdog usec 500000", result.out), result.out
    assert "hung failed (watchdog: no WATCHDOG=1 for 0.5s); restarting in" in result.out
    assert "hung ready again (restart 1)" in result.out
    assert re.search(r"hung failed: .*last error: watchdog: no WATCHDOG=1 for 0.5s", result.out), result.out


def test_hostile_datagrams_are_dropped_with_a_message_and_the_run_goes_on(topo: Topo) -> None:
    fifo = _fifo(topo)
    path = topo.file(f"""\
        topology: hostile
        nodes:
          prog:
            exec: [{PY}, {PROGS / 'hostile_prog.py'}, {fifo}]
            ready: notify
        """)
    proc = topo.start("up", path)
    lines = topo.wait_for_lines(proc, [r"prog +\| notify socket ", r"line 'hello there' is not KEY=VALUE"])
    notify_path = next(line for line in lines if "notify socket" in line).split("notify socket ")[1].strip()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:  # this test is no process of the program's
        s.sendto(b"READY=1", notify_path)
    lines += topo.wait_for_line(proc, r"is not the program")
    assert _ps(topo)["prog"]["state"] == "waiting for READY=1"  # the stranger's READY=1 did not count
    _release(fifo)
    out, err = proc.communicate(timeout=60)
    text = "".join(lines) + out
    assert proc.returncode == 0, text + err
    assert "prog: sd_notify datagram dropped: over 4096 bytes" in text
    assert "prog: sd_notify datagram dropped: not UTF-8" in text or "holds a NUL byte" in text
    assert "which is not the program" in text and "all 1 node(s) ready" in out
    assert "Traceback" not in text + err


@pytest.mark.parametrize("run", range(20))
def test_the_go_reaches_slow_subscribers(topo: Topo, run: int) -> None:
    """An exec PUB that waits for its go, then sends once: each of three Python SUBs that
    import slowly gets it, every time."""
    path = topo.file(f"""\
        topology: go
        nodes:
          pub:
            exec: [{PY}, {PROGS / 'go_pub.py'}]
            sockets: {{out: PUB}}
          sub:
            run: "goslow:receive_one"
            replicas: 3
            sockets: {{in: {{type: SUB, subscribe: t}}}}
        links: [pub.out -> sub.in]
        """)
    proc = topo.start("up", path)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:  # a subscriber that lost the message waits on: say what was seen
        topo.kill_all(proc.pid)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"topo up did not end:\n{out}{err}") from None
    assert proc.returncode == 0, out + err
    assert sorted(re.findall(r"(sub\.\d+) +\| got first", out)) == ["sub.0", "sub.1", "sub.2"], out


def test_over_tcp_the_go_waits_until_the_program_has_read_its_subscriptions(topo: Topo) -> None:
    """Over tcp a receiver's bytes acknowledged by the program's host may still be unread
    by the program: a PUB given its go then sends before it has the subscription. A
    program that leaves the subscription unread for a while (as a busy host's ZeroMQ I/O
    thread may) gets its go only once it has read it (it said "go while the subscription
    is unread" and exited 4 before), and its one message arrives."""
    path = topo.file(f"""\
        topology: goread
        nodes:
          pub: {{exec: [{PY}, {PROGS / 'unread_pub.py'}], sockets: {{out: PUB}}}}
          sub: {{run: "itnodes:receive_one", sockets: {{in: {{type: SUB, subscribe: t}}}}}}
        links:
          - {{from: pub.out, to: sub.in, transport: tcp, curve: false}}
        """)
    result = topo.run("up", path, timeout=60)
    assert result.code == 0, result.out + result.err
    assert "pub  | subscription read" in result.out and "sub  | got first" in result.out, result.out
    assert "unread" not in result.out.replace("subscription is unread", ""), result.out
