"""An agent's key proves its host, and only its host: it cannot speak under another host's
name, nor report on another host's nodes (a compromised host does not control the others)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq

from topo.file.validate import load
from topo.hosts.remotes import Hosts
from topo.plan.planner import make_plan
from topo.process.control import Kind, Message
from topo.process.curve import make_keys
from topo.supervisor.processes import Processes
from topo.supervisor.runstate import ProcState

FILE = """\
topology: t
hosts:
  local: {address: 127.0.0.1}
  a: {address: 10.9.0.1}
  b: {address: 10.9.0.2}
nodes:
  on_a: {run: m:f, host: a}
  on_b: {run: m:f, host: b}
"""


class Said:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def system(self, text: str) -> None:
        self.lines.append(text)

    def output(self, name: str, line: str, err: bool) -> None:
        pass

    def changed(self, node: Any) -> None:
        pass


def test_an_agent_cannot_speak_under_another_hosts_name(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(FILE)
    plan = make_plan(load(str(tmp_path / "t.yaml")))
    ctx: zmq.Context[Any] = zmq.Context()
    said = Said()
    hosts = Hosts(plan, ctx, zmq.Poller(), said, run_id="20261203-000000-abcdef", grace=1.0, sys_path=(),
                  keys=make_keys(plan.key_hosts))
    for remote in hosts.remotes.values():
        remote.popen = object()  # type: ignore[assignment]  # as if launched
    rogue = ctx.socket(zmq.DEALER)
    try:
        keys = hosts.keys["a"]  # host a's genuine keys...
        rogue.curve_secretkey, rogue.curve_publickey = keys.secret.encode(), keys.public.encode()
        rogue.curve_serverkey = hosts.local_keys.public.encode()
        rogue.setsockopt(zmq.IDENTITY, b"b")  # ...under host b's name
        rogue.connect(hosts.endpoint)
        rogue.send_multipart(Message(Kind.AGENT, {"host": "b", "pid": 1}).encode())
        assert hosts.router.poll(10_000), "the rogue's message never arrived"
        assert list(hosts.read(hosts.router)) == []
        assert not hosts.remotes["b"].up
        assert any("host b spoke under another host's name" in line for line in said.lines), said.lines
    finally:
        rogue.close(linger=0)
        hosts.router.close(linger=0)
        ctx.term()


def test_events_about_another_hosts_nodes_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(FILE)
    plan = make_plan(load(str(tmp_path / "t.yaml")))
    procs = {p.name: ProcState(p.name, p.instances, remote=p.host) for p in plan.processes}
    said = Said()
    processes = Processes(plan, procs, zmq.Poller(), said, grace=1.0, sys_path=())
    assert processes._on("a", Message(Kind.OUTPUT, {"instance": "on_a", "line": "x", "err": False}))
    assert not processes._on("a", Message(Kind.OUTPUT, {"instance": "on_b", "line": "forged", "err": False}))
    assert not processes._on("a", Message(Kind.FAILED, {"instance": "on_b", "error": "forged"}))
    assert not processes._on("a", Message(Kind.READY, {"instances": ["on_a", "on_b"]}))
    assert not processes._on("a", Message(Kind.HELLO, {"process": "on_b"}))
    assert not processes._on("a", Message(Kind.EXITED, {"instance": "no_such_node"}))


def test_a_strangers_huge_handshake_frame_is_refused_at_its_header(tmp_path: Path) -> None:
    """libzmq reads a whole frame before CURVE can refuse its sender: one stranger's
    announced 200 MB made the supervisor's control port hold what it sent, for 30 s."""
    import socket

    import psutil

    (tmp_path / "t.yaml").write_text(FILE)
    plan = make_plan(load(str(tmp_path / "t.yaml")))
    ctx: zmq.Context[Any] = zmq.Context()
    hosts = Hosts(plan, ctx, zmq.Poller(), Said(), run_id="20261203-000000-abcdef", grace=1.0, sys_path=(),
                  keys=make_keys(plan.key_hosts))
    host, port = hosts.endpoint.removeprefix("tcp://").rsplit(":", 1)
    me = psutil.Process()
    before = me.memory_info().rss
    stranger = socket.create_connection((host, int(port)))
    try:
        greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\0") + b"\0" + b"\0" * 31
        stranger.sendall(greeting)
        stranger.sendall(b"\x06" + (200 * 2**20).to_bytes(8, "big"))  # a command frame of 200 MB
        chunk = b"x" * 2**20
        try:
            for _ in range(64):
                stranger.sendall(chunk)
        except OSError:
            pass  # refused: the connection is closed under us
        grown = me.memory_info().rss - before
        assert grown < 24 * 2**20, f"held {grown // 2**20} MB of a stranger's frame"
    finally:
        stranger.close()
        hosts.router.close(linger=0)
        ctx.term()


def test_a_hosts_copies_reach_only_a_tap_asked_of_that_host(tmp_path: Path) -> None:
    """The taps' channel checks as the control channel does: the key proves the host, and a
    host's copies go on only for a tap the supervisor asked of it."""
    import time

    (tmp_path / "t.yaml").write_text(FILE)
    plan = make_plan(load(str(tmp_path / "t.yaml")))
    ctx: zmq.Context[Any] = zmq.Context()
    hosts = Hosts(plan, ctx, zmq.Poller(), Said(), run_id="20261203-000000-abcdef", grace=1.0, sys_path=(),
                  keys=make_keys(plan.key_hosts))
    reader = ctx.socket(zmq.PULL)
    endpoint = f"ipc://{tmp_path}/tap-1"
    reader.bind(endpoint)
    agents = {}
    try:
        hosts.send("a", "on_a", Message(Kind.TAP, {"tap": "t1", "instance": "on_a", "socket": "s",
                                                   "endpoint": endpoint, "directions": ["out"]}))
        for name in ("a", "b"):
            agent = agents[name] = ctx.socket(zmq.DEALER)
            keys = hosts.keys[name]
            agent.curve_secretkey, agent.curve_publickey = keys.secret.encode(), keys.public.encode()
            agent.curve_serverkey = hosts.local_keys.public.encode()
            agent.setsockopt(zmq.IDENTITY, name.encode())
            agent.connect(hosts.taps.endpoint)
        agents["b"].send_multipart([b"c", b"t1", b"on_a", b"out", b"1", b"0", b"forged by b"])
        deadline = time.monotonic() + 10
        while hosts.taps.strays == 0 and time.monotonic() < deadline:
            assert not reader.poll(20), "host b's copy for host a's tap reached the reader"
        assert hosts.taps.strays == 1
        agents["a"].send_multipart([b"c", b"t1", b"on_a", b"out", b"1", b"0", b"from a"])
        assert reader.poll(10_000), "host a's copy never arrived"
        assert reader.recv_multipart() == [b"t1", b"on_a", b"out", b"1", b"0", b"from a"]
    finally:
        for sock in (reader, *agents.values()):
            sock.close(linger=0)
        hosts.taps.close()
        hosts.router.close(linger=0)
        ctx.term()
