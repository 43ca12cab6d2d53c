"""Exec nodes run for real: programs that import nothing of topo, wired from their
environment, started after what they send to, ended with everything they started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from conftest import Topo, wait_until
from topo.testing import up

#: A pyzmq worker that knows nothing of topo: its endpoints from TOPO_SOCKETS, its name
#: from TOPO_INSTANCE. It says whether the sink's endpoint existed when it started (the
#: sink binds it, and is ready, before any worker starts).
WORKER = """\
#!{python}
import json, os, zmq
sockets = json.loads(os.environ["TOPO_SOCKETS"])
ctx = zmq.Context()
def socket(name, kind):
    s = ctx.socket(kind)
    for ep in sockets[name]["bind"]:
        s.bind(ep)
    for ep in sockets[name]["connect"]:
        s.connect(ep)
    return s
sink = sockets["out"]["connect"][0]
print("sink bound before me:", os.path.exists(sink[len("ipc://"):]), flush=True)
jobs, results = socket("in", zmq.PULL), socket("out", zmq.PUSH)
me = os.environ["TOPO_INSTANCE"]
while True:
    jobs.recv_string()
    results.send_string(me)
"""

#: A shell script: its wiring from the plain variables, the receiving done by Python.
RECEIVER = """\
#!/bin/sh
echo "in: $TOPO_SOCKET_IN_TYPE bind=[$TOPO_SOCKET_IN_BIND] connect=[$TOPO_SOCKET_IN_CONNECT]"
exec {python} -c '
import os, zmq
s = zmq.Context().socket(zmq.PULL)
for ep in os.environ["TOPO_SOCKET_IN_BIND"].split():
    s.bind(ep)
for ep in os.environ["TOPO_SOCKET_IN_CONNECT"].split():
    s.connect(ep)
for _ in range(3):
    print("got", s.recv_string(), flush=True)
'
"""


def _script(topo: Topo, name: str, text: str) -> None:
    path = topo.tmp / name
    path.write_text(text.replace("{python}", sys.executable))
    path.chmod(0o755)


def test_a_shell_script_receives_what_a_python_push_sends(topo: Topo) -> None:
    _script(topo, "recv.sh", RECEIVER)
    path = topo.file("""\
        topology: shellrecv
        nodes:
          feed: {run: "itnodes:vent", args: {tasks: 3}, sockets: {out: PUSH}}
          show: {exec: [./recv.sh], sockets: {in: PULL}}
        links: [feed.out -> show.in]
        """)
    result = topo.run("up", path)
    assert result.code == 0, result.out + result.err
    assert re.search(r"show +\| in: PULL bind=\[\] connect=\[ipc://\S+\.sock\]", result.out), result.out
    for i in range(3):  # the PUSH waited for the program's connection: nothing lost
        assert re.search(rf"show +\| got {i}\n", result.out), result.out
    assert "show exited with status 0" in result.out and "every node returned" in result.out, result.out


def test_a_pyzmq_worker_pool_in_a_pipeline(topo: Topo) -> None:
    _script(topo, "worker.py", WORKER)
    path = topo.file("""\
        topology: execpool
        nodes:
          vent: {run: "itnodes:vent", args: {tasks: 40}, sockets: {out: PUSH}}
          worker: {exec: [./worker.py], replicas: 2, sockets: {in: PULL, out: PUSH}}
          sink: {run: "itnodes:collect", args: {tasks: 40}, sockets: {in: PULL}, on_exit: stop}
        links:
          - vent.out -> worker.in
          - worker.out -> sink.in
        """)
    result = topo.run("up", path)
    assert result.code == 0, result.out + result.err
    assert result.out.count("sink bound before me: True") == 2, result.out  # the start order
    counts = re.search(r"counts worker\.0=(\d+) worker\.1=(\d+)", result.out)
    assert counts and int(counts[1]) + int(counts[2]) == 40, result.out
    assert int(counts[1]) > 0 and int(counts[2]) > 0, result.out  # the PUSH waited for both
    assert re.search(r"worker\.0 +stopped", result.out), result.out  # SIGTERM was its stop


def test_exit_status_zero_is_done_and_three_a_failure_with_it(topo: Topo) -> None:
    ok = topo.run("up", topo.file("""\
        topology: execok
        nodes:
          fine: {exec: [sh, -c, "echo fine"]}
        """, "ok.yaml"))
    assert ok.code == 0 and "fine exited with status 0" in ok.out, ok.out + ok.err
    bad = topo.run("up", topo.file("""\
        topology: execbad
        nodes:
          three: {exec: [sh, -c, "echo failing; exit 3"]}
        """, "bad.yaml"))
    assert bad.code == 1, bad.out + bad.err
    assert re.search(r"three +\| failing", bad.out) and "three failed: sh exited with status 3" in bad.out, bad.out


def test_the_harness_runs_exec_nodes_and_tells_their_status(topo: Topo) -> None:
    path = topo.file("""\
        topology: execharness
        nodes:
          three: {exec: [sh, -c, "exit 3"]}
        """)
    with up(path) as run:
        result = run.wait_for("three")
    assert result.failed and result.exitcode == 3 and result.error == "sh exited with status 3"


def test_a_program_that_fails_is_restarted_as_its_policy_says(topo: Topo) -> None:
    result = topo.run("up", topo.file("""\
        topology: execflaky
        nodes:
          flaky: {exec: [sh, -c, "echo run; exit 3"], restart: on-failure, max_restarts: 2}
        """))
    assert result.code == 1, result.out + result.err
    assert len(re.findall(r"flaky +\| run", result.out)) == 3, result.out
    assert "flaky ready again (restart 2)" in result.out, result.out
    assert "giving up; last error: sh exited with status 3" in result.out, result.out


def test_a_missing_program_fails_its_node_at_its_start(topo: Topo) -> None:
    path = topo.file("""\
        topology: execgone
        nodes:
          gone: {exec: [./gone.sh]}
        """)
    _script(topo, "gone.sh", "#!/bin/sh\n")
    os.unlink(topo.tmp / "gone.sh")  # (checked at check time; gone by its start)
    result = topo.run("up", "--no-run-check", path)
    assert result.code != 0
    assert "program './gone.sh' not found" in result.out + result.err, result.out + result.err


FORKER = """\
    topology: execfork
    nodes:
      parent: {exec: [sh, -c, "sleep 1000 & echo child $!; wait"]}
    """


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _forked(topo: Topo) -> tuple[subprocess.Popen[str], int, int]:
    up_proc = topo.start("up", topo.file(FORKER))
    lines = topo.wait_for_line(up_proc, r"parent \| child \d+")
    child = int(re.search(r"child (\d+)", lines[-1])[1])  # type: ignore[index]
    parent = psutil.Process(child).ppid()
    assert psutil.Process(parent).cmdline()[0] == "sh"
    return up_proc, parent, child


def test_what_a_program_forked_ends_with_a_ctrl_c(topo: Topo) -> None:
    up_proc, parent, child = _forked(topo)
    os.kill(up_proc.pid, signal.SIGINT)
    out, _ = up_proc.communicate(timeout=30)
    assert up_proc.returncode == 130, out
    wait_until(lambda: _gone(parent) and _gone(child), 10, "the program and its child to end")


def test_what_a_program_forked_ends_when_topo_up_is_killed(topo: Topo) -> None:
    up_proc, parent, child = _forked(topo)
    os.kill(up_proc.pid, signal.SIGKILL)
    up_proc.communicate(timeout=30)
    # the run's keeper: SIGTERM to the program's group, then SIGKILL once its leader is gone
    wait_until(lambda: _gone(parent) and _gone(child), 10, "the program and its child to end")
    wait_until(lambda: all(p.status() == psutil.STATUS_ZOMBIE for p in _home(topo)), 10,
               "every process of the run (its keeper included) to end")


def _home(topo: Topo) -> list[psutil.Process]:
    from conftest import processes_with_home

    return processes_with_home(topo.home)


def test_topo_ps_shows_a_program_with_its_pid(topo: Topo) -> None:
    up_proc, parent, _child = _forked(topo)
    ps = topo.run("ps")
    assert ps.code == 0, ps.err
    row = next(line for line in ps.out.splitlines() if line.split()[:1] == ["parent"])
    assert row.split()[2] == str(parent) and "running" in row, ps.out
    assert topo.run("down", "execfork").code == 0
    up_proc.communicate(timeout=30)


def test_apply_restarts_an_exec_node_whose_command_changed(topo: Topo) -> None:
    text = """\
        topology: execapply
        nodes:
          prog: {exec: [sh, -c, "echo version 1; exec sleep 1000"]}
        """
    up_proc = topo.start("up", topo.file(text))
    topo.wait_for_line(up_proc, r"prog \| version 1")
    edited = topo.file(text.replace("version 1", "version 2"), "edited.yaml")
    applied = topo.run("apply", "execapply", edited)
    assert applied.code == 0, applied.out + applied.err
    topo.wait_for_line(up_proc, r"prog \| version 2")
    assert topo.run("down", "execapply").code == 0
    up_proc.communicate(timeout=30)


def test_harness_probes_toward_exec_nodes(topo: Topo) -> None:
    """A probe receives a program's first message (the program starts once the probe is
    ready: its PULL binds), and a probe sends to a program once it is connected."""
    from topo.testing import Probe

    echo = ("import os, zmq\n"
            "ctx = zmq.Context()\n"
            "def sock(name, kind):\n"
            "    s = ctx.socket(kind)\n"
            "    [s.bind(e) for e in os.environ[f'TOPO_SOCKET_{name}_BIND'].split()]\n"
            "    [s.connect(e) for e in os.environ[f'TOPO_SOCKET_{name}_CONNECT'].split()]\n"
            "    return s\n"
            "i, o = sock('IN', zmq.PULL), sock('OUT', zmq.PUSH)\n"
            "o.send_string('first')\n"
            "o.send_string(i.recv_string().upper())\n"
            "ctx.destroy(linger=5000)\n")  # (else the reply may die unwritten with the process)
    path = topo.file(f"""\
        topology: execprobes
        nodes:
          echo: {{exec: [{sys.executable}, -c, {echo!r}], sockets: {{in: PULL, out: PUSH}}}}
        """)
    with up(path, probes={"feed": Probe("PUSH", "echo.in"), "got": Probe("PULL", "echo.out")}) as run:
        assert run.probes["got"].recv_string() == "first"
        run.probes["feed"].send_string("hello")
        assert run.probes["got"].recv_string() == "HELLO"
        assert run.wait_for("echo").returned


def test_on_exit_stop_of_an_exec_node_stops_the_run(topo: Topo) -> None:
    result = topo.run("up", topo.file("""\
        topology: execonexit
        nodes:
          job: {exec: [sh, -c, "echo done"], on_exit: stop}
          idle: {run: "itnodes:block_forever", sockets: {in: {type: PULL, external: {bind: "ipc://@execonexit-idle"}}}}
        """))
    assert result.code == 0, result.out + result.err
    assert "stopped: job returned (on_exit: stop)" in result.out, result.out
    assert re.search(r"idle +stopped", result.out), result.out
