"""Runs the real ``topo`` command in a private TOPO_HOME and kills whatever it leaves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import shutil
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest

HERE = Path(__file__).parent
#: TOPOLOGY/RUN_ID, as ``topo up -d`` prints it.
RUN_IDENTITY = re.compile(r"^([a-z0-9_-]+)/\d{8}-\d{6}-[0-9a-f]{6}$")
ROOT = HERE.parent.parent

# A terminal starts a command with SIGINT at its default; a background job of a
# non-interactive shell (`pytest ... &` in a script, nohup, some CI runners) starts with it
# ignored, and every program the tests start would inherit that through exec. topo up
# handles SIGINT from its first line of code on, but one that lands in the interpreter's
# own first milliseconds is then dropped by the kernel and the run goes on: the tests that
# send a Ctrl-C at a random moment failed so, 'topo up still running 17s after the
# signal'. Any handler here gives the commands the default back (exec resets handlers).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _resource_tracker_outside_every_test() -> None:
    """multiprocessing's resource tracker, started by this worker's first spawn, would
    inherit that test's environment, TOPO_HOME included; the tests that kill whatever
    names their TOPO_HOME then killed it, and the next test's spawn warned 'resource_tracker:
    process died unexpectedly'. Started here, before any test sets TOPO_HOME."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


@dataclass
class Result:
    code: int
    out: str
    err: str


class Topo:
    """One test's view of the command: files in tmp_path, processes cleaned up after."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # short, so ipc paths fit in it as in a real run (pytest's tmp_path is deep)
        self.home = Path(tempfile.mkdtemp(prefix="th-", dir="/tmp"))
        self.env = dict(os.environ)
        self.env["TOPO_HOME"] = str(self.home)
        self.env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), self.env.get("PYTHONPATH", "")])
        self.env.pop("NO_COLOR", None)
        self.procs: list[subprocess.Popen[str]] = []

    def file(self, text: str, name: str = "topo.yaml") -> str:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "topo", *args], env=self.env, cwd=str(ROOT),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 60) -> Result:
        proc = self.start(*args)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err)

    def up_detached(self, text: str, *args: str, name: str = "topo.yaml") -> tuple[Result, str]:
        """``topo up -d`` of ``text`` (a file written as :meth:`file` writes it): its result
        and the run's identity, its last line on stdout."""
        result = self.run("up", "-d", self.file(text, name), *args)
        assert result.code == 0, result.out + result.err
        identity = result.out.splitlines()[-1]
        assert RUN_IDENTITY.match(identity), result.out
        return result, identity

    def wait_for_line(self, proc: subprocess.Popen[str], text: str, timeout: float = 30) -> list[str]:
        """Reads the command's stdout until a line matches the regular expression ``text``;
        returns the lines read."""
        return self.wait_for_lines(proc, [text], timeout)

    def wait_for_lines(self, proc: subprocess.Popen[str], texts: list[str], timeout: float = 30) -> list[str]:
        """Reads the command's stdout until each regular expression of ``texts`` has matched
        a line, in whatever order the lines come (lines of different nodes, relayed by
        different agents, arrive in no fixed order); returns the lines read."""
        assert proc.stdout is not None
        missing = list(texts)
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        os.set_blocking(proc.stdout.fileno(), True)
        # readline blocks: a command that goes silent is killed at the deadline, which
        # ends the read, so a hang fails the test instead of holding it forever. Every
        # process of the test's home goes: one a node started may hold the pipe too.
        watchdog = threading.Timer(timeout, self.kill_all, args=(proc.pid,))
        watchdog.start()
        try:
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                missing = [text for text in missing if not re.search(text, line)]
                if not missing:
                    return lines
        finally:
            watchdog.cancel()
        raise AssertionError(f"no line with {missing!r} within {timeout}s; read:\n{''.join(lines)}")

    def kill_all(self, pid: int) -> None:
        """``pid``'s tree, and every process whose environment names this test's home."""
        kill_tree(pid)
        for other in processes_with_home(self.home):
            try:
                other.kill()
            except psutil.Error:
                pass

    def socket_files(self) -> list[Path]:
        """ipc files anywhere under this test's TOPO_HOME: none may survive a run."""
        runs = self.home / "runs"
        return [p for p in runs.rglob("*") if p.is_socket()] if runs.exists() else []

    def run_dirs(self) -> list[Path]:
        runs = self.home / "runs"
        return list(runs.iterdir()) if runs.exists() else []

    def cleanup(self) -> None:
        for proc in self.procs:
            kill_tree(proc.pid)
            try:
                proc.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                pass


def kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        victims = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def processes_with_home(home: Path) -> list[psutil.Process]:
    """Every live process whose environment names this TOPO_HOME (node processes included)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TOPO_HOME") == str(home):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)  # polling a condition with a deadline, not waiting blindly
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topo]:
    t = Topo(tmp_path)
    try:
        yield t
    finally:
        t.cleanup()
        for proc in processes_with_home(t.home):
            try:
                proc.kill()
            except psutil.Error:
                pass
        shutil.rmtree(t.home, ignore_errors=True)
