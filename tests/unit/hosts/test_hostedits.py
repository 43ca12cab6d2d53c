"""What topo apply does to the agents' bookkeeping (topo.hosts.hostedits), without agents:
who is sent the new share, who is launched again, who is told to leave."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

from topo.hosts.hostedits import HostEdits, Remote
from topo.plan.planner import Plan
from topo.process.control import Kind, Message
from topo.process.curve import make_keys, with_hosts

FILE = """\
topology: far
hosts:
  local: {address: 10.0.0.1}
  h1: {address: 10.0.0.2, launch: [ssh, a]}
  h2: {address: 10.0.0.3, launch: [ssh, b]}
nodes:
  feed: {run: m:feed, sockets: {out: PUSH}}
  worker: {run: m:work, host: h1, sockets: {in: PULL}}
links: [feed.out -> worker.in]
"""


class Said:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def system(self, line: str) -> None:
        self.lines.append(line)


class Edits(HostEdits):
    """The mixin on its own: what it sends is recorded, nothing is launched."""

    def __init__(self, plan: Plan) -> None:
        self.plan, self.sys_path, self.grace = plan, (), 1.0
        self.keys = make_keys(plan.key_hosts)
        self.zap = SimpleNamespace(keys=self.keys["local"])  # type: ignore[assignment]
        self.reporter = Said()  # type: ignore[assignment]
        self.remotes = {h.name: Remote(h, self.keys[h.name]) for h in plan.remote_hosts}
        self.sent: list[tuple[str, Message]] = []
        self.launched: list[str] = []

    def send(self, host: str, target: str, message: Message) -> bool:
        self.sent.append((host, message))
        return True

    def launch(self, name: str) -> None:
        self.launched.append(name)

    def _forget(self, remote: Remote, why: str) -> None:
        remote.popen = None

    def _read_output(self, name: str, remote: Remote) -> None:
        pass


def test_a_new_host_is_known_and_the_agents_up_get_their_share(plan: Callable[[str], Plan]) -> None:
    old = plan(FILE)
    new = plan(FILE.replace("links: [", "  more: {run: m:work, host: h2, sockets: {in: PULL}}\nlinks: [feed.out -> more.in, "))
    edits = Edits(old)
    edits.remotes["h1"].up = True
    keys = with_hosts(edits.keys, new.key_hosts)
    edits.replan(new, keys, ("x",))
    assert set(edits.remotes) == {"h1", "h2"} and edits.remotes["h2"].popen is None  # launched at its first start
    assert [(h, m.kind) for h, m in edits.sent] == [("h1", Kind.PLAN)]
    assert edits.remotes["h1"].plan is new and edits.remotes["h1"].keys is keys["h1"]
    assert edits.zap.keys is keys["local"] and edits.sys_path == ("x",)


def test_a_changed_host_is_launched_again_and_an_unused_one_leaves(plan: Callable[[str], Plan]) -> None:
    old = plan(FILE)
    edits = Edits(old)
    remote = edits.remotes["h1"]
    remote.up, remote.popen = True, SimpleNamespace(stdin=None)  # type: ignore[assignment]
    edits.replan(plan(FILE.replace("[ssh, a]", "[ssh, c]")), edits.keys, ())
    assert remote.relaunch and edits.sent == []  # no share: its new agent gets the new plan at launch
    edits._left("h1", remote, 0)
    assert edits.launched == ["h1"] and not remote.relaunch and remote.lost is None

    remote.up, remote.popen = True, SimpleNamespace(stdin=None)  # type: ignore[assignment]
    edits.retire("h1")
    assert [(h, m.kind) for h, m in edits.sent] == [("h1", Kind.SHUTDOWN)] and not edits.gone("h1")
    assert remote.leave_by is not None
    edits.retire("h1")  # told once
    assert len(edits.sent) == 1
    edits._left("h1", remote, 0)
    assert edits.gone("h1") and remote.lost is None  # not lost: nothing fails for it
    assert "host h1: its agent left" in edits.reporter.lines  # type: ignore[attr-defined]


def test_a_host_never_launched_is_gone_at_once(plan: Callable[[str], Plan]) -> None:
    edits = Edits(plan(FILE))
    edits.retire("h1")
    assert edits.gone("h1") and edits.sent == []
    assert edits.gone("nowhere")
