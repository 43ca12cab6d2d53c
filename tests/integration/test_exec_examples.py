"""The exec-node examples of examples/polyglot, run as a user runs them: the C weather
server and client (compiled here with gcc against libzmq), the plain pyzmq worker script
and a shell one-liner, with Python nodes on the other end of their links. (What a
forking program leaves after Ctrl-C or a SIGKILL of ``topo up`` is test_exec_run.py's.)

The C tests are skipped, saying why, on a machine without a C compiler or libzmq's
headers (Debian: ``apt-get install gcc libzmq3-dev``; .ci/run installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Topo

EXAMPLES = ROOT / "examples" / "polyglot"
#: Runs of the C publisher to slow subscribers: each must deliver its first update.
RUNS = 8


def _compile(out: Path) -> None:
    """wuserver and wuclient into ``out``, as the Makefile builds them; skips the test
    when the machine cannot build C against libzmq."""
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no gcc: the C examples need a C compiler (apt-get install gcc)")
    probe = subprocess.run([cc, "-E", "-x", "c", "-"], input="#include <zmq.h>\n", capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("no libzmq headers (zmq.h): the C examples need them (apt-get install libzmq3-dev)")
    for name in ("wuserver", "wuclient"):
        built = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out / name),
                                str(EXAMPLES / f"{name}.c"), "-lzmq"], capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr


@pytest.fixture(scope="module")
def c_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the C examples built in it (once for the module)."""
    out = tmp_path_factory.mktemp("polyglot")
    _compile(out)
    return out


def _python_on_path(topo: Topo) -> None:
    """``python3`` on PATH is the one running the tests, which has pyzmq: the worker
    script's ``#!/usr/bin/env python3`` finds what a user's activated venv would give."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "python3").exists():
        bin_dir = Path(topo.tmp) / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "python3").symlink_to(sys.executable)
    topo.env["PATH"] = os.pathsep.join([str(bin_dir), topo.env.get("PATH", "")])


def _node_lines(out: str, node: str) -> list[str]:
    """What one node printed, without topo's prefix."""
    return [m.group(1) for m in re.finditer(rf"^{re.escape(node)}\s+\| (.*)$", out, re.M)]


def test_the_shipped_weather_example_runs_to_the_end(topo: Topo, c_dir: Path) -> None:
    shutil.copy(EXAMPLES / "weather.yaml", c_dir / "weather.yaml")
    result = topo.run("up", str(c_dir / "weather.yaml"), "--no-color", timeout=90)
    out = result.out + result.err
    assert result.code == 0, out
    assert _node_lines(out, "server")[-1] == "sent 10000 updates", out
    for zipcode in ("10001", "10002"):
        lines = _node_lines(out, f"zip{zipcode}")
        assert lines and re.fullmatch(rf"zip{zipcode}: \d+ updates, average temperature -?\d+\.\dF", lines[-1]), out
        assert int(lines[-1].split()[1]) > 0, out
    wiring = _node_lines(out, "wiring")
    assert "TOPO_INSTANCE=wiring" in wiring and "TOPO_SOCKETS={}" in wiring, out


@pytest.mark.slow
def test_the_c_publishers_first_update_reaches_slow_python_subscribers(topo: Topo, c_dir: Path) -> None:
    # The subscribers take 0.3 s to import (slowweather); the C program is started once
    # they are ready and sends its first update after topo's go, with no sleep: every run,
    # every subscriber gets every update, the first included.
    path = topo.file(f"""
        topology: slow-weather
        nodes:
          server:
            exec: [{c_dir / "wuserver"}, "50", "3"]
            sockets: {{updates: PUB}}
          sub:
            run: slowweather:client
            replicas: 2
            sockets:
              updates: {{type: SUB, subscribe: ""}}
        links: [server.updates -> sub.updates]
    """)
    for run in range(RUNS):
        result = topo.run("up", path, "--no-color", timeout=60)
        out = result.out + result.err
        assert result.code == 0, f"run {run}: {out}"
        first = [line for line in _node_lines(out, "server") if line.startswith("first update: ")]
        assert len(first) == 1, f"run {run}: {out}"
        for sub in ("sub.0", "sub.1"):
            lines = _node_lines(out, sub)
            assert f"{sub}: {first[0]}" in lines, f"run {run}: {sub} missed the first update\n{out}"
            assert any(line.startswith(f"{sub}: 50 updates,") for line in lines), f"run {run}: {out}"


@pytest.mark.slow
def test_a_python_publishers_first_update_reaches_c_clients_that_notify(topo: Topo, c_dir: Path) -> None:
    # wuclient says READY=1 once subscribed and connected; the Python station's gate
    # waits for each client's subscription, whatever the language: no update is lost.
    path = topo.file(f"""
        topology: station
        nodes:
          station:
            run: examples.weather:station
            args: {{count: 20, zipcodes: ["10001", "10002"]}}
            sockets: {{updates: PUB}}
          client:
            exec: [{c_dir / "wuclient"}, "10001", "10"]
            ready: notify
            replicas: 2
            sockets:
              updates: {{type: SUB, subscribe: ["10001 ", "END"]}}
        links: [station.updates -> client.updates]
    """)
    for run in range(3):
        result = topo.run("up", path, "--no-color", timeout=60)
        out = result.out + result.err
        assert result.code == 0, f"run {run}: {out}"
        assert "station: first update: 10001 50 20" in _node_lines(out, "station"), out
        for client in ("client.0", "client.1"):
            lines = _node_lines(out, client)
            assert "first update: 10001 50 20" in lines, f"run {run}: {client} missed it\n{out}"
            assert "10 updates for zip code '10001': average temperature 59.0F" in lines, f"run {run}: {out}"


def test_the_pyzmq_worker_script_does_every_task_of_the_pipeline(topo: Topo) -> None:
    _python_on_path(topo)
    tasks = 300
    result = topo.run("up", str(EXAMPLES / "pipeline.yaml"), "--no-color",
                      "--set", f"ventilator.args.tasks={tasks}", "--set", f"sink.args.tasks={tasks}", timeout=90)
    out = result.out + result.err
    assert result.code == 0, out
    total = sum(n * n for n in range(tasks))
    assert f"sink: {tasks}/{tasks} results, sum of squares = {total}" in _node_lines(out, "sink"), out
    # PUSH deals round-robin over the three scripts, every one connected from the first task
    for w in range(3):
        assert f"sink: worker.{w} did {tasks // 3} task(s)" in _node_lines(out, "sink"), out
        # the stop is a SIGTERM the script handles: it says what it did and exits 0
        assert f"worker.{w}: {tasks // 3} task(s) done" in _node_lines(out, f"worker.{w}"), out


def test_up_refuses_a_missing_program_before_anything_starts(topo: Topo) -> None:
    path = topo.file("""
        topology: missing
        nodes:
          gone: {exec: [./no-such-program], sockets: {out: PUSH}}
          sink: {run: "childnodes:idle", sockets: {in: PULL}}
        links: [gone.out -> sink.in]
    """)
    result = topo.run("up", path)
    assert result.code == 2, result.out + result.err
    assert f"{path}:4:17: node 'gone': program './no-such-program' not found" in result.err
    assert "ready" not in result.out and topo.run_dirs() == []
