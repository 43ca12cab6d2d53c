"""What ``topo apply`` does to the agents of the other hosts: a host new to the run is
known (its agent launched when its first process starts, as at ``topo up``), the agents
up get the new plan's share of their host (:mod:`topo.hosts.replan`), a host no process
is left on has its agent told to leave, and a host whose definition changed (address,
launch, python) gets a new agent once its processes, all restarted by the diff, have
ended under the old one.

An agent told to leave is not lost: its going is said as such, nothing fails for it. One
that does not leave within the grace period and a few seconds is ended (its launch
command killed: for ssh, the connection; a real agent then sees its standard input close
and stops everything there).

A mixin of :class:`topo.hosts.remotes.Hosts`, kept apart so that what runs the agents
and what edits them each stay one readable module.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from topo.plan.planner import Host, Plan
from topo.process.control import Kind, Message
from topo.process.curve import HostKeys

if TYPE_CHECKING:
    from topo.process.curve import ZapHandler
    from topo.supervisor.runstate import Reporter


@dataclass
class Remote:
    host: Host
    keys: HostKeys
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    out: int | None = None
    partial: bytes = b""
    up: bool = False
    pid: int | None = None
    heard: float = 0.0
    #: Why it was lost, until the supervisor has been told.
    lost: str | None = None
    #: The plan whose share of the host the agent has (:mod:`topo.hosts.replan`).
    plan: Plan | None = None
    #: topo apply: no process of the run is left on it, its agent is told to leave.
    retiring: bool = False
    #: topo apply: the host's definition changed; its agent leaves once its processes
    #: have ended, and a new one is launched for the new definition.
    relaunch: bool = False
    #: When an agent told to leave is ended, whether it has or not.
    leave_by: float | None = None

    @property
    def command(self) -> list[str]:
        # `--`: whatever the address, ssh reads it as the host, never as an option
        prefix = list(self.host.launch) if self.host.launch else ["ssh", "--", self.host.address]
        return [*prefix, self.host.python or "python3", "-m", "topo.hosts.agent"]




class HostEdits:
    """The edits of :class:`topo.hosts.remotes.Hosts`'s agents (see the module)."""

    plan: Plan
    keys: Mapping[str, HostKeys]
    sys_path: tuple[str, ...]
    remotes: dict[str, Remote]
    reporter: Reporter
    grace: float
    zap: ZapHandler

    if TYPE_CHECKING:
        def send(self, host: str, target: str, message: Message) -> bool: ...
        def launch(self, name: str) -> None: ...
        def _forget(self, remote: Remote, why: str) -> None: ...
        def _read_output(self, name: str, remote: Remote) -> None: ...

    def replan(self, plan: Plan, keys: Mapping[str, HostKeys], sys_path: tuple[str, ...]) -> None:
        """``plan`` is the run's from now on, ``keys`` its keys (a new host's included):
        a new host is known (its agent is launched when its first process starts), the
        agents up get their new share, an agent whose host's definition changed is
        launched again once its processes have ended (the diff restarts them all)."""
        self.plan, self.keys, self.sys_path = plan, keys, sys_path
        self.zap.keys = keys[plan.local_host]
        for host in plan.remote_hosts:
            remote = self.remotes.get(host.name)
            if remote is None or (remote.retiring and remote.popen is None):
                self.remotes[host.name] = Remote(host, keys[host.name])
                continue
            # told to leave by an apply before, and used again: launched again once it has left
            back = remote.retiring and remote.popen is not None
            remote.keys, remote.retiring = keys[host.name], False
            if remote.host != host or back:
                remote.relaunch = True
            elif remote.up:
                self._send_share(host.name, remote)

    def names(self) -> tuple[str, ...]:
        """The hosts it has an agent for, or had."""
        return tuple(self.remotes)

    def retire(self, name: str) -> None:
        """A host no process of the run is left on: its agent is told to leave (once)."""
        remote = self.remotes.get(name)
        if remote is None or remote.retiring:
            return
        remote.retiring = True
        if remote.popen is not None:
            self.reporter.system(f"host {name}: no process of the run is left on it: stopping its agent")
            self._dismiss(name, remote)

    def gone(self, name: str) -> bool:
        """Whether a retired host's agent has left (nothing of the run is on it)."""
        remote = self.remotes.get(name)
        return remote is None or (remote.retiring and remote.popen is None)

    def _send_share(self, name: str, remote: Remote) -> None:
        from topo.hosts.replan import share_message

        remote.plan = self.plan
        self.send(name, "", share_message(self.plan.for_host(name), remote.keys))

    def _dismiss(self, name: str, remote: Remote) -> None:
        """Tells an agent to leave, once: SHUTDOWN (one not up yet: its standard input
        closed); it is ended at :attr:`Remote.leave_by` if it has not left by then."""
        if remote.leave_by is not None:
            return
        remote.leave_by = time.monotonic() + self.grace + 5.0
        if remote.up:
            # (its standard input stays open: an agent that sees it close takes the
            # supervisor for gone and cuts its channel, the last ENDED reports with it)
            self.send(name, "", Message(Kind.SHUTDOWN))
        elif remote.popen is not None and remote.popen.stdin is not None:
            try:
                remote.popen.stdin.close()  # not up yet: it leaves as soon as it reads its end
            except OSError:
                pass

    def _left(self, name: str, remote: Remote, code: int | None) -> None:
        """An agent told to leave has (``code``: its exit status; None: it was ended):
        forgotten without a word of loss, and launched again if its host is still used."""
        if remote.out is not None:
            self._read_output(name, remote)
        self._forget(remote, "")
        remote.lost, remote.leave_by = None, None
        how = "left" if code == 0 else f"ended ({'killed' if code is None else f'status {code}'})"
        if remote.relaunch:
            remote.relaunch = False
            self.reporter.system(f"host {name}: its agent {how}: launching the new one")
            self.launch(name)
        else:
            self.reporter.system(f"host {name}: its agent {how}")
