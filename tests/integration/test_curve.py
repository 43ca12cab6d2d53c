"""CURVE and ZAP as topo uses them, with real sockets; and the agent's configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from conftest import ROOT
from topo import __version__
from topo.process import curve
from topo.hosts.agent import AgentConfig, encode_config, read_config
from topo.process.curve import HostKeys, ZapHandler, make_keys


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    """Terminated, not destroyed: the ZAP thread closes its own socket on ETERM (closing it
    from here while that thread waits in it would abort libzmq)."""
    context: zmq.Context[Any] = zmq.Context()
    context.linger = 0  # sockets made from now on
    yield context
    context.term()


def received(sock: zmq.Socket[Any], wait_ms: int) -> set[bytes]:
    got = set()
    while sock.poll(wait_ms):
        got.add(sock.recv())
    return got


def test_only_the_runs_keys_get_in(ctx: zmq.Context[Any], tmp_path: Path) -> None:
    """One socket serves CURVE on tcp and plain ipc and inproc after it (a sink with workers
    on another host and on its own): the run's keys and the neighbours get in, the rest
    not, and no neighbour is ever put to the ZAP handler."""
    keys = make_keys(["local", "edge"])
    other_run = make_keys(["local", "edge"])
    zap = ZapHandler(ctx, keys["local"])
    zap.start()
    server = ctx.socket(zmq.PULL)
    curve.serve(server, keys["local"])
    port = server.bind_to_random_port("tcp://127.0.0.1")
    curve.plain(server)
    server.bind("inproc://plain-neighbour")  # the same socket, plain on other endpoints
    ipc = f"ipc://{tmp_path}/plain"
    server.bind(ipc)

    def client(sender_keys: HostKeys | None, text: bytes, address: str = f"tcp://127.0.0.1:{port}") -> zmq.Socket[Any]:
        sock = ctx.socket(zmq.PUSH)
        sock.linger = 0
        if sender_keys is not None:
            # a stranger may know the server's public key (it is public): not enough
            sender = HostKeys(sender_keys.host, sender_keys.public, sender_keys.secret, keys["local"].peers)
            curve.dial(sock, sender, "local")
        sock.sndtimeo = 1000
        sock.connect(address)
        try:
            sock.send(text)  # queued at once (the pipe exists from connect on), sent if admitted
        except zmq.Again:
            pass
        return sock

    clients = [
        client(keys["edge"], b"from edge"),
        client(other_run["edge"], b"from another run"),
        client(None, b"without keys"),
        client(None, b"plain neighbour", "inproc://plain-neighbour"),
        client(None, b"ipc neighbour", ipc),
    ]
    try:
        got = received(server, 1500)
        assert got == {b"from edge", b"plain neighbour", b"ipc neighbour"}
        assert len(zap.refused) >= 1  # the other run's key was asked about and refused
        assert not [a for a in zap.refused if not a.startswith("127.")], zap.refused
    finally:
        for sock in [server, *clients]:
            sock.close(linger=0)


def test_host_keys_tell_their_owner() -> None:
    keys = make_keys(["a", "b"])
    raw_b = zmq.utils.z85.decode(keys["b"].public.encode())
    assert keys["a"].admits(raw_b) == "b"
    assert keys["a"].admits(os.urandom(32)) is None
    assert keys["a"].admits(b"short") is None
    assert keys["a"].secret != keys["b"].secret and keys["a"].peers == keys["b"].peers


def _config() -> AgentConfig:
    from topo.plan.planner import make_plan
    from topo.file.validate import load

    plan = make_plan(load(str(ROOT / "topologies" / "pipeline.yaml")))
    return AgentConfig(plan.topology, "20260101-000000-abcdef", "local", plan.for_host("local"),
                       "tcp://127.0.0.1:1", "local", make_keys(["local"])["local"], 1.0, ("x",))


def test_the_configuration_crosses_a_pipe_and_stdin_stays_open() -> None:
    config = _config()
    r, w = os.pipe()
    try:
        os.write(w, encode_config(config) + b"more")
        got = read_config(r)
        assert got == config
        assert os.read(r, 10) == b"more"  # nothing read beyond the configuration
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("data, message", [
    (b"", "closed before the configuration"),
    (b"hello world\n", "does not start with a configuration"),
    (b"topo-agent 0.0.0-other 5\n", f"this host has topo {__version__}"),
    (b"topo-agent " + __version__.encode() + b" 100\nshort", "in the middle of the configuration"),
])
def test_the_agent_refuses_a_bad_start_and_says_why(data: bytes, message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "topo.hosts.agent"], input=data, capture_output=True,
                          timeout=30, cwd=str(ROOT), check=False)
    assert proc.returncode == 2
    assert message in proc.stderr.decode(), proc.stderr.decode()
