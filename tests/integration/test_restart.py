"""Restart policies with real processes: on-failure, always, flapping, crashes from outside."""

from __future__ import annotations

import json
import os
import re
import signal

from conftest import Topo


def test_on_failure_restarts_until_the_node_succeeds(topo: Topo) -> None:
    path = topo.file("""
        topology: flaky
        nodes:
          flaky:
            run: "itnodes:fail_twice"
            restart: on-failure
            sockets: {out: PUSH}
          sink: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [flaky.out -> sink.in]
        defaults: {on_exit: stop}
    """)
    result = topo.run("up", path)
    assert result.code == 0, result.out + result.err
    assert re.findall(r"^flaky\s+\| run (\d)$", result.out, re.M) == ["0", "1", "2"], result.out
    assert result.out.count("restarting in") == 2
    assert "flaky returned" in result.out


def test_always_restarts_a_node_that_returns_and_messages_flow_again(topo: Topo) -> None:
    path = topo.file("""
        topology: ticks
        nodes:
          ticker: {run: "itnodes:tick", restart: always, sockets: {out: PUSH}}
          counter:
            run: "itnodes:count_ticks"
            args: {ticks: 3}
            on_exit: stop
            sockets: {in: PULL}
        links: [ticker.out -> counter.in]
    """)
    result = topo.run("up", path)
    assert result.code == 0, result.out + result.err
    # each incarnation's message arrived through the re-gated, rewired socket
    assert re.search(r"^counter\s+\| ticks 0 1 2$", result.out, re.M), result.out
    assert "ticker ready again (restart 2)" in result.out


def test_flapping_gives_up_with_the_last_error(topo: Topo) -> None:
    path = topo.file("""
        topology: flapping
        nodes:
          broken:
            run: "itnodes:always_fails"
            restart: on-failure
            max_restarts: 3
            sockets: {out: PUSH}
          sink: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [broken.out -> sink.in]
    """)
    result = topo.run("up", path)
    assert result.code == 1, result.out + result.err
    assert result.out.count("restarting in") == 3
    assert re.search(r"broken failed: restarted 3 time\(s\) within 60s \(max_restarts: 3\); "
                     r"giving up; last error: ValueError: still broken", result.out), result.out
    assert topo.socket_files() == []


def test_a_segfaulting_node_is_restarted_with_its_process(topo: Topo) -> None:
    path = topo.file("""
        topology: segv
        nodes:
          crasher: {run: "itnodes:segfault_once", restart: on-failure, sockets: {out: PUSH}}
          sink: {run: "itnodes:receive_one_string", on_exit: stop, sockets: {in: PULL}}
        links: [crasher.out -> sink.in]
    """)
    result = topo.run("up", path)
    assert result.code == 0, result.out + result.err
    assert "crasher failed (its process crasher killed by SIGSEGV)" in result.out, result.out
    assert re.search(r"^sink\s+\| got survived 1$", result.out, re.M), result.out


def test_a_process_killed_from_outside_is_restarted_and_traffic_resumes(topo: Topo) -> None:
    path = topo.file("""
        topology: killed
        nodes:
          source: {run: "itnodes:send_numbers", sockets: {out: PUSH, out2: PUSH}}
          relay:
            run: "itnodes:relay_forever"
            restart: always
            process: relay_proc
            sockets: {in: PULL, out: PUSH}
          buddy: {run: "itnodes:block_forever", process: relay_proc, sockets: {in: PULL}}
          sink: {run: "itnodes:print_received", sockets: {in: PULL}}
        links:
          - source.out -> relay.in
          - source.out2 -> buddy.in
          - relay.out -> sink.in
    """)
    proc = topo.start("up", path)
    first = topo.wait_for_line(proc, r"^relay\s+\| pid")
    pid = int(first[-1].split()[-1])
    topo.wait_for_line(proc, f"via {pid}")
    os.kill(pid, signal.SIGKILL)
    # the new process's first line (its output pipe) and the ready report (the control
    # channel) may come in either order
    lines = topo.wait_for_lines(proc, ["ready again", rf"^relay\s+\| pid (?!{pid}\b)\d+"])
    text = "".join(lines)
    assert "relay failed (its process relay_proc killed by SIGKILL)" in text, text
    assert "buddy restarts too: it shares process relay_proc with relay" in text, text
    [new_pid] = [int(m.group(1)) for m in re.finditer(r"^relay\s+\| pid (\d+)", text, re.M)]
    assert new_pid != pid
    topo.wait_for_line(proc, f"via {new_pid}")  # messages flow through the new process
    ps = topo.run("ps", "killed")
    assert re.search(rf"relay\s+relay_proc\s+{new_pid}\s+running\s+1", ps.out), ps.out
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert topo.socket_files() == []


def test_a_stop_during_a_restart_delay_ends_the_node_stopped(topo: Topo) -> None:
    """The run stops while a node waits out its restart delay: no process is started for it,
    and the outcome says 'stopped', not 'restarting' forever."""
    path = topo.file("""
        topology: pause
        nodes:
          broken:
            run: "itnodes:always_fails"
            restart: on-failure
            max_restarts: 20
            sockets: {out: PUSH}
          sink: {run: "itnodes:block_forever", sockets: {in: PULL}}
        links: [broken.out -> sink.in]
    """)
    proc = topo.start("up", path)
    topo.wait_for_line(proc, r"restarting in 3\.2s")  # the delay doubles: time enough for a down
    down = topo.run("down", "pause")
    assert down.code == 0, down.out + down.err
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert re.search(r"^topo\s+\| broken\s+stopped", out, re.M), out
    [outcome_file] = (topo.home / "logs").rglob("outcome.json")
    outcome = json.loads(outcome_file.read_text())
    assert outcome["nodes"] == {"broken": "stopped", "sink": "stopped"}, outcome
