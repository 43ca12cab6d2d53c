"""The supervisor's side of the other hosts: launching agents, their channel, their liveness.

The supervisor binds one tcp ROUTER on the local host's address, a CURVE server whose ZAP
handler admits the run's hosts only; each agent dials it with its host's key. This module
launches the agents (``launch`` prefix + ``python -m topo.hosts.agent``, configuration and keys
on standard input), reads what they print, beats, and tells the supervisor which host was
lost and why. What a lost host means for its nodes (failure, restart) the supervisor
decides, as for a process that died.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any, Iterator, Mapping

import zmq

from topo.process import curve
from topo.hosts.agent_config import CONTROL_MAX_MESSAGE, AgentConfig, encode_config
from topo.process.control import BEAT, SILENCE, Kind, Message
from topo.process.boot import Recording
from topo.process.curve import HostKeys
from topo.errors import UsageError
from topo.plan.planner import Host, Plan
from topo.supervisor.remotetaps import INJECT, TapRelay
from topo.supervisor.runstate import READ_BATCH, Reporter
from topo.hosts.hostedits import HostEdits, Remote

#: An agent has this long from its launch to say it is up (ssh may take a while to log in).
HELLO_WITHIN = 3 * SILENCE


class Hosts(HostEdits):
    def __init__(self, plan: Plan, ctx: zmq.Context[Any], poller: zmq.Poller, reporter: Reporter, *,
                 run_id: str, grace: float, sys_path: tuple[str, ...], keys: Mapping[str, HostKeys],
                 sockets_dir: str = "", record: Recording | None = None) -> None:
        """``keys``: the run's key pairs by host (:attr:`topo.plan.planner.Plan.key_hosts`);
        ``sockets_dir``: the run's private directory, where ``topo send`` asks for a remote
        node (:mod:`topo.supervisor.remotetaps`); ``record``: ``topo up --record``'s
        recorder and sockets, remote ones included (:mod:`topo.supervisor.recordways`)."""
        self.plan = plan
        self.poller = poller
        self.reporter = reporter
        self.run_id = run_id
        self.grace = grace
        self.sys_path = sys_path
        if plan.local_host not in {h.name for h in plan.hosts}:
            raise UsageError(
                f"{plan.file}: nodes run on other hosts, so the file needs a host named 'local' (this "
                "machine) whose address the other hosts can reach: the agents dial the supervisor there")
        self.keys = keys
        local = self.keys[plan.local_host]
        self.router = ctx.socket(zmq.ROUTER)
        self.router.router_mandatory = 1
        self.router.linger = 0
        self.zap = curve.ZapHandler(ctx, local)  # (its keys grow when topo apply adds a host)
        self.zap.start()
        curve.serve(self.router, local)
        # what an agent relays stays far below this (output lines are cut at 64 KiB); a
        # stranger's handshake frame is refused at its header, not held for 30 s
        curve.bounded(self.router, CONTROL_MAX_MESSAGE)
        address = plan.host(plan.local_host).address
        if ":" in address and not address.startswith("["):
            self.router.ipv6 = True
            address = f"[{address}]"
        self.router.bind(f"tcp://{address}:*")
        self.endpoint = self.router.last_endpoint.decode()
        #: Taps of remote nodes and topo send to them: a channel and a thread of their own.
        self.taps = TapRelay(ctx, local, address, f"ipc://{sockets_dir}/{INJECT}" if sockets_dir else "",
                             lambda i: self.plan.instances[i].host if i in self.plan.instances and
                             self.plan.instances[i].host in self.remotes else None, record=record)
        self.record = record
        self.remotes = {h.name: Remote(h, self.keys[h.name]) for h in plan.remote_hosts}
        poller.register(self.router, zmq.POLLIN)
        self._next_ping = 0.0
        self._told: set[tuple[str, str]] = set()

    @property
    def local_keys(self) -> HostKeys:
        return self.keys[self.plan.local_host]

    # -- agents' lives ---------------------------------------------------------------------

    def launch(self, name: str) -> None:
        """Starts the host's agent unless one is running or starting."""
        remote = self.remotes[name]
        if remote.popen is not None:
            if remote.relaunch:
                self._dismiss(name, remote)  # launched again once it has left
            return
        remote.host, remote.plan, remote.relaunch = self.plan.host(name), self.plan, False
        self.reporter.system(f"host {name}: starting its agent: {' '.join(remote.command)}")
        remote.up, remote.lost, remote.pid, remote.partial = False, None, None, b""
        remote.heard = time.monotonic()
        try:
            popen = subprocess.Popen(remote.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            remote.lost = f"its launch command could not start: {err}"
            return
        remote.popen = popen
        config = AgentConfig(self.plan.topology, self.run_id, name, self.plan.for_host(name), self.endpoint,
                             self.plan.local_host, remote.keys, self.grace, self.sys_path,
                             taps=self.taps.endpoint, record=self._recording(name))
        assert popen.stdin is not None and popen.stdout is not None
        stdin, data = popen.stdin, encode_config(config)

        def write() -> None:
            """In a thread: a plan bigger than a pipe holds would otherwise block the
            supervisor until the far side reads (forever, if ssh hangs before it does)."""
            try:
                stdin.write(data)
                stdin.flush()  # and left open: its end of file tells the agent we are gone
            except (OSError, ValueError):
                pass  # it died at once (its exit says why), or we closed it meanwhile

        threading.Thread(target=write, name=f"topo:config:{name}", daemon=True).start()
        remote.out = popen.stdout.fileno()
        os.set_blocking(remote.out, False)
        remote.pidfd = os.pidfd_open(popen.pid)
        self.poller.register(remote.out, zmq.POLLIN)
        self.poller.register(remote.pidfd, zmq.POLLIN)

    def owns(self, sock: Any) -> bool:
        return sock is self.router or any(sock in (r.out, r.pidfd) for r in self.remotes.values())

    def read(self, sock: Any) -> Iterator[tuple[str, Message]]:
        """Messages from agents (their own and their processes' events), as they come."""
        if sock is self.router:
            yield from self._drain()
            return
        for name, remote in self.remotes.items():
            if sock == remote.out:
                self._read_output(name, remote)
            elif sock == remote.pidfd:
                self._read_output(name, remote)
                yield from self._drain()  # what it said before it died comes first
                self._ended(name, remote)

    def _drain(self) -> Iterator[tuple[str, Message]]:
        """At most :data:`READ_BATCH` messages: an agent that floods the channel must not
        keep the supervisor's loop from its deadlines (the poll wakes again at once)."""
        for _ in range(READ_BATCH):
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            name = parts[0].bytes.decode(errors="replace")
            remote = self.remotes.get(name)
            if remote is None or remote.popen is None or len(parts) < 2:
                continue  # a late word from an agent already taken for lost
            if _proven_host(parts[1]) != name:
                # the routing id is the agent's to choose; the key its handshake proved is
                # not: a host with a genuine key of its own cannot speak as another
                self._distrust(name, "spoke under another host's name")
                continue
            try:
                message = Message.decode([p.bytes for p in parts[1:]])
            except (ValueError, UnicodeDecodeError) as err:
                self._distrust(name, f"sent a malformed message ({err})")
                continue
            remote.heard = time.monotonic()
            if message.kind is Kind.AGENT:
                remote.up, remote.pid = True, message.data.get("pid")
                if remote.plan is not self.plan:  # edited since its launch: before any START
                    self._send_share(name, remote)
            yield name, message

    def _read_output(self, name: str, remote: Remote) -> None:
        data = b""
        while remote.out is not None:
            try:
                chunk = os.read(remote.out, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            data += chunk
            if not chunk:
                break
        remote.partial += data
        *lines, remote.partial = remote.partial.split(b"\n")
        if not data and remote.partial:
            lines, remote.partial = [*lines, remote.partial], b""
        for line in lines:
            text = line.decode(errors="replace").rstrip()
            if text:
                self.reporter.system(f"host {name}: {text}")

    def _distrust(self, name: str, why: str) -> None:
        """A message from a host that is dropped: said once per host and reason (a rogue
        agent must not flood the terminal either), never fatal."""
        key = (name, why.split(" (", 1)[0])
        if key not in self._told:
            self._told.add(key)
            self.reporter.system(f"host {name} {why}: dropped (said once)")

    def _ended(self, name: str, remote: Remote) -> None:
        assert remote.popen is not None
        code = remote.popen.wait()
        if remote.retiring or remote.relaunch:
            self._left(name, remote, code)
            return
        how = f"its agent ({' '.join(remote.command[:2])} ...) exited with status {code}"
        if code == 255 and remote.command[0] == "ssh":
            how += " (ssh could not connect or log in)"
        self._forget(remote, how)

    def _forget(self, remote: Remote, why: str) -> None:
        popen, out, pidfd = remote.popen, remote.out, remote.pidfd
        remote.popen = remote.out = remote.pidfd = None
        remote.up = False
        remote.lost = why
        for fd in (out, pidfd):
            if fd is not None:
                self.poller.unregister(fd)
        if pidfd is not None:
            os.close(pidfd)
        if popen is not None:
            for stream in (popen.stdin, popen.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass  # the configuration could not all be written: it died at once
            if popen.poll() is None:
                popen.kill()
                popen.wait()

    def beat(self, now: float) -> None:
        """Pings the agents that are up, and gives up on those that went silent."""
        for name, remote in list(self.remotes.items()):
            if remote.leave_by is not None and now >= remote.leave_by and remote.popen is not None:
                self._left(name, remote, None)  # told to leave and still there: ended
            if remote.popen is None:
                if remote.retiring:
                    del self.remotes[name]
                continue
            limit = SILENCE if remote.up else HELLO_WITHIN
            if now - remote.heard > limit:
                what = "no word from its agent" if remote.up else "its agent did not answer"
                self._forget(remote, f"{what} within {limit:g}s (can it reach {self.endpoint}?)")
        if now >= self._next_ping:
            self._next_ping = now + BEAT
            for name, remote in self.remotes.items():
                if remote.up:
                    self.send(name, "", Message(Kind.PING))

    def next_deadline(self) -> float:
        return self._next_ping

    def abandon(self, name: str, why: str) -> None:
        """Gives up on a host whose agent does not do what it must (a stop it does not
        carry out): its launch command is killed (for ssh, the connection: a real agent
        sees its standard input close and stops everything there), and the host is lost."""
        remote = self.remotes.get(name)
        if remote is not None and remote.popen is not None:
            self._forget(remote, why)

    def lost(self) -> Iterator[tuple[str, str]]:
        """Hosts lost since the last call, with why (each told once)."""
        for name, remote in self.remotes.items():
            if remote.lost is not None:
                why, remote.lost = remote.lost, None
                yield name, why

    def _recording(self, host: str) -> Recording | None:
        """The recorded sockets of ``host``'s instances (None: none there)."""
        if self.record is None:
            return None
        mine = {i: s for i, s in self.record.sockets.items() if i in self.plan.instances
                and self.plan.instances[i].host == host}
        return self.record._replace(sockets=mine) if mine else None

    def is_up(self, name: str) -> bool:
        remote = self.remotes[name]
        return remote.up and not remote.relaunch

    def send(self, host: str, target: str, message: Message) -> bool:
        if message.kind is Kind.TAP:  # its copies will come back on the taps' channel
            self.taps.register(message["tap"], message["endpoint"], host)
        elif message.kind is Kind.UNTAP:
            self.taps.unregister(message["tap"], host)
        try:
            self.router.send_multipart([host.encode(), target.encode(), *message.encode()], zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False  # not connected: a lost host is noticed by its silence or its exit

    def close(self, timeout: float) -> None:
        """Asks every agent to leave, waits for their exit, then makes sure of it."""
        for name, remote in self.remotes.items():
            if remote.up:
                self.send(name, "", Message(Kind.SHUTDOWN))
            if remote.popen is not None and remote.popen.stdin is not None:
                try:
                    remote.popen.stdin.close()  # an agent that missed SHUTDOWN sees end of file
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for remote in self.remotes.values():
            if remote.popen is None:
                continue
            try:
                remote.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if remote.out is not None:
                self._read_output(remote.host.name, remote)
            self._forget(remote, "")
        self.taps.close()
        self.router.close(linger=0)


def _proven_host(frame: zmq.Frame) -> str | None:
    """The host whose key a CURVE handshake proved, as the ZAP handler named it."""
    try:
        return str(frame.get("User-Id"))
    except zmq.ZMQError:
        return None
