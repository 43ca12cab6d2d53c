"""Taps and ``topo send`` for nodes on other hosts: network namespaces stand for machines,
the copies travel from the node's process to its agent, over the run's CURVE channel to the
supervisor, and on to the reader; a message to inject goes the other way. Delivery must be
unchanged, a slow reader must lose only its copies (counted), and a reader killed outright
must not leave its tap on the remote node."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from conftest import HERE, ROOT, Topo, processes_with_home, wait_until
from hostnet import Network, host_network, hosts_block, hosts_emptied, requires_netns
from topo.testing import up
from topo.testing.tapping import TapTimeout

pytestmark = [requires_netns, pytest.mark.slow]

CLOCK = r"\d\d:\d\d:\d\d\.\d{6}"


def _ticks(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(r"tick (\d+)", line))]


class Shared:
    """One run over two namespaces for the command-line tests of this module (an agent's
    start costs a second or two: paid once per pytest worker)."""

    def __init__(self, topo: Topo, net: Network, identity: str) -> None:
        self.topo, self.net, self.run = topo, net, identity

    def logs(self, node: str) -> str:
        return self.topo.run("logs", self.run, node).out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    topo = Topo(tmp_path_factory.mktemp("remote-taps"))
    try:
        with host_network(2) as net:
            _, identity = topo.up_detached(f"""
topology: rtaps
{hosts_block(net)}
nodes:
  pusher: {{run: "tapnodes:ticker", host: h1, args: {{interval: 0.01}}, sockets: {{out: PUSH}}}}
  worker: {{run: "tapnodes:printer", host: h2, replicas: 2, sockets: {{in: PULL}}}}
  lone: {{run: "tapnodes:ticker", host: h1, args: {{interval: 0.05, say_tapped: true}}, sockets: {{out: PUSH}}}}
  keeper: {{run: "tapnodes:counting_sink", host: h2, args: {{count: 1000000000}}, sockets: {{in: PULL}}}}
  feeder: {{run: "tapnodes:ticker", host: h2, args: {{interval: 5, topic: feed}}, sockets: {{out: PUSH}}}}
  inbox: {{run: "tapnodes:printer", host: h2, sockets: {{in: {{type: PULL, bind: true}}}}}}
  asker: {{run: "tapnodes:asker", args: {{interval: 1}}, sockets: {{out: REQ}}}}
  svc: {{run: "tapnodes:answerer", host: h2, sockets: {{in: REP}}}}
  pubsrc: {{run: "tapnodes:ticker", args: {{interval: 5, topic: feed}}, sockets: {{out: PUB}}}}
  subr: {{run: "tapnodes:printer", host: h2, sockets: {{in: {{type: SUB, subscribe: [feed], bind: true}}}}}}
links:
  - pubsrc.out -> subr.in
  - pusher.out -> worker.in
  - lone.out -> keeper.in
  - feeder.out -> inbox.in
  - asker.out -> svc.in
""", "--ready-timeout", "30")
            yield Shared(topo, net, identity)
            assert topo.run("down", identity).code == 0
            hosts_emptied(net, 15)
    finally:
        topo.cleanup()
        for proc in processes_with_home(topo.home):
            try:
                proc.kill()
            except psutil.Error:
                pass


def test_echo_of_a_remote_push_and_its_remote_pullers_shows_every_message_as_delivered(shared: Shared) -> None:
    topo, run = shared.topo, shared.run
    pushed = topo.run("echo", run, "pusher.out", "--count", "20")
    assert pushed.code == 0, pushed.err
    assert all(re.fullmatch(rf"{CLOCK} pusher\.out out \[0\] tick \d+", ln) for ln in pushed.out.splitlines()), pushed.out
    ticks = _ticks(pushed.out.splitlines())
    assert ticks == list(range(ticks[0], ticks[0] + 20)), pushed.out  # in order, none left out

    pulled = topo.run("echo", run, "worker.in", "--count", "20", "--in")
    assert pulled.code == 0, pulled.err
    seen = [(m.group(1), int(m.group(2))) for ln in pulled.out.splitlines()
            if (m := re.fullmatch(rf"{CLOCK} (worker\.[01])\.in in  \[0\] tick (\d+)", ln))]
    assert len(seen) == 20, pulled.out
    # Each worker's copies come in its own order; the two processes' streams interleave as
    # they arrive (a loaded machine can put a worker's copy after its neighbour's next).
    # Dealt in turn: each worker got every other tick, none left out.
    for worker in ("worker.0", "worker.1"):
        mine = [t for w, t in seen if w == worker]
        assert len(mine) >= 2 and mine == list(range(mine[0], mine[0] + 2 * len(mine), 2)), (worker, pulled.out)
    # and each went to the worker the tap says: what the workers themselves printed
    last = seen[-1]
    wait_until(lambda: f"{last[0]} got tick {last[1]}" in shared.logs("worker"), 15, "the workers' lines")
    logs = shared.logs("worker")
    assert all(f"{name} got tick {tick}" in logs for name, tick in seen), (seen, logs[-2000:])


def test_hz_and_sockets_rate_measure_remote_sockets(shared: Shared) -> None:
    topo, run = shared.topo, shared.run
    hz = topo.start("hz", run, "pusher.out", "--window", "1")
    lines = topo.wait_for_lines(hz, [r"rate .*\(\d+ msgs\)"])
    lines += topo.wait_for_lines(hz, [r"rate .*\(\d+ msgs\)"])
    hz.send_signal(signal.SIGINT)
    assert hz.wait(10) == 0
    rates = [float(m.group(1)) for line in lines if (m := re.search(r"rate ([\d.]+) msg/s", line))]
    # the node sends every 10 ms (a loaded machine only makes it slower)
    assert rates and all(40 <= rate <= 110 for rate in rates), lines

    rated = topo.run("sockets", run, "--rate", "1", "--json")
    assert rated.code == 0, rated.err
    by = {f"{e['instance']}.{e['socket']}": e for e in json.loads(rated.out)}
    assert by["pusher.out"]["remote"] and by["pusher.out"]["host"] == "h1"
    assert 40 <= by["pusher.out"]["rate"]["out"]["msgs"] <= 110, by["pusher.out"]
    assert by["pusher.out"]["rate"]["in"]["msgs"] == 0
    shares = [by[f"worker.{i}.in"]["rate"]["in"]["msgs"] for i in (0, 1)]
    assert all(20 <= share <= 55 for share in shares), shares  # half each


def test_record_includes_the_remote_channels(shared: Shared, tmp_path: Path) -> None:
    topo, run = shared.topo, shared.run
    out = tmp_path / "r.mcap"
    recorded = topo.run("record", run, "pusher.out", "worker.in", "-o", str(out), "--count", "40")
    assert recorded.code == 0, recorded.err
    info = topo.run("record", "--info", str(out))
    assert info.code == 0, info.err
    channels = {m.group(1): int(m.group(2)) for line in info.out.splitlines()
                if (m := re.match(r"\s+(\S+/\S+/(?:in|out))\s+\w+\s+(\d+)", line))}
    assert {"pusher/out/out", "worker.0/in/in", "worker.1/in/in"} <= set(channels), info.out
    assert sum(channels.values()) == 40, info.out


def test_send_to_a_remote_pull_over_ipc_and_a_remote_rep_and_sub_over_curve(shared: Shared) -> None:
    topo, run = shared.topo, shared.run
    sent = topo.run("send", run, "inbox.in", "hello from the shell")
    assert sent.code == 0, sent.err
    assert sent.err.strip() == "topo: sent 1 frame(s), 20 bytes, to inbox.in (PULL)" and sent.out == ""
    wait_until(lambda: "inbox got hello from the shell" in shared.logs("inbox"), 15, "the injected message")

    asked = topo.run("send", run, "svc.in", "q 77")
    assert asked.code == 0, asked.err
    assert asked.err.strip() == "topo: sent 1 frame(s), 4 bytes, to svc.in (REP)"
    assert asked.out == "[0] a 77\n"

    # a SUB on another host: sent once its subscription came, and only if it matches
    subscribed = topo.run("send", run, "subr.in", "feed", "hi there")
    assert subscribed.code == 0, subscribed.err
    wait_until(lambda: "subr got feed hi there" in shared.logs("subr"), 15, "the injected publication")
    unsubscribed = topo.run("send", run, "subr.in", "other", "x", "--timeout", "2")
    assert unsubscribed.code == 1, unsubscribed.err
    assert "subr.in subscribes only to 'feed': the message's first frame matches none" in unsubscribed.err

    # a socket that binds nothing (it dials the pusher on h1): its injection endpoint on h2
    dialled = topo.run("send", run, "worker.0.in", "injected", "from afar")
    assert dialled.code == 0, dialled.err
    assert dialled.err.strip() == "topo: sent 2 frame(s), 17 bytes, to worker.0.in (PULL)"
    wait_until(lambda: "got injected from afar" in shared.logs("worker.0"), 15, "the message injected into worker.0")

    # the same refusals and exit codes as for a local node
    wrong = topo.run("send", run, "lone.out", "x")
    assert wrong.code == 2 and "lone.out is a PUSH: it only sends" in wrong.err


def test_a_killed_echo_ends_its_tap_on_the_remote_node(shared: Shared) -> None:
    topo, run = shared.topo, shared.run
    echo = topo.start("echo", run, "lone.out")
    topo.wait_for_line(echo, r"lone\.out out")
    wait_until(lambda: "lone | tapped" in shared.logs("lone"), 15, "the remote node to say it is tapped")
    echo.send_signal(signal.SIGKILL)
    echo.wait(10)
    # no untap was sent: the lease (4 s without a renewal) ends it in the node's process
    wait_until(lambda: "lone | untapped" in shared.logs("lone"), 15, "the remote tap to end with its lease")


# -- through the test harness ------------------------------------------------------------------


@pytest.fixture
def net2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Network]:
    monkeypatch.setenv("PYTHONPATH", f"{HERE}:{ROOT}")  # what the agents' Python imports
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    with host_network(2) as net:
        yield net
        hosts_emptied(net, 15)


def _hosts(net: Network) -> dict[str, Any]:
    return {"local": {"address": net.local_address},
            **{f"h{i}": {"address": h.address, "launch": h.launch(), "python": sys.executable}
               for i, h in enumerate(net.hosts, 1)}}


def test_run_tap_of_a_remote_push_sees_every_message_dealt_in_turn(net2: Network) -> None:
    source = {
        "topology": "rdealt", "hosts": _hosts(net2),
        "nodes": {
            "src": {"run": "tapnodes:ticker", "host": "h1", "args": {"count": 300, "interval": 0.002,
                                                                     "wait_tapped": True},
                    "sockets": {"out": "PUSH"}},
            "worker": {"run": "tapnodes:printer", "host": "h2", "replicas": 3, "sockets": {"in": "PULL"}}},
        "links": ["src.out -> worker.in"],
    }
    with up(source, ready_timeout=30) as run, run.tap("src.out") as tap:
        seen = [next(tap) for _ in range(300)]
        run.wait_for_output("src", "src sent 300", timeout=30)
        got: dict[str, list[int]] = {}

        def all_in() -> bool:
            for name in ("worker.0", "worker.1", "worker.2"):
                got[name] = _ticks(run.output(name))
            return sum(len(v) for v in got.values()) == 300

        wait_until(all_in, 20, "every worker's lines")
    assert _ticks([m.frames[0].decode() for m in seen]) == list(range(300))
    assert {(m.instance, m.socket, m.direction) for m in seen} == {("src", "out", "out")} and tap.missed == 0
    owner = {tick: name for name, ticks in got.items() for tick in ticks}
    assert sorted(owner) == list(range(300))
    assert all(owner[i] == owner[i % 3] for i in range(300)), "not dealt in turn"


def test_a_reader_that_does_not_read_loses_only_its_copies_counted(net2: Network) -> None:
    count = 50_000
    source = {
        "topology": "rflood", "hosts": _hosts(net2),
        "nodes": {
            "src": {"run": "tapnodes:ticker", "host": "h1",
                    "args": {"count": count, "interval": 0, "wait_tapped": True, "stay": True},
                    "sockets": {"out": "PUSH"}},
            "sink": {"run": "tapnodes:counting_sink", "host": "h2", "args": {"count": count},
                     "sockets": {"in": "PULL"}}},
        "links": ["src.out -> sink.in"],
    }
    with up(source, ready_timeout=30) as run, run.tap("src.out", timeout=3) as tap:
        run.wait_for_output("sink", f"sink received {count}", timeout=60)  # every message, unread tap or not
        run.wait_for_output("src", f"src sent {count}", timeout=10)
        with pytest.raises(TapTimeout):
            while True:
                next(tap)
        assert tap.missed > 0, f"the tap should have dropped copies; saw {len(tap.messages)}"
        assert len(tap.messages) + tap.missed == count, (len(tap.messages), tap.missed)
        ticks = _ticks([m.frames[0].decode() for m in tap.messages])
        assert ticks == sorted(ticks), "copies that arrive keep their order"



def _agent_in(net: Network, index: int) -> psutil.Process:
    """The agent process inside one namespace."""
    out = subprocess.run(["ip", "netns", "pids", net.hosts[index].name], capture_output=True, text=True, check=True)
    for pid in map(int, out.stdout.split()):
        try:
            if "topo.hosts.agent" in " ".join(psutil.Process(pid).cmdline()):
                return psutil.Process(pid)
        except psutil.Error:
            continue
    raise AssertionError(f"no agent in {net.hosts[index].name}")


def test_a_tap_comes_back_when_the_nodes_host_is_lost_and_reached_again(net2: Network) -> None:
    source = {
        "topology": "rlost", "hosts": _hosts(net2),
        "nodes": {
            "src": {"run": "tapnodes:ticker", "host": "h1", "restart": "on-failure",
                    "args": {"interval": 0.02, "pid_topic": True}, "sockets": {"out": "PUSH"}},
            "sink": {"run": "tapnodes:counting_sink", "args": {"count": 1_000_000_000}, "sockets": {"in": "PULL"}}},
        "links": ["src.out -> sink.in"],
    }
    with up(source, ready_timeout=30) as run, run.tap("src.out", timeout=30) as tap:
        first = next(tap).frames[0]
        _agent_in(net2, 0).kill()
        # the host is lost, its agent launched again and src restarted: the tap, renewed
        # meanwhile, is on the new process (another pid) without a new request
        deadline = time.monotonic() + 60
        while (message := next(tap)).frames[0] == first:
            assert time.monotonic() < deadline, "the tap never came back on the restarted node"
        ticks = _ticks([message.frames[1].decode()] + [next(tap).frames[1].decode() for _ in range(3)])
        assert ticks == list(range(ticks[0], ticks[0] + 4)), ticks
        assert tap.missed == 0
        assert len([line for line in run.output("topo") if "host h1: starting its agent" in line]) == 2
        assert run.wait_for_output("topo", r"host h1 lost", timeout=1)
