"""The relays of remote taps lose nothing to a burst: copies of a slow tap come one to a
batch, and a relay's thread (or its I/O thread) that did not get the CPU for a moment
receives them all together. The supervisor's relay holds the burst; an agent's reads no
copy its way up has no room for."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import zmq

from conftest import wait_until
from topo.hosts.taprelay import HWM
from topo.hosts.taprelay import TapRelay as AgentRelay
from topo.process import curve
from topo.process.tapwire import OUT_ONE, copies_in, pack
from topo.supervisor.remotetaps import COPY, TapRelay

BURST = 120


def test_a_burst_of_single_copy_batches_reaches_a_reader_whose_way_was_not_open_yet() -> None:
    """Before: the reader's PUSH held 31 batch messages (``batch_hwm(1000)``), enough for
    1,000 copies of a flood but 31 of a slow tap; the rest of a burst was dropped and
    counted, though the reader was keeping up. Under six CPU burners, the dealt-in-turn
    remote tap test lost 6 to 24 copies there in 3 of 140 runs; 0 of 80 since."""
    ctx = zmq.Context()
    folder = Path(tempfile.mkdtemp(prefix="tb-", dir="/tmp"))
    endpoint = f"ipc://{folder}/reader"
    relay = TapRelay(ctx, curve.make_keys(["local"])["local"], "127.0.0.1", "", lambda _: "h1")
    reader = ctx.socket(zmq.PULL)
    try:
        relay.register("t1", endpoint, "h1")
        for i in range(BURST):  # what the relay's thread does with each copy that came up (no reader bound yet)
            body = b"tick %d" % i
            relay._copy("h1", [zmq.Frame(pack(b"t1", b"src", time.time_ns(), 0, [OUT_ONE], [body], [len(body)],
                                              [time.time_ns()]))])
        reader.bind(endpoint)
        got = 0
        while got < BURST and reader.poll(5000):
            got += copies_in([reader.recv()])
        assert got == BURST
        assert relay._ways["t1"].dropped == 0
    finally:
        relay.close()
        reader.close(0)
        ctx.term()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def test_an_agents_relay_reads_no_copy_while_its_way_up_is_full() -> None:
    """Before: the agent's relay read a copy, then found its DEALER to the supervisor full
    (31 batch messages: a burst of a slow tap's single-copy batches), and dropped it; here,
    with the supervisor not there yet, 10 copies then 30 more: the 32nd was dropped. Now
    the copies wait in the PULL (and in the process) until there is room, and all of them
    go up once the supervisor is there."""
    ctx = zmq.Context()
    folder = Path(tempfile.mkdtemp(prefix="ta-", dir="/tmp"))
    keys = curve.make_keys(["local", "h1"])
    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = AgentRelay(ctx, folder, f"tcp://127.0.0.1:{port}", keys["h1"], "local", "h1", "127.0.0.1", {})
    feed = ctx.socket(zmq.PUSH)
    supervisor = ctx.socket(zmq.ROUTER)
    try:
        feed.connect(relay.endpoint)
        for i in range(40):  # a few, then a burst: more than the way up has room left for
            body = b"tick %d" % i
            feed.send(pack(b"t1", b"src", time.time_ns(), 0, [OUT_ONE], [body], [len(body)], [time.time_ns()]))
            if i == 9:
                wait_until(lambda: relay.sent_up == 10, 10, "the relay to send up the first 10")
        wait_until(lambda: relay.sent_up == HWM, 10, f"the relay to send up {HWM} (its DEALER's room)")
        curve.serve(supervisor, keys["local"])  # (no ZAP handler in this context: any client is let in)
        supervisor.bind(f"tcp://127.0.0.1:{port}")
        got = 0
        while got < 40 and supervisor.poll(5000):
            frames = supervisor.recv_multipart()
            assert frames[:2] == [b"h1", COPY]
            got += copies_in(frames[2:])
        assert got == 40 and relay.dropped == {}
    finally:
        relay.close(timeout=5.0, flush=False)
        for sock in (feed, supervisor):
            sock.close(0)
        ctx.term()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
