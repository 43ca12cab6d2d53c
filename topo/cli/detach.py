"""``topo up -d``: the run goes on in the background once every node is ready.

Two processes. The one the user started (the *parent*) starts the real ``topo up`` (the
*daemon*) as a child in a session of its own (``setsid``: no controlling terminal, so no
SIGHUP when the terminal closes, and no Ctrl-C from it), stdin from /dev/null, its stdout
and stderr two pipes the parent copies to its own, and a third pipe, the status pipe,
on which the daemon says how far it got:

- ``run TOPOLOGY/RUN_ID``: its run directory exists, its processes are starting;
- ``ready TOPOLOGY/RUN_ID``: every node is ready. Before writing it the daemon lets
  everything it printed reach its stdout pipe and then points fds 1 and 2 at /dev/null:
  from then on its output goes to the run's log files only, as a foreground run's does.

Until ``ready`` the user sees what ``topo up`` shows, because it *is* ``topo up``. The
parent learns the end from real events: the status pipe, and the daemon's pidfd for a run
that ended before it was ready (its exit status is then the parent's, with the messages
the foreground prints); never from a sleep. It waits within a deadline: the file's load,
then the ready timeout and a stop's grace, plus a margin; past it the run is stopped and
the parent says what it awaited. Until ready, Ctrl-C, SIGTERM and SIGHUP sent to the parent
are passed on to the daemon, which stops the starting run as the foreground would (130,
143, 129); the parent goes on copying until the daemon has ended and exits as it did.

The node processes are the daemon's children (their parent-death signal is the
daemon's), never the parent's, which exits once the run is ready.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from topo.errors import UsageError
from topo.supervisor.runstate import KILL_AFTER
from topo.supervisor.terminal import STALL

if TYPE_CHECKING:
    from topo.cli.sourceopts import Checking
    from topo.file.sources import Sources
    from topo.supervisor.output import Printer
    from topo.supervisor.supervise import Supervisor
    from topo.supervisor.terminal import Terminal

#: Seconds the daemon may take to load and plan the file before it says ``run``.
LOAD_LIMIT = 120.0
#: Beyond the ready timeout and a stop's grace: the daemon's own deadlines come first.
MARGIN = 10.0
#: The daemon's command line: ``topo`` itself, without the current directory first on
#: ``sys.path`` (as ``python -c`` would put it: a ``yaml.py`` there would shadow topo's).
_ENTRY = "import sys; del sys.path[0]; from topo.cli.main import main; main()"


# -- the daemon's side ---------------------------------------------------------------------

class StatusPipe:
    """The write end of the status pipe, as the daemon's ``--status-fd`` names it."""

    def __init__(self, fd: int, tty: bool = False) -> None:
        """``tty``: the parent shows the output on a terminal (control characters of the
        nodes' lines are then escaped, as ``topo up`` does there)."""
        self.tty = tty
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise UsageError(f"--status-fd {fd} is not a pipe")
        except OSError as err:
            raise UsageError(f"--status-fd {fd}: {err.strerror or err}") from None
        os.set_inheritable(fd, False)  # no node process holds it: its end is the daemon's
        self.fd: int | None = fd

    def tell(self, word: str, identity: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, f"{word} {identity}\n".encode())
        except OSError:  # the parent has gone (killed): the run goes on, detached anyway
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def watch(self, shown: Shown, supervisor: Supervisor, identity: str) -> None:
        """From now on, each of topo's lines is followed by a look at whether every node
        is ready (the supervisor says so once, with its "all N node(s) ready" line)."""
        def look() -> None:
            if self.fd is not None and supervisor.all_ready_reported:
                self.detach(shown, identity)

        shown.after_system = look

    def detach(self, shown: Shown, identity: str) -> None:
        """Everything shown so far reaches the parent, then nothing more is shown: fds 1
        and 2 become /dev/null, and the parent is told."""
        if shown.terminal is not None:
            shown.terminal.drain(STALL)
        shown.printer = None
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        self.tell("ready", identity)
        self.close()


class Shown(Protocol):
    """What :class:`StatusPipe` changes of ``topo up``'s reporter
    (:class:`topo.cli.launch.TerminalReporter`) once the run is ready."""

    printer: Printer | None
    terminal: Terminal | None
    after_system: Callable[[], None] | None


# -- the parent's side ---------------------------------------------------------------------

class _Forward:
    """Ctrl-C, SIGTERM and SIGHUP of the parent, passed on to the daemon until it is ready.
    One that comes before the daemon exists is kept and passed on once it does."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.sent = False
        self._previous: dict[int, Any] = {}
        #: Readable once a signal came: the parent's wait looks at its deadline again.
        self.wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def __enter__(self) -> _Forward:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        os.close(self.wake_r)
        os.close(self._wake_w)

    def stop(self) -> None:
        """The run is ready: from now on a signal is the parent's own business (it is about
        to exit 0), not a reason to stop the run."""
        self.pid = None

    def start(self, pid: int) -> None:
        self.pid = pid
        while self.pending:
            self.send(self.pending.pop(0))

    def _on(self, signum: int, frame: FrameType | None) -> None:
        if self.pid is None:
            self.pending.append(signum)
        else:
            self.send(signum)
        try:
            os.write(self._wake_w, b"s")
        except OSError:
            pass  # full: it wakes anyway

    def send(self, signum: int) -> None:
        if self.pid is None:
            return
        self.sent = True
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # ended meanwhile: its status says how


def _source_args(file: Sources) -> list[str]:
    """The topology as the background ``topo up`` is told it: every file as ``-f`` (a
    file name may start with a dash), the ``--set`` values, and the ``--profile`` options
    (profiles from TOPO_PROFILES come from the environment it inherits, and are located
    there as in the foreground)."""
    from topo.file.sources import PROFILE_ORIGIN

    args = [arg for f in file.files for arg in ("-f", f)]
    args += [arg for s in file.sets for arg in ("--set", s)]
    args += [arg for name, pos in file.profiles if pos.file == PROFILE_ORIGIN for arg in ("--profile", name)]
    return args


def up_detached(file: Sources, *, ready_timeout: float, grace: float, color: bool | None,
                checking: Checking, record: str | None = None, record_only: Sequence[str] = ()) -> int:
    """Starts the daemon, shows what it prints until every node is ready, then prints the
    run's identity (stdout) and how to follow and stop it (stderr). Returns 0, or the
    daemon's exit status when the run ended before it was ready."""
    from topo.supervisor.output import Printer

    if color is None:  # decided by this terminal, not by the daemon's pipe
        color = Printer(sys.stdout, []).color
    argv = [sys.executable, "-c", _ENTRY, "up", *_source_args(file), "--ready-timeout", repr(ready_timeout),
            "--grace", repr(grace), "--color" if color else "--no-color"]
    if sys.stdout.isatty():
        argv.append("--status-tty")
    if not checking.run_check:
        argv.append("--no-run-check")
    if checking.strict:  # (TOPO_STRICT reaches it through the environment)
        argv.append("--strict")
    if checking.lenient:
        argv.append("--lenient")
    if record is not None:  # (the daemon's working directory is this one)
        argv += ["--record", record, *(a for name in record_only for a in ("--record-only", name))]
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    with _Forward() as forward:
        try:
            sys.stdout.flush()
            proc = subprocess.Popen([*argv, "--status-fd", str(status_w)], stdin=subprocess.DEVNULL,
                                    stdout=out_w, stderr=err_w, pass_fds=(status_w,), start_new_session=True)
        finally:
            for fd in (status_w, out_w, err_w):
                os.close(fd)
        forward.start(proc.pid)
        try:
            return _follow(proc, forward, status_r, out_r, err_r, run_limit=ready_timeout + grace + KILL_AFTER + MARGIN,
                           stop_limit=grace + KILL_AFTER + MARGIN)
        finally:
            for fd in (status_r, out_r, err_r):
                os.close(fd)


def _follow(proc: subprocess.Popen[bytes], forward: _Forward, status_r: int, out_r: int, err_r: int, *,
            run_limit: float, stop_limit: float) -> int:
    """Copies the daemon's output until it says ``ready`` (0) or ends (its status). Waits
    ``LOAD_LIMIT`` for ``run``, then ``run_limit`` for ``ready``; after a stop was passed
    on (or asked at a deadline, status 1 then), ``stop_limit`` for the end, then kills it."""
    pidfd = os.pidfd_open(proc.pid)
    timed_out = False
    copies = {out_r: sys.stdout, err_r: sys.stderr}
    awaited = "the file to be loaded and its processes started"
    deadline = time.monotonic() + LOAD_LIMIT
    stopping = False
    status = b""
    watched = [status_r, pidfd, forward.wake_r]
    try:
        while True:
            if forward.sent and not stopping:  # Ctrl-C: the daemon stops; wait for its end
                stopping = True
                awaited, deadline = "the run to stop", time.monotonic() + stop_limit
            left = deadline - time.monotonic()
            if left <= 0:
                if stopping:
                    proc.kill()  # its node processes follow it (their parent-death signal)
                    proc.wait()
                    _drain(copies)
                    print(f"topo: killed the run: it had not ended {stop_limit:g}s after it was told to stop",
                          file=sys.stderr)
                    return 1
                print(f"topo: timed out waiting for {awaited}; stopping the run", file=sys.stderr)
                timed_out = True
                forward.send(signal.SIGTERM)
                continue
            readable = select.select([*watched, *copies], [], [], left)[0]
            if forward.wake_r in readable:
                os.read(forward.wake_r, 64)
            for fd in readable:
                if fd in copies and not _copy(fd, copies[fd]):
                    del copies[fd]
            if status_r in readable:
                chunk = os.read(status_r, 4096)
                if not chunk:  # the daemon is ending: its pidfd says when it has
                    watched.remove(status_r)
                status += chunk
                *lines, status = status.split(b"\n")
                for line in lines:
                    word, _, identity = line.decode(errors="replace").partition(" ")
                    if word == "run" and not stopping:
                        awaited = f"every node of {identity} to be ready"
                        deadline = time.monotonic() + run_limit
                    elif word == "ready":
                        forward.stop()
                        _drain(copies)
                        _ready(identity, proc.pid)
                        return 0
            if pidfd in readable:  # ended before it was ready: its status is ours
                code = proc.wait()
                _drain(copies)
                if timed_out:
                    return 1
                return code if code >= 0 else 128 - code
    finally:
        os.close(pidfd)


def _copy(fd: int, stream: Any) -> bool:
    """What waits on the daemon's ``fd``, to ``stream``; False at its end. A reader of ours
    that has gone ends the display, not the run."""
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    _write(stream, chunk)
    return True


def _drain(copies: dict[int, Any]) -> None:
    """What the daemon wrote before it said ``ready`` (or ended) is all in the pipes now:
    read until they are empty, never waiting."""
    for fd, stream in copies.items():
        os.set_blocking(fd, False)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            _write(stream, chunk)


def _write(stream: Any, data: bytes) -> None:
    """All of ``data`` to ``stream``'s descriptor (after what Python buffered); a reader
    that has gone ends the display, not the run."""
    try:
        stream.flush()
        fd = stream.fileno()
        while data:
            data = data[os.write(fd, data):]
    except (OSError, ValueError):
        pass


def _ready(identity: str, pid: int) -> None:
    """The run's identity alone on stdout (``RUN=$(topo up -d FILE | tail -n 1)``), what
    to do with it on stderr."""
    print(identity, flush=True)
    print(f"topo: {identity} runs in the background (supervisor pid {pid})\n"
          f"topo: follow it: topo attach {identity}  (or: topo logs -f {identity})\n"
          f"topo: stop it:   topo down {identity}", file=sys.stderr, flush=True)
