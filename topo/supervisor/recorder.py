"""``topo up --record``'s side in ``topo up`` (and in the test harness): which sockets are
recorded, the recorder process started, watched and ended with the run.

The names are checked before anything starts (``NODE.SOCKET`` or ``INSTANCE.SOCKET`` as
taps resolve them, :func:`topo.supervisor.observing.resolve`), and so is the output file,
opened here and handed to the recorder as a descriptor. What every process is told at its
start is a :class:`topo.process.boot.Recording`: the recorder's endpoint, fixed in
advance in the run's private directory, so the processes can start before the recorder
(what they copy meanwhile waits in their taps' queues).

The recorder (:mod:`topo.observe.taprecorder`) runs in a session of its own (a Ctrl-C in
the terminal is ``topo up``'s to handle), and ends when its stdin closes: at the run's
end (:meth:`RunRecorder.finish`), or when ``topo up`` dies, however it dies. A thread
reads what it says; a recorder that ends before the run is told on the run's output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

from topo.errors import UsageError
from topo.observe.recording import topology_text
from topo.process.boot import Recording
from topo.supervisor import spawn
from topo.supervisor.observing import BadRequest, resolve

if TYPE_CHECKING:
    from topo.plan.planner import Plan

#: The recorder's ipc file in the run's private directory.
ENDPOINT_NAME = "rec"
#: Seconds the run's end waits for the recorder to finish the file.
FINISH_TIMEOUT = 30.0
#: What the recorder process runs: topo's own directory first on its path, as in the nodes.
_ENTRY = "import sys; sys.path.insert(0, sys.argv.pop(2)); from topo.observe.taprecorder import main; main()"


def split_targets(values: Sequence[str]) -> list[str]:
    """``--record-only`` given several times, each a comma list: the names, in order."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def recorded_sockets(plan: Plan, only: Sequence[str]) -> list[tuple[str, str]]:
    """(instance, socket) of every socket recorded: those ``only`` names, or all;
    :class:`UsageError` (exit 2) naming the nearest names for one the plan has not."""
    if not only:
        return [(name, s.name) for name, inst in plan.instances.items() for s in inst.sockets]
    pairs: list[tuple[str, str]] = []
    for target in only:
        try:
            found = resolve(target, plan)
        except BadRequest as err:
            raise UsageError(f"--record-only {target}: {err}") from None
        pairs += [p for p in found if p not in pairs]
    return pairs


class RunRecorder:
    """One run's recording to ``output``; ``only``: ``--record-only``'s names (none: every
    socket). ``exclude``: instances never recorded (a test's probes)."""

    def __init__(self, plan: Plan, output: str, only: Sequence[str] = (),
                 exclude: frozenset[str] = frozenset()) -> None:
        self.plan = plan
        pairs = [p for p in recorded_sockets(plan, only) if p[0] not in exclude]
        #: Every recorded (instance, socket), on this host or another (whose agent relays
        #: the copies: :mod:`topo.hosts.recordfeed`, :mod:`topo.supervisor.recordways`).
        self.pairs = pairs
        self.output = os.path.abspath(output)
        self.shown = output  # as the user wrote it
        try:
            self._fd: int | None = os.open(self.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise UsageError(f"--record {output}: {err.strerror or err}") from None
        self.spec: Recording | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._say: Callable[[str], None] | None = None
        self._unsaid: list[str] = []  # what it had to say before it was told where (tell)
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._done: dict[str, Any] | None = None
        self._ending = False

    def prepare(self, sockets_dir: str) -> Recording:
        """What every process is told (the recorder's endpoint in the run's directory)."""
        sockets: dict[str, tuple[str, ...]] = {}
        for instance, socket in self.pairs:
            sockets[instance] = (*sockets.get(instance, ()), socket)
        self.spec = Recording(f"ipc://{sockets_dir}/{ENDPOINT_NAME}", sockets,
                              ack=f"ipc://{sockets_dir}/{ENDPOINT_NAME}-ack")
        return self.spec

    def notes(self) -> list[str]:
        """What ``topo up`` says first: what is recorded where."""
        return [f"recording {len(self.pairs)} socket(s) to {self.shown}"]

    def start(self, topology_file: str, say: Callable[[str], None] | None = None) -> None:
        """The recorder process, and the thread that hears it; ``say``: a line on the run's
        output (thread-safe), or :meth:`tell` later. ``topo up`` starts it before the
        node processes: they wait for it (what they record is part of their gate), and its
        own start (an interpreter, zmq, mcap: some 100 ms) then runs beside theirs."""
        assert self.spec is not None and self._fd is not None
        if say is not None:
            self.tell(say)
        topo_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen([sys.executable, "-c", _ENTRY, str(self._fd), topo_dir],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(self._fd,),
                                     start_new_session=True)
        os.close(self._fd)
        self._fd = None
        config = {"endpoint": self.spec.endpoint, "ack": self.spec.ack, "path": self.output, "topology_file": topology_text(topology_file),
                  "plan": json.dumps(self.plan.to_json())}
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(config).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died at once: its watcher says so
        self._watcher = threading.Thread(target=self._watch, name="topo:recorder", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                said = json.loads(line)
            except ValueError:
                continue
            if isinstance(said, dict) and isinstance(said.get("done"), dict):
                self._done = said["done"]
        code = self.proc.wait()
        if self._done is None and not self._ending:
            self._said(f"the recorder ended before the run ({spawn.describe_exit(code)}): {self.shown} holds "
                       "what it wrote up to its last chunk; the nodes no longer wait for it (their copies "
                       "are dropped after a few seconds)")

    def tell(self, say: Callable[[str], None]) -> None:
        """Where what the recorder has to say goes from now on (what it said before, first)."""
        with self._lock:
            self._say, unsaid, self._unsaid = say, self._unsaid, []
        for text in unsaid:
            say(text)

    def _said(self, text: str) -> None:
        with self._lock:
            say = self._say
            if say is None:
                self._unsaid.append(text)
                return
        say(text)

    def finish(self, timeout: float = FINISH_TIMEOUT) -> list[str]:
        """The run is over: the recorder reads what is still coming, writes the summary and
        exits. What to say of it."""
        self._ending = True
        if self._fd is not None:  # never started
            os.close(self._fd)
            self._fd = None
            return []
        if self.proc is None or self._watcher is None:
            return []
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._watcher.join(timeout)
        if self._watcher.is_alive():
            self.kill()
            self._watcher.join(5.0)
            return [f"the recorder did not finish {self.shown} within {timeout:g}s: killed (the file reads "
                    "up to its last chunk, without its summary)"]
        done = self._done
        if done is None:
            return []  # it ended before: said already
        lines = [f"recorded {done.get('messages', 0)} message(s) to {self.shown} ({_size(int(done.get('bytes', 0)))})"
                 + (f"; {done['missed']} copies missed" if done.get("missed") else "")]
        if done.get("unended"):
            lines.append(f"recording: no last word from {', '.join(done['unended'])} (its process was killed?): "
                         "its last copies may be missing")
        return lines

    def kill(self) -> None:
        """For a run that fails before it starts, or a recorder that hangs at the end."""
        self._ending = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5.0)




def _size(n: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
