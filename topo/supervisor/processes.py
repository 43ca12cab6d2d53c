"""How a run's processes are started, signalled and seen to end, here or on another host.

The supervisor decides (start this process now, signal that one, what an end means); this
module knows how. A local process is spawned here and watched by its pidfd; a remote
one is asked of its host's agent (launched first if need be) and watched through the
agent's reports and the agent's own liveness. What it sees comes back as plain facts: an
event to handle, or :class:`Ended` with the exit status or why the process is gone.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import zmq

from topo.supervisor import execspawn, spawn
from topo.supervisor.keeper import Keeper
from topo.supervisor.remotehosts import MakeRemoteHosts, RemoteHosts
from topo.process.control import Kind, Message
from topo.plan.planner import Plan
from topo.supervisor.runstate import ProcState, Reporter
from topo.supervisor.watch import POLL_EXITS
from topo.process.boot import Boot, Recording
from topo.plan.planner import share_of

if TYPE_CHECKING:
    from topo.process.curve import HostKeys


@dataclass(frozen=True)
class Ended:
    proc: ProcState
    exitcode: int | None
    #: Why, when there is more to say than the exit status (a lost host).
    how: str | None = None


@dataclass(frozen=True)
class ProgramSpawned:
    """An exec node's program started on another host, binding these endpoints."""

    proc: ProcState
    binds: dict[str, str]


@dataclass(frozen=True)
class HostUp:
    """An agent is up: the processes waiting for it can be started."""

    host: str


class Processes:
    def __init__(self, plan: Plan, procs: dict[str, ProcState], poller: zmq.Poller, reporter: Reporter, *,
                 grace: float, sys_path: tuple[str, ...], prestarted: dict[str, Any] | None = None,
                 hosts: MakeRemoteHosts | None = None, keys: Mapping[str, HostKeys] | None = None,
                 record: Recording | None = None) -> None:
        """``keys``: the run's CURVE keys if made already (:mod:`topo.supervisor.prestart`);
        ``record``: the sockets ``topo up --record`` records (every local start gets it, and
        the agents, for their hosts' nodes)."""
        self.plan = plan
        self._hosts_of: tuple[Plan | None, dict[str, str]] = (None, {})
        self.record = record
        self.procs = procs
        self.poller = poller
        self.reporter = reporter
        self.grace = grace
        self.sys_path = sys_path
        self.hosts: RemoteHosts | None = None
        self._make_hosts = hosts
        #: Hosts already said to speak for others.
        self._disowned: set[str] = set()
        #: Per remote process, the generation its agent was last told to start: its ENDED
        #: counts even once a restart has moved ``proc.generation`` on (a restart is
        #: decided before the old process has ended, and only that end starts the new one).
        self._remote_gen: dict[str, int] = {}
        self._sentinels: dict[int, ProcState] = {}
        #: The process of each instance topo apply removed (while it may still retire).
        self._unplanned: dict[str, str] = {}
        self._events = self._commands_address = self._run_dir = ""
        self._commands: zmq.Socket[Any] | None = None
        self._ctx: zmq.Context[Any] | None = None
        self._run_id = ""
        #: Processes started before the supervisor (topo.supervisor.prestart): their first start is
        #: to adopt them.
        self._prestarted = dict(prestarted or {})
        self.keys = keys
        #: ``topo apply`` brought hosts into the run: processes are told their keys (:meth:`admit_keys`).
        self.keys_grown = False
        #: Processes whose latest start is an exec node's program (:mod:`topo.supervisor.execspawn`):
        #: what they are told is a signal, how they end is their exit status.
        self.programs: set[str] = set()
        #: Ends the local processes' groups if this process dies (started with the run):
        #: a program's, which has no death signal, and a Python process's, whose death
        #: signal only asks its own code to end it (which a thread stuck where that end
        #: needs it, or a node that cleared the signal, can keep from happening).
        self.keeper = Keeper(grace)
        #: The run's shared start work for programs (its environment, programs found).
        self.starts = execspawn.Starts()

    @property
    def local_keys(self) -> HostKeys | None:
        """This host's CURVE keys, when the run has any (:attr:`Plan.key_hosts`)."""
        return self.keys[self.plan.local_host] if self.keys else None

    def open(self, ctx: zmq.Context[Any], run_id: str, run_dir: str, events: str, commands: str,
             commands_sock: zmq.Socket[Any]) -> None:
        """The supervisor's sockets are bound: processes can be started from now on."""
        self._events, self._commands_address, self._run_dir = events, commands, run_dir
        self._commands = commands_sock
        self._ctx, self._run_id = ctx, run_id  # (for the agents of hosts topo apply adds)
        if self.keys is None and self.plan.key_hosts:
            from topo.process.curve import make_keys

            self.keys = make_keys(self.plan.key_hosts)
        if self.plan.remote_hosts:
            self._open_hosts(self.plan)

    def _open_hosts(self, plan: Plan) -> None:
        if self._make_hosts is None:
            raise RuntimeError("this run has other hosts: the supervisor needs hosts=topo.hosts.remotes.Hosts")
        assert self.keys is not None and self._ctx is not None
        self.hosts = self._make_hosts(plan, self._ctx, self.poller, self.reporter, run_id=self._run_id,
                                      grace=self.grace, sys_path=self.sys_path, keys=self.keys,
                                      sockets_dir=self._run_dir, record=self.record)

    def prepare(self, plan: Plan) -> None:
        """``topo apply``, before anything changes: what :meth:`replan` needs and may fail
        to make (an error here refuses the edit). A host new to the run gets its key pair,
        every host's peers name it; a run that had no other host gets the channel to
        their agents. Only adds: processes running keep the keys they have."""
        if plan.key_hosts and (self.keys is None or not set(plan.key_hosts) <= set(self.keys)):
            from topo.process.curve import with_hosts

            self.keys_grown = self.keys is not None
            self.keys = with_hosts(self.keys, plan.key_hosts)
            for proc in self.procs.values():
                self.admit_keys(proc)
        if self.hosts is None and plan.remote_hosts:
            self._open_hosts(plan)

    def admit_keys(self, proc: ProcState) -> None:
        """A running process admits the hosts ``topo apply`` brought in, in place (its CURVE
        servers' ZAP handler, :meth:`topo.process.curve.ZapHandler.admit`): told at the
        apply, and again at each process's HELLO, for one that was starting meanwhile
        with the keys of before. Programs serve no CURVE (refused at check)."""
        if self.keys_grown and self.keys and (proc.pid is not None or proc.hello) and not proc.ended:
            peers = dict(next(iter(self.keys.values())).peers)
            self.send(proc, Message(Kind.KEYS, {"peers": peers}))

    def replan(self, plan: Plan) -> None:
        """``topo apply``: ``plan`` is the run's from now on (:meth:`prepare`d, and
        ``sys_path`` set before); the agents follow (:mod:`topo.hosts.hostedits`)."""
        self._unplanned = {i: p for i, p in self._unplanned.items() if i not in plan.instances}
        self._unplanned.update((i, inst.process) for i, inst in self.plan.instances.items() if i not in plan.instances)
        self.plan = plan
        if self.hosts is not None:
            assert self.keys is not None
            self.hosts.replan(plan, self.keys, self.sys_path)

    def retire_hosts(self) -> list[str]:
        """Hosts the plan no longer uses: each whose processes have all ended is told to
        leave; returns those whose agent has not left yet."""
        if self.hosts is None:
            return []
        wanted = {h.name for h in self.plan.remote_hosts}
        busy = {p.remote for p in self.procs.values() if p.remote and not (p.ended and p.restart_at is None)}
        waiting = []
        for name in self.hosts.names():
            if name in wanted:
                continue
            if name not in busy:
                self.hosts.retire(name)
            if not self.hosts.gone(name):
                waiting.append(name)
        return waiting

    def start(self, proc: ProcState, start: dict[str, Any]) -> dict[str, str]:
        """``start``: gen, fixed, absent, restarts, ready_in (as in a START command).
        Returns the endpoints a local program binds (key → address; empty for a Python
        process, which reports its own); raises :class:`topo.supervisor.execspawn.ProgramError`
        when a program cannot be started."""
        host = self._host_of(proc.name)
        if host is not None:  # (topo apply may have moved it to another host since it last ran)
            proc.remote = None if host == self.plan.local_host else host
        if proc.remote is not None:
            assert self.hosts is not None
            if any(self.plan.instances[i].exec for i in proc.instances):
                self.programs.add(proc.name)
            else:
                self.programs.discard(proc.name)
            proc.pending = not self.hosts.is_up(proc.remote)
            if proc.pending:
                self.hosts.launch(proc.remote)
            else:
                self._remote_gen[proc.name] = proc.generation
                self.hosts.send(proc.remote, "", Message(Kind.START, {"process": proc.name, **start}))
            return {}
        if any(self.plan.instances[i].exec for i in proc.instances):
            self.programs.add(proc.name)
            started, binds = execspawn.start(self.plan, proc.name, self._run_dir, start["fixed"], self.keeper,
                                             start.get("exec_env"), start.get("pass_fds", ()), self.starts)
            self.adopt(proc, started)
            return binds
        self.programs.discard(proc.name)
        if proc.generation == 0 and proc.name in self._prestarted:
            self.adopt(proc, self._prestarted.pop(proc.name))
            return {}
        boot = Boot(share_of(self.plan, proc.name), self._events, self._commands_address,
                    self._run_dir, time.time() + start["ready_in"], self.grace, os.getpid(), self.sys_path,
                    generation=proc.generation, fixed=start["fixed"], absent=frozenset(start["absent"]),
                    restarts=start["restarts"], keys=self.local_keys, record=self.record)
        self.adopt(proc, spawn.start(boot))
        return {}

    def _host_of(self, process: str) -> str | None:
        """The host the plan puts ``process`` on (None: not in it), looked up in a table
        made once per plan: a look through the plan at each start made a run's starts
        take time in the square of its processes."""
        if self._hosts_of[0] is not self.plan:
            self._hosts_of = (self.plan, {p.name: p.host for p in self.plan.processes})
        return self._hosts_of[1].get(process)

    def prestarted(self, proc: ProcState) -> bool:
        """``proc`` runs already, started before the supervisor, and waits to be adopted."""
        return proc.generation == 0 and proc.name in self._prestarted

    def adopt(self, proc: ProcState, started: Any) -> None:
        """A local process started (its multiprocessing Process), here or before the
        supervisor existed (:mod:`topo.supervisor.prestart`): watched from now on, and its
        group told to the keeper (a program's is told as it starts: execspawn)."""
        proc.proc = started
        proc.pid = started.pid
        if proc.name not in self.programs:
            self.keeper.add(started.pid)  # (the group it leads once its prelude ran)
        self._sentinels[started.sentinel] = proc
        self.poller.register(started.sentinel, zmq.POLLIN)

    def signal(self, proc: ProcState, sig: signal.Signals) -> None:
        if proc.remote is None:
            spawn.signal_tree(proc.pid or 0, sig)
        elif self.hosts is not None:
            self.hosts.send(proc.remote, "", Message(Kind.SIGNAL, {"process": proc.name, "signal": int(sig)}))

    def abandon(self, proc: ProcState, why: str) -> None:
        """A remote process whose agent no longer answers for it: its host is taken for
        lost (seen at the next :meth:`tick`), which ends every process there."""
        if proc.remote is not None and self.hosts is not None:
            self.hosts.abandon(proc.remote, why)

    def send(self, proc: ProcState, message: Message) -> None:
        """A command to a process's runtime; to a program, which has none, STOP is SIGTERM
        to its tree (what it started included) and nothing else is sent."""
        if proc.name in self.programs:
            if message.kind is Kind.STOP and proc.pid is not None and not proc.ended:
                self.signal(proc, signal.SIGTERM)
            return
        if proc.remote is not None:
            if self.hosts is not None:
                self.hosts.send(proc.remote, proc.name, message)
            return
        try:
            assert self._commands is not None
            self._commands.send_multipart([proc.name.encode(), *message.encode()], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # gone already: its sentinel tells the rest

    # -- what is seen ----------------------------------------------------------------------

    def owns(self, sock: Any) -> bool:
        return sock in self._sentinels or (self.hosts is not None and self.hosts.owns(sock))

    def read(self, sock: Any) -> Iterator[Message | Ended | HostUp | ProgramSpawned]:
        if sock in self._sentinels:
            yield self._local_end(sock)
            return
        assert self.hosts is not None
        for host, m in self.hosts.read(sock):
            proc = self.procs.get(m.data.get("process", ""))
            if m.kind is Kind.AGENT:
                yield HostUp(host)
            elif m.kind is Kind.BEAT:
                for name, stats in m.data.get("stats", {}).items():
                    if name in self.procs and self.procs[name].remote == host:
                        self.procs[name].stats = stats
            elif m.kind in (Kind.SPAWNED, Kind.ENDED):
                if proc is None or proc.remote != host or m.data.get("gen") != (
                        proc.generation if m.kind is Kind.SPAWNED else self._remote_gen.get(proc.name)):
                    continue  # about a process replaced since
                if m.kind is Kind.SPAWNED:
                    proc.pid = m.data.get("pid")
                    binds = m.data.get("binds")
                    if proc.name in self.programs and isinstance(binds, dict):
                        yield ProgramSpawned(proc, {k: v for k, v in binds.items()
                                                    if isinstance(k, str) and isinstance(v, str)})
                elif not proc.ended:
                    code, error = m.data.get("exitcode"), m.data.get("error")
                    yield Ended(proc, code if isinstance(code, int) else None,
                                error if isinstance(error, str) and proc.name in self.programs else None)
            elif m.kind in (Kind.START, Kind.SIGNAL, Kind.PING, Kind.SHUTDOWN, Kind.CONNECT, Kind.STOP,
                            Kind.TAP, Kind.UNTAP, Kind.PLAN):
                continue
            elif self._on(host, m):
                yield m  # one of its processes' events
            elif self._removed(m):
                continue
            elif host not in self._disowned:
                self._disowned.add(host)  # a compromised host speaking for others: said once
                self.reporter.system(f"host {host} sent an event about a node or process of another host: "
                                     "dropped, as every such event from it")

    def _on(self, host: str, m: Message) -> bool:
        """Whether an event relayed by ``host``'s agent is about that host's own processes
        and nodes: an agent's key proves its host, not the others'."""
        if "process" in m.data:
            proc = self.procs.get(m.data["process"])
            if proc is None or proc.remote != host:
                return False
        names = m.data.get("instances", [m.data["instance"]] if "instance" in m.data else [])
        return all(self._hosted(name, host) for name in names)

    def _hosted(self, name: str, host: str) -> bool:
        if name in self.plan.instances:
            return host in (self.plan.instances[name].host, self._ran_on(name))
        # a node topo apply removed whose process still runs there: it retires, and what it
        # says until its end (that it drained) is its host's
        proc = self.procs.get(self._unplanned.get(name, ""))
        return proc is not None and proc.remote == host and not proc.ended

    def _ran_on(self, instance: str) -> str | None:
        """The host an instance's process runs on until it restarts: topo apply may have
        moved it, and what the old process says until its end is still its host's."""
        proc = self.procs.get(self.plan.instances[instance].process)
        return proc.remote if proc is not None else None

    def _removed(self, m: Message) -> bool:
        """About nodes topo apply removed (their process's end is what counts; it comes
        as ENDED): dropped without a word."""
        names = m.data.get("instances", [m.data["instance"]] if "instance" in m.data else [])
        return any(name not in self.plan.instances for name in names)

    def _local_end(self, sock: Any) -> Ended:
        """A local process has exited: what is left of its group is killed, it is reaped
        (:meth:`topo.supervisor.watch.Started.join`), and no longer watched."""
        self.poller.unregister(sock)
        local = self._sentinels.pop(sock)
        local.proc.join(5.0)  # a pidfd is readable once it can be reaped: no wait
        local.proc.close()
        self.keeper.remove(local.proc.pid)  # its group was killed at the reap
        return Ended(local, local.proc.exitcode)

    def tick(self, now: float) -> Iterator[Ended]:
        """Beats, and the processes of hosts found lost: each ends as a process that died.
        Without pidfds, each local process is also asked whether it has exited: a child
        of its own may hold its sentinel open (:mod:`topo.supervisor.watch`)."""
        for sock, local in list(self._sentinels.items()):
            if not local.proc.exact and local.proc.has_exited():
                yield self._local_end(sock)
        if self.hosts is None:
            return
        self.hosts.beat(now)
        for host, why in self.hosts.lost():
            if why:
                self.reporter.system(f"host {host} lost: {why}")
            for proc in self.procs.values():
                if proc.remote == host and not proc.ended:
                    proc.pending = False
                    yield Ended(proc, None, f"its host {host} was lost ({why})")

    def next_deadline(self) -> float | None:
        soonest = [time.monotonic() + POLL_EXITS] if any(not p.proc.exact for p in self._sentinels.values()) else []
        if self.hosts is not None:
            soonest.append(self.hosts.next_deadline())
        return min(soonest, default=None)

    def close(self) -> None:
        """Nothing of the run survives this: local processes killed, agents told to leave."""
        for started in self._prestarted.values():  # never adopted: the run failed first
            spawn.signal_tree(started.pid, signal.SIGKILL)
            started.join(5)
        for proc in self.procs.values():
            if proc.proc is not None and proc.proc.is_alive():
                spawn.signal_tree(proc.proc.pid, signal.SIGKILL)
                proc.proc.join(5)
            if proc.proc is not None:
                self.keeper.remove(proc.proc.pid)  # (ended unseen too: the keeper ends no group left)
                proc.proc.close()
        self.keeper.close()
        if self.hosts is not None:
            self.hosts.close(timeout=self.grace + 2.0)
