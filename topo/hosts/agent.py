"""topo's agent: runs one host's share of a run, for a supervisor on another host.

Started by the supervisor through the host's ``launch`` prefix as ``PYTHON -m topo.hosts.agent``,
it reads its whole configuration, keys included, from standard input (a command line is
visible to every user of the host). It then does on its host what the supervisor does on
its own: spawns the processes (same runtime, same ``spawn``), binds the PULL and ROUTER
they talk to, reads their output pipes, and relays both ways over one CURVE-encrypted
DEALER to the supervisor, in order and within a bound (:mod:`topo.hosts.uplink`). It
decides nothing about the run: it starts, signals and reports processes when told, so
restarts, deadlines and exit codes stay the supervisor's alone.

It keeps no orphans: when its standard input closes (the supervisor or the ssh session
died), when it hears nothing from the supervisor for :data:`topo.process.control.SILENCE`
seconds, or on SIGTERM/SIGHUP, it stops its processes as a stop would and exits; they die
with it (PR_SET_PDEATHSIG, and its keeper ends their groups) if it is killed outright, and an
agent launched again for the run and host ends what its predecessor left (agent_dir).
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
from typing import Any

import zmq

from topo import __version__
from topo.plan.planner import share_of
from topo.process import curve
from topo.process.boot import Boot
from topo.process.control import BEAT, COMMANDS, EVENTS, SILENCE, Kind, Message
from topo.supervisor import execspawn, rundir, spawn
from topo.supervisor.watch import POLL_EXITS
from topo.hosts import agent_config, agent_dir, childstats, replan
from topo.hosts.agent_config import AgentConfig, encode_config, read_config
from topo.hosts.programs import Programs
from topo.hosts.recordfeed import recording_here
from topo.hosts.taprelay import TapRelay, tap_for_process
from topo.hosts.uplink import Uplink

__all__ = ["Agent", "AgentConfig", "encode_config", "main", "read_config"]

#: The events of a process after which nothing it wrote before may come: its pipes are
#: read to the bottom first (as the supervisor does for a local process).
_ENDINGS = frozenset(k.value.encode() for k in (Kind.EXITED, Kind.FAILED, Kind.STOPPED, Kind.BYE))


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
        self.dir = agent_dir.claim(config.topology, config.run_id, config.host)
        #: Who this agent is, in its directory's info file (with its children, as they start).
        self._info = {"topology": config.topology, "run_id": config.run_id, "host": config.host,
                      "pid": os.getpid(), "started": rundir.create_time()}
        self.children = {p.name: Child(p.name) for p in config.plan.processes}
        #: Its exec nodes' programs (topo.hosts.programs: their keeper, notify sockets, go pipes).
        self.programs = {p.name for p in config.plan.processes if any(config.plan.instances[i].exec for i in p.instances)}
        #: Which process each node instance runs in (its events name the instance).
        self.process_of = {i: p.name for p in config.plan.processes for i in p.instances}
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
        self.commands.router_handover = 1  # a restarted process, while a child of the old one holds its connection
        self.events.bind(f"ipc://{self.dir}/{EVENTS}")
        self.commands.bind(f"ipc://{self.dir}/{COMMANDS}")
        self.up.connect(config.control)
        self.poller = zmq.Poller()
        self.progs = Programs(str(self.dir), config.grace, self.poller,
                              lambda text: print(f"topo agent on {config.host}: {text}", file=sys.stderr))
        #: Everything for the supervisor goes through it, output lines included.
        self.uplink = Uplink(self.up, self.poller, (self.events, self.commands))
        #: Taps' copies and topo send, on a channel and a thread of their own.
        self.taps = TapRelay(self.ctx, self.dir, config.taps, config.keys, config.control_host, config.host,
                             config.plan.host(config.host).address, self.process_of,
                             record=config.record is not None) if config.taps else None
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
        self.uplink.report(Message(Kind.AGENT, {"host": self.config.host, "pid": os.getpid(), "version": __version__}))
        poller = self.poller
        for fd in (self.wake.r, 0):
            poller.register(fd, zmq.POLLIN)
        sentinels: dict[int, Child] = {}
        next_beat = time.monotonic()
        while not (self.leaving and all(c.proc is None for c in self.children.values())):
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + BEAT
                self.uplink.beat(Message(Kind.BEAT, {"stats": childstats.measure(self.children.values())}))
            if not self.leaving and now - self.heard > SILENCE:
                self._orphaned(f"no word from the supervisor for {SILENCE:g}s")
            self._report_exits(now)
            self._escalate(now)
            self.progs.writer.look(now)  # gos held until their programs read (topo.supervisor.goheld)
            for child in self.children.values():
                if child.proc is not None and child.proc.sentinel not in sentinels and child.report_by is None:
                    sentinels[child.proc.sentinel] = child
                    poller.register(child.proc.sentinel, zmq.POLLIN)
            for sock, child in list(sentinels.items()):  # no pidfd: asked (topo.supervisor.watch)
                if not child.proc.exact and child.proc.has_exited():
                    self._exited(poller, sentinels, sock)
            inexact = any(not c.proc.exact for c in sentinels.values())
            wait = min([next_beat] + [c.report_by for c in self.children.values() if c.report_by]
                       + [held for held in (self.progs.writer.next_deadline(),) if held]
                       + ([time.monotonic() + POLL_EXITS] if inexact else [])
                       + ([self.stop_by] if self.stop_by else [])
                       + ([] if self.leaving else [self.heard + SILENCE + 0.01])) - time.monotonic()
            for sock, _ in poller.poll(max(1, int(wait * 1000))):
                if sock is self.up:
                    self._from_supervisor()
                    self.uplink.flush()  # polled for room too while messages wait
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
                        self._orphaned("standard input closed (the supervisor or its connection is gone)")
                elif self.uplink.pipes.owns(sock):
                    if not self.uplink.behind:  # else it is read once the supervisor catches up
                        self.uplink.pipes.read(sock)
                elif sock in sentinels:
                    self._exited(poller, sentinels, sock)
                elif self.progs.owns(sock):
                    self.uplink.report_all(self.progs.read(sock))
        self._relay(self.events, routed=False, everything=True)
        # the last reports are worth a moment; an orphan's have nobody to go to (cut off)
        self.uplink.finish(time.monotonic() + 2.0)
        for feed in (self.events, self.commands):
            feed.close(linger=0)
        if self.taps is not None:
            self.taps.close()
        self.up.close(linger=0 if self.orphaned else 2000)
        self.progs.close()
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)
        spawn.stop_tracker()
        return 0

    def _exited(self, poller: zmq.Poller, sentinels: dict[int, Child], sock: int) -> None:
        """A child's process has exited (its pidfd said so): what is left of its group is
        killed, it is reaped, and its end reported after its last words (or a second)."""
        poller.unregister(sock)
        child = sentinels.pop(sock)
        child.proc.join(5.0)
        child.proc.close()
        self.progs.keeper.remove(child.proc.pid)  # its group was killed at the reap
        if child.name in self.programs:  # no BYE will come
            self.uplink.report_all(self.progs.gone(child.name))  # what it said, before its end
            child.report_by = time.monotonic()
            return
        child.report_by = time.monotonic() + (1.0 if child.proc.exitcode == 0 and not child.bye else 0)

    # -- talking ---------------------------------------------------------------------------

    def _relay(self, sock: zmq.Socket[Any], routed: bool, everything: bool = False) -> None:
        """Processes' events, passed on as they are, while the supervisor keeps up (or
        ``everything`` there is: at an end). A process's lines go before its events that
        end something; a BYE is noted so its exit is reported after it, never before."""
        while everything or not self.uplink.behind:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            frames = frames[1:] if routed else frames
            if frames and frames[0] in _ENDINGS:
                self._ending(frames)
            self.uplink.send(frames)

    def _ending(self, frames: list[bytes]) -> None:
        try:
            data = json.loads(frames[1])
            name = data.get("process") or self.process_of.get(data.get("instance", ""), "")
            child = self.children.get(name)
        except (ValueError, IndexError, AttributeError, TypeError):
            return  # not one of its processes' own messages: passed on as it is
        if child is None:
            return
        self.uplink.pipes.drain(name)  # what it wrote before goes first
        if frames[0] == Kind.BYE.value.encode() and data.get("gen") == child.generation:
            child.bye = True

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
                if frames[1] == Kind.TAP.value.encode():  # its copies come to the agent's relay
                    tapped = tap_for_process(frames, self.process_of, self.taps.endpoint) if self.taps else None
                    if tapped is None:
                        continue
                    frames = tapped
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
        elif m.kind is Kind.EXEC_GO:
            self.progs.go(m)
        elif m.kind is Kind.SHUTDOWN:
            self._leave("")
        elif m.kind is Kind.PLAN:  # topo apply: the processes started from now on get it
            self.config = replan.take(self.config, m)
            for p in self.config.plan.processes:
                self.children.setdefault(p.name, Child(p.name))
                self.process_of.update(dict.fromkeys(p.instances, p.name))

    def _start(self, m: Message) -> None:
        child = self.children.get(m["process"])
        if child is None or (child.proc is not None and child.proc.is_alive()):
            return
        cfg = self.config
        if child.name in self.programs:
            self._start_program(child, m)
            return
        boot = Boot(share_of(cfg.plan, child.name), f"ipc://{self.dir}/{EVENTS}",
                    f"ipc://{self.dir}/{COMMANDS}", str(self.dir), time.time() + float(m["ready_in"]),
                    cfg.grace, os.getpid(), cfg.sys_path, generation=int(m["gen"]),
                    fixed=dict(m["fixed"]), absent=frozenset(m["absent"]), restarts=dict(m["restarts"]),
                    keys=cfg.keys, record=recording_here(cfg.record, self.taps.record if self.taps else None))
        child.generation, child.bye, child.report_by, child.term_sent, child.stats = boot.generation, False, None, None, None
        child.proc = spawn.start(boot)  # its output in pipes read here, relayed as events
        self.progs.keeper.add(child.proc.pid)  # its group ended if this agent dies, whatever it does
        self.uplink.pipes.add(child.name, child.proc.topo_output)
        self.uplink.report(Message(Kind.SPAWNED, {"process": child.name, "gen": child.generation,
                                                  "pid": child.proc.pid}))
        self._record_children()

    def _start_program(self, child: Child, m: Message) -> None:
        """An exec node's program (topo.hosts.programs): SPAWNED with what it binds, or ENDED with why not."""
        child.generation, child.bye, child.report_by, child.term_sent, child.stats = int(m["gen"]), False, None, None, None
        try:
            child.proc, binds = self.progs.start(self.config.plan, child.name, child.generation, dict(m["fixed"]))
        except execspawn.ProgramError as err:
            self.uplink.report(Message(Kind.ENDED, {"process": child.name, "gen": child.generation, "exitcode": None,
                                                    "error": str(err)}))
            return
        self.uplink.pipes.add(child.name, child.proc.topo_output)
        self.uplink.report(Message(Kind.SPAWNED, {"process": child.name, "gen": child.generation,
                                                  "pid": child.proc.pid, "binds": binds}))
        self._record_children()

    def _record_children(self) -> None:
        agent_dir.record(self.dir, self._info,
                         {c.name: c.proc.pid for c in self.children.values() if c.proc is not None})

    def _report_exits(self, now: float) -> None:
        for child in self.children.values():
            if child.report_by is not None and (child.bye or now >= child.report_by):
                self._relay(self.events, routed=False, everything=True)  # whatever it said last goes first
                self.uplink.pipes.close(child.name)  # and its last words
                self.uplink.report(Message(Kind.ENDED, {"process": child.name, "gen": child.generation,
                                                        "exitcode": child.proc.exitcode}))
                child.proc, child.report_by = None, None

    # -- leaving ---------------------------------------------------------------------------

    def _orphaned(self, why: str) -> None:
        """The supervisor is gone: nothing is relayed any more, and everything stops."""
        self.orphaned = True
        self.uplink.cut_off()
        self._leave(why)

    def _leave(self, why: str) -> None:
        """Stops every process the way a stop does: STOP, the grace, then signals."""
        if self.leaving is not None:
            return
        self.leaving = why or "shutdown"
        running = [c.name for c in self.children.values() if c.proc is not None]
        if why and running:
            _say(f"{why}: stopping {', '.join(running)}")
        for child in self.children.values():
            if child.proc is not None and child.name in self.programs:
                spawn.signal_tree(child.proc.pid, signal.SIGTERM)  # a program's STOP
            elif child.proc is not None:
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
