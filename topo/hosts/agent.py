"""topo's agent: runs one host's share of a run, for a supervisor on another host.

Started by the supervisor through the host's ``launch`` prefix as ``PYTHON -m topo.hosts.agent``,
it reads its whole configuration, keys included, from standard input (a command line is
visible to every user of the host). It then does on its host what the supervisor does on
its own: spawns the processes (same runtime, same ``spawn``), binds the PULL and ROUTER
they talk to, and relays both ways over one CURVE-encrypted DEALER to the supervisor. It
decides nothing about the run: it starts, signals and reports processes when told, so
restarts, deadlines and exit codes stay the supervisor's alone.

It keeps no orphans: when its standard input closes (the supervisor or the ssh session
died), when it hears nothing from the supervisor for :data:`topo.process.control.SILENCE`
seconds, or on SIGTERM/SIGHUP, it stops its processes as a stop would and exits; its
processes die with it (PR_SET_PDEATHSIG) if it is killed outright, and an agent launched
again for the same run and host ends whatever its predecessor left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from topo import __version__

from topo.process import curve

from topo.supervisor import rundir

from topo.supervisor import spawn
from topo.supervisor.watch import POLL_EXITS
from topo.process.control import BEAT, COMMANDS, EVENTS, SILENCE, Kind, Message
from topo.hosts import agent_config
from topo.hosts.agent_config import AgentConfig, encode_config, read_config
from topo.process.boot import Boot
from topo.plan.planner import share_of

__all__ = ["Agent", "AgentConfig", "encode_config", "main", "read_config"]

@dataclass
class Child:
    name: str
    proc: Any = None
    generation: int = 0
    bye: bool = False
    #: Exited (sentinel seen) and not yet reported; reported once its BYE is in, or at this time.
    report_by: float | None = None
    stats: Any = None
    term_sent: float | None = None


@dataclass
class _Wake:
    r: int
    w: int
    reasons: list[str] = field(default_factory=list)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.dir = rundir.agent_dir(config.topology, config.run_id, config.host)
        if self.dir.parent == rundir.runs_base():
            rundir.private_dir(self.dir.parent)
        if os.path.lexists(self.dir):
            rundir.check_private(self.dir)  # its run.json names processes to end: ours only
        _end_predecessor(self.dir)
        self.dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        #: Who this agent is, in its directory's info file (with its children, as they start).
        self._info = {"topology": config.topology, "run_id": config.run_id, "host": config.host,
                      "pid": os.getpid(), "started": rundir.create_time()}
        self.children = {p.name: Child(p.name) for p in config.plan.processes}
        self._record_children()
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.up = self.ctx.socket(zmq.DEALER)
        self.up.linger = 2000  # the last reports (ENDED, exit) are worth a moment
        self.up.identity = config.host.encode()
        curve.dial(self.up, config.keys, config.control_host)
        self.up.setsockopt(zmq.MAXMSGSIZE, agent_config.CONTROL_MAX_MESSAGE)  # its supervisor's words only
        self.events = self.ctx.socket(zmq.PULL)
        self.commands = self.ctx.socket(zmq.ROUTER)
        self.commands.router_mandatory = 1
        self.events.bind(f"ipc://{self.dir}/{EVENTS}")
        self.commands.bind(f"ipc://{self.dir}/{COMMANDS}")
        self.up.connect(config.control)
        r, w = os.pipe()
        os.set_blocking(w, False)
        self.wake = _Wake(r, w)
        self.heard = time.monotonic()
        self.leaving: str | None = None
        #: It left because the supervisor is gone (not because it was told to).
        self.orphaned = False
        self.stop_by: float | None = None

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.wake.reasons.append(signal.Signals(signum).name)
        try:
            os.write(self.wake.w, b"!")
        except OSError:
            pass

    def run(self) -> int:
        self._up(Message(Kind.AGENT, {"host": self.config.host, "pid": os.getpid(), "version": __version__}))
        poller = zmq.Poller()
        for sock in (self.up, self.events, self.commands, self.wake.r, 0):
            poller.register(sock, zmq.POLLIN)
        sentinels: dict[int, Child] = {}
        next_beat = time.monotonic()
        while not (self.leaving and all(c.proc is None for c in self.children.values())):
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + BEAT
                self._up(Message(Kind.BEAT, {"stats": self._stats()}))
            if not self.leaving and now - self.heard > SILENCE:
                self.orphaned = True
                self._leave(f"no word from the supervisor for {SILENCE:g}s")
            self._report_exits(now)
            self._escalate(now)
            for child in self.children.values():
                if child.proc is not None and child.proc.sentinel not in sentinels and child.report_by is None:
                    sentinels[child.proc.sentinel] = child
                    poller.register(child.proc.sentinel, zmq.POLLIN)
            for sock, child in list(sentinels.items()):  # no pidfd: asked (topo.supervisor.watch)
                if not child.proc.exact and child.proc.has_exited():
                    self._exited(poller, sentinels, sock)
            inexact = any(not c.proc.exact for c in sentinels.values())
            wait = min([next_beat] + [c.report_by for c in self.children.values() if c.report_by]
                       + ([time.monotonic() + POLL_EXITS] if inexact else [])
                       + ([self.stop_by] if self.stop_by else [])
                       + ([] if self.leaving else [self.heard + SILENCE + 0.01])) - time.monotonic()
            for sock, _ in poller.poll(max(1, int(wait * 1000))):
                if sock is self.up:
                    self._from_supervisor()
                elif sock is self.events:
                    self._relay(self.events, routed=False)
                elif sock is self.commands:
                    self._relay(self.commands, routed=True)
                elif sock == self.wake.r:
                    os.read(self.wake.r, 64)
                    self._leave(f"got {', '.join(self.wake.reasons) or 'a signal'}")
                elif sock == 0:
                    if not os.read(0, 4096):
                        poller.unregister(0)
                        self.orphaned = True
                        self._leave("standard input closed (the supervisor or its connection is gone)")
                elif sock in sentinels:
                    self._exited(poller, sentinels, sock)
        self._relay(self.events, routed=False)
        for sock in (self.events, self.commands):
            sock.close(linger=0)
        # an orphan's last reports have nobody to go to: do not wait for them
        self.up.close(linger=0 if self.orphaned else 2000)
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)
        return 0

    def _exited(self, poller: zmq.Poller, sentinels: dict[int, Child], sock: int) -> None:
        """A child's process has exited (its pidfd said so): what is left of its group is
        killed, it is reaped, and its end reported after its last words (or a second)."""
        poller.unregister(sock)
        child = sentinels.pop(sock)
        child.proc.join(5.0)
        child.proc.close()
        child.report_by = time.monotonic() + (1.0 if child.proc.exitcode == 0 and not child.bye else 0)

    # -- talking ---------------------------------------------------------------------------

    def _up(self, message: Message) -> None:
        try:
            self.up.send_multipart(message.encode(), zmq.NOBLOCK)
        except zmq.Again:
            pass  # not connected (yet, or any more): beats say it again, exits are reported at the end

    def _relay(self, sock: zmq.Socket[Any], routed: bool) -> None:
        """A process's event, passed on as it is; a BYE is noted so its exit is reported
        after it, never before."""
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            frames = frames[1:] if routed else frames
            if frames and frames[0] == Kind.BYE.value.encode():
                try:
                    data = json.loads(frames[1])
                    child = self.children.get(data.get("process", ""))
                    if child is not None and data.get("gen") == child.generation:
                        child.bye = True
                except (ValueError, IndexError, AttributeError):
                    pass
            try:
                self.up.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                pass

    def _from_supervisor(self) -> None:
        while True:
            try:
                frames = self.up.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.heard = time.monotonic()
            if len(frames) != 3:
                continue
            target = frames[0].decode(errors="replace")
            if target:  # for one of its processes: passed on, the ROUTER routes by name
                try:
                    self.commands.send_multipart(frames, zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # not connected yet or gone: the supervisor resends what matters
                continue
            try:
                message = Message.decode(frames[1:])
            except (ValueError, UnicodeDecodeError):
                continue
            self._command(message)

    def _command(self, m: Message) -> None:
        if m.kind is Kind.START and not self.leaving:
            self._start(m)
        elif m.kind is Kind.SIGNAL:
            child = self.children.get(m.data.get("process", ""))
            if child is not None and child.proc is not None and child.proc.pid:
                spawn.signal_tree(child.proc.pid, signal.Signals(int(m["signal"])))
        elif m.kind is Kind.SHUTDOWN:
            self._leave("")

    def _start(self, m: Message) -> None:
        child = self.children.get(m["process"])
        if child is None or (child.proc is not None and child.proc.is_alive()):
            return
        cfg = self.config
        boot = Boot(share_of(cfg.plan, child.name), f"ipc://{self.dir}/{EVENTS}",
                    f"ipc://{self.dir}/{COMMANDS}", str(self.dir), time.time() + float(m["ready_in"]),
                    cfg.grace, os.getpid(), cfg.sys_path, generation=int(m["gen"]),
                    fixed=dict(m["fixed"]), absent=frozenset(m["absent"]), restarts=dict(m["restarts"]),
                    keys=cfg.keys)
        child.generation, child.bye, child.report_by, child.term_sent, child.stats = boot.generation, False, None, None, None
        child.proc = spawn.start(boot, pipes=False)  # its output comes as events, to relay
        self._up(Message(Kind.SPAWNED, {"process": child.name, "gen": child.generation, "pid": child.proc.pid}))
        self._record_children()

    def _record_children(self) -> None:
        alive = {c.name: [c.proc.pid, _create_time(c.proc.pid)] for c in self.children.values() if c.proc is not None}
        rundir.write_agent_info(self.dir, **self._info, children=alive)

    def _report_exits(self, now: float) -> None:
        for child in self.children.values():
            if child.report_by is not None and (child.bye or now >= child.report_by):
                self._relay(self.events, routed=False)  # whatever it said last goes first
                self._up(Message(Kind.ENDED, {"process": child.name, "gen": child.generation,
                                              "exitcode": child.proc.exitcode}))
                child.proc, child.report_by = None, None

    def _stats(self) -> dict[str, Any]:
        import psutil

        out: dict[str, Any] = {}
        for child in self.children.values():
            if child.proc is None or not child.proc.pid:
                continue
            try:
                if child.stats is None or child.stats.pid != child.proc.pid:
                    child.stats = psutil.Process(child.proc.pid)
                    child.stats.cpu_percent(None)
                out[child.name] = {"pid": child.proc.pid, "cpu": child.stats.cpu_percent(None),
                                   "rss": child.stats.memory_info().rss}
            except psutil.Error:
                pass
        return out

    # -- leaving ---------------------------------------------------------------------------

    def _leave(self, why: str) -> None:
        """Stops every process the way a stop does: STOP, the grace, then signals."""
        if self.leaving is not None:
            return
        self.leaving = why or "shutdown"
        running = [c.name for c in self.children.values() if c.proc is not None]
        if why and running:
            _say(f"{why}: stopping {', '.join(running)}")
        for child in self.children.values():
            if child.proc is not None:
                try:
                    self.commands.send_multipart([child.name.encode(), *Message(Kind.STOP, {"reason": why}).encode()],
                                                 zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
        self.stop_by = time.monotonic() + self.config.grace

    def _escalate(self, now: float) -> None:
        if self.stop_by is None or now < self.stop_by:
            return
        for child in self.children.values():
            if child.proc is None or child.report_by is not None:
                continue
            if child.term_sent is None:
                child.term_sent = now
                spawn.signal_tree(child.proc.pid, signal.SIGTERM)
            elif now >= child.term_sent + 1.0:
                spawn.signal_tree(child.proc.pid, signal.SIGKILL)
        self.stop_by = now + 0.5


def _say(text: str) -> None:
    """A line for the supervisor, which shows it under the host's name. Its reader may be
    gone (that is often what there is to say): never fail for that."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return rundir.create_time(pid)
    except psutil.Error:
        return None  # gone already: nothing for a successor to end


def _end_predecessor(path: Path) -> None:
    """An earlier agent of this run and host (its host was lost, then reached again): it and
    whatever it started end before anything of ours binds the same addresses."""
    import psutil

    info = rundir.read_info(path)
    if not info or not info.get("agent"):
        return
    doomed: list[psutil.Process] = []
    children = info.get("children", {})
    for entry in [(info.get("pid"), info.get("started")), *(children.values() if isinstance(children, dict) else [])]:
        try:
            pid, started = entry
            proc = psutil.Process(int(pid))
            # only a process of this user's whose start time is the one recorded: a pid
            # reused since, or one a planted file names, is left alone
            if proc.uids().real == os.getuid() and abs(proc.create_time() - float(started)) < 2.0:
                doomed.append(proc)
        except (psutil.Error, TypeError, ValueError, OverflowError):
            pass
    for proc in doomed:
        try:  # a node process leads a group: what it started that is no longer its descendant
            if proc.pid != info.get("pid") and os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for member in [proc, *_descendants(proc)]:
            try:
                member.kill()
            except psutil.Error:
                pass
    psutil.wait_procs(doomed, timeout=5.0)


def _descendants(proc: Any) -> list[Any]:
    import psutil

    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def main() -> int:
    try:
        config = read_config()
    except SystemExit as err:
        _say(str(err))
        return 2
    for entry in reversed(config.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    agent = Agent(config)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, agent.on_signal)
    signal.signal(signal.SIGINT, lambda *_: None)  # the supervisor decides what Ctrl-C means
    try:
        code = agent.run()
    except BaseException:  # noqa: BLE001 - a broken agent must not leave its processes behind
        _say(traceback.format_exc().rstrip())
        for child in agent.children.values():
            if child.proc is not None and child.proc.pid:
                spawn.signal_tree(child.proc.pid, signal.SIGKILL)
        shutil.rmtree(agent.dir, ignore_errors=True)
        code = 70
    # not through multiprocessing's exit handler, which would wait for children forever
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
