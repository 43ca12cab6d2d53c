"""A rogue agent, started through a host's ``launch`` prefix: it holds its host's genuine
configuration and key, says it is up, claims to have spawned every process it is asked to
start (and that the process said hello), and then ignores every STOP, SIGNAL and SHUTDOWN, beating all the while so that it
is never taken for silent. Ends by itself after :data:`LIFETIME` seconds, or when killed.

Run as ``python rogueagent.py MODE [ignored...]`` (the launch prefix is followed by the real
agent's command, which it ignores). MODE ``deaf`` beats twice a second; ``flood`` sends
beats as fast as its socket takes them, to starve the supervisor's loop."""

from __future__ import annotations

import os
import sys
import time

import zmq

from topo import __version__
from topo.hosts.agent_config import read_config
from topo.process import curve
from topo.process.control import BEAT, Kind, Message

LIFETIME = 120.0  # a bound on its own life, should everything else fail


def main() -> int:
    flood = sys.argv[1:2] == ["flood"]
    config = read_config(0)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    up = ctx.socket(zmq.DEALER)
    up.linger = 0
    up.identity = config.host.encode()
    curve.dial(up, config.keys, config.control_host)
    up.connect(config.control)
    up.send_multipart(Message(Kind.AGENT, {"host": config.host, "pid": os.getpid(), "version": __version__}).encode())
    print("rogue agent up", flush=True)
    end = time.monotonic() + LIFETIME
    next_beat = 0.0
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_beat:
            next_beat = now + BEAT / 2
            up.send_multipart(Message(Kind.BEAT, {"stats": {}}).encode())
        if flood:
            beat = Message(Kind.BEAT, {"stats": {}}).encode()
            for _ in range(1000):
                up.send_multipart(beat)
        if up.poll(0 if flood else int(BEAT * 500)):
            m = Message.decode(up.recv_multipart()[1:])  # (a target, then the message)
            if m.kind is Kind.START:  # "spawned", with a pid nobody has; nothing runs
                up.send_multipart(Message(Kind.SPAWNED, {"process": m["process"], "gen": m["gen"],
                                                         "pid": 4_000_000}).encode())
                up.send_multipart(Message(Kind.HELLO, {"process": m["process"], "gen": m["gen"]}).encode())
            elif m.kind is Kind.CONNECT:  # so the supervisor has taken the process as started
                print("rogue agent: connected", flush=True)
            # STOP, SIGNAL, SHUTDOWN, PING: ignored
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
