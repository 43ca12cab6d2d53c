"""``topo send`` into receiving sockets that bind nothing a peer outside could dial: they
connect to their peers, bind only inproc, or only CURVE tcp. Each gets an injection
endpoint (topo.plan.inject), an ipc file of the run's own; with real processes and the
shipped topologies."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from conftest import ROOT, Topo
from topo.process import curve
from topo.process.curve import ZapHandler, make_keys

TOPOLOGIES = ROOT / "topologies"


def _shipped(name: str) -> str:
    return (TOPOLOGIES / f"{name}.yaml").read_text()


def _inject_files(topo: Topo) -> list[Path]:
    return [p for p in topo.socket_files() if "-inject-" in p.name]


def test_a_connect_only_sub_gets_the_message_and_its_file_goes_with_the_run(topo: Topo) -> None:
    """sensors.yaml's display subscribes to the kitchen and connects to the sensor: here
    the sensor reports on the hall only, so the one reading the display counts is ours."""
    run = topo.up_detached(_shipped("sensors"), "--set", "sensor.args.count=0", "--set",
                           "sensor.args.rooms=[hall]", "--set", "display.args.every=1", name="sensors.yaml")[1]
    try:
        files = sorted(p.name for p in _inject_files(topo))
        # the display's SUB and the workers' PULLs connect; the sensor's PUB does not receive
        assert files == ["2-inject-display.readings.sock", "3-inject-worker.0.jobs.sock",
                         "4-inject-worker.1.jobs.sock"], files
        assert all(p.parent.stat().st_mode & 0o077 == 0 for p in _inject_files(topo))  # only the run's user
        log = topo.start("logs", "-f", run)
        sent = topo.run("send", run, "display.readings", "temp.kitchen", '{"room": "kitchen", "celsius": 99.5}')
        assert sent.code == 0 and sent.out == "", sent.err
        assert sent.err.endswith(" bytes, to display.readings (SUB)\n"), sent.err
        topo.wait_for_line(log, r"display +\| 1 readings so far$")
        job = topo.run("send", run, "worker.1.jobs", "job 99", "\x01\x02")
        assert job.code == 0, job.err
    finally:
        assert topo.run("down", run).code == 0
    assert topo.socket_files() == [] and topo.run_dirs() == []


def test_a_connect_only_pull_and_the_real_deliveries_unchanged(topo: Topo) -> None:
    """pipeline.yaml's workers connect to the ventilator: one more task, into worker.0,
    makes the sink's 13th result. The ventilator's 12 were all delivered as before (sum of
    squares 0..11 is 506, and 7 squared makes 555), dealt 4 to each worker."""
    run = topo.up_detached(_shipped("pipeline"), "--set", "sink.args.tasks=13", name="pipeline.yaml")[1]
    try:
        log = topo.start("logs", "-f", run)
        sent = topo.run("send", run, "worker.0.tasks", "7")
        assert sent.code == 0, sent.err
        lines = topo.wait_for_lines(log, [r"sink +\| sink: 13/13 results, sum of squares = 555$"])
        text = "".join(lines)
        assert "sink: worker.0 did 5 task(s)" in text and "sink: worker.1 did 4 task(s)" in text \
            and "sink: worker.2 did 4 task(s)" in text, text
    finally:
        topo.run("down", run)  # the sink's 13th result ended the run: nothing may be left either way
    assert topo.socket_files() == []


SHARED = """
topology: shared
nodes:
  client: {run: "sendnodes:asker", args: {interval: 0.2}, process: one, sockets: {out: REQ}}
  svc: {run: "sendnodes:answerer", process: one, sockets: {in: REP}}
  feeder: {run: "sendnodes:idle", sockets: {out: PUSH}}
  sink: {run: "sendnodes:printer", sockets: {in: {type: PULL, bind: true}}}
  peer: {run: "sendnodes:idle", sockets: {out: PAIR}}
  pair: {run: "sendnodes:printer", sockets: {in: PAIR}}
  quitter: {run: "sendnodes:quits", sockets: {in: PULL}}
  feeder2: {run: "sendnodes:idle", sockets: {out: PUSH}}
links:
  - client.out -> svc.in
  - {from: feeder.out, to: sink.in, transport: tcp}
  - peer.out -> pair.in
  - feeder2.out -> quitter.in
"""


def test_inproc_and_curve_only_sockets_pair_and_ended_nodes(topo: Topo) -> None:
    """svc's REP is reached only over inproc (its client shares its process), sink's PULL
    binds only CURVE tcp: both through their injection endpoints. A PAIR is refused with
    its reason, and so is a node that has returned."""
    run = topo.up_detached(SHARED)[1]
    try:
        log = topo.start("logs", "-f", run)
        topo.wait_for_line(log, r"quitter +\| quitter returns")
        asked = topo.run("send", run, "svc.in", "over", "ipc")
        assert asked.code == 0 and asked.out == "[0] re: over | ipc  [1] 2\n", (asked.out, asked.err)
        sent = topo.run("send", run, "sink.in", "past", "curve")
        assert sent.code == 0, sent.err
        topo.wait_for_line(log, r"sink +\| sink got past \| curve$")
        paired = topo.run("send", run, "pair.in", "x")
        assert paired.code == 2 and paired.err == (
            "pair.in is a PAIR: libzmq gives it one peer, its own, so no other can send to it; "
            "topo send injects into a PULL, REP, ROUTER, SUB or XSUB\n"), paired.err
        gone = topo.run("send", run, "quitter.in", "x")
        assert gone.code == 1 and gone.err == (
            "quitter is not running (exited): topo send sends to running nodes only\n"), gone.err
        # the REQ client went on being answered meanwhile
        ps = topo.run("ps", run)
        assert ps.code == 0 and "failed" not in ps.out, ps.out
    finally:
        assert topo.run("down", run).code == 0
    assert topo.socket_files() == []


#: Per shipped topology: --set that keeps it running, the socket, the frames, and what
#: shows the node got them (a reply, or a line of its output).
EVERY = {
    "broker": (["tally.args.clients=3"], "worker.0.rep", ["hi"], "[0] hi done by worker.0\n", None),
    "pipeline": (["sink.args.tasks=13"], "worker.1.tasks", ["3"], "",
                 r"sink +\| sink: 13/13 results, sum of squares = 515$"),
    "proxy": (["subscriber.args.count=1000000"], "subscriber.in", ["tick.shell", "shell #1"], "",
              r"subscriber +\| subscriber: shell #1$"),
    "pubsub": (["weather.args.count=6"], "weather.in", ["weather.shell", "sunny"], "",
               r"weather +\| weather: \[weather\.shell\] sunny$"),
    "reqrep": (["client.args.count=0", "client.on_exit=continue"], "server.rep", ["shell"],
               "[0] world (re: shell)\n", None),
    "sensors": (["sensor.args.count=0"], "worker.0.jobs", ["job 1", "\x01"], "", None),
}


@pytest.mark.parametrize("name", sorted([*EVERY, "pair_chain"]))
def test_every_shipped_topology(topo: Topo, name: str) -> None:
    """One receiving socket of each shipped topology takes a message; pair_chain has only
    PAIRs, refused with their reason."""
    if name == "pair_chain":  # step1 idles: the chain waits for its words, and runs on
        run = topo.up_detached(_shipped(name), "--set", "step1.run=sendnodes:idle", name=f"{name}.yaml")[1]
        try:
            refused = topo.run("send", run, "step3.in", "x")
            assert refused.code == 2 and "step3.in is a PAIR: libzmq gives it one peer" in refused.err, refused.err
        finally:
            assert topo.run("down", run).code == 0
        return
    sets, target, frames, reply, line = EVERY[name]
    run = topo.up_detached(_shipped(name), *[a for s in sets for a in ("--set", s)], name=f"{name}.yaml")[1]
    try:
        log = topo.start("logs", "-f", run) if line else None
        sent = topo.run("send", run, target, *frames)
        assert sent.code == 0 and sent.out == reply, (sent.out, sent.err)
        if log is not None:
            topo.wait_for_line(log, line)
    finally:
        topo.run("down", run)  # (the pipeline's sink ends its run with the 13th result)
    assert topo.socket_files() == []


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    context.linger = 0
    yield context
    context.term()


def test_the_injection_endpoint_stays_plain_beside_curve(ctx: zmq.Context[Any], tmp_path: Path) -> None:
    """The wiring's order: the ipc injection endpoint bound first, then the tcp endpoint
    inside curve.secured. libzmq copies the options per bind, so the ipc endpoint takes a
    plain peer, and the tcp one only the run's keys (a plain peer gets nothing there)."""
    keys = make_keys(["local"])
    zap = ZapHandler(ctx, keys["local"])
    zap.start()
    server = ctx.socket(zmq.REP)
    ipc = f"ipc://{tmp_path}/inject"
    server.bind(ipc)
    with curve.secured(server, keys["local"]):
        port = server.bind_to_random_port("tcp://127.0.0.1")
    assert not server.curve_server  # plain again for what comes after

    def ask(address: str, text: bytes, secured: bool) -> bytes | None:
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        if secured:
            curve.dial(sock, keys["local"], "local")
        sock.connect(address)
        sock.send(text)
        try:
            if server.poll(1500):
                server.send(b"re: " + server.recv())
            return sock.recv() if sock.poll(1500) else None
        finally:
            sock.close(linger=0)

    try:
        assert ask(ipc, b"plain over ipc", secured=False) == b"re: plain over ipc"
        assert ask(f"tcp://127.0.0.1:{port}", b"with the run's key", secured=True) == b"re: with the run's key"
        assert ask(f"tcp://127.0.0.1:{port}", b"plain over tcp", secured=False) is None
        assert not server.poll(200)  # nothing of the plain tcp peer came in
    finally:
        server.close(linger=0)
