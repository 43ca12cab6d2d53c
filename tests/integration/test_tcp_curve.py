"""Every tcp link is CURVE unless the file says ``curve: false``, on one host as across hosts:
127.0.0.1 is open to every user of the machine. A process holding no key of the run
completes no handshake, reads nothing and injects nothing; with ``curve: false`` the same
process does all three, which is what shows that the check can fail (docs/security.md).

The stranger runs as this user: tcp never asks who dials, so another uid would change
nothing (and this interpreter may not be one another uid can run)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import Topo

#: Another user's process: a SUB dialling the publisher and a PUSH dialling the sink, each
#: watched by a monitor until its handshake succeeded or failed (a real signal, no timer);
#: then, once in, what a short look receives. Prints one JSON line.
STRANGER_CODE = textwrap.dedent("""
    import json, sys, time
    import zmq
    from zmq.utils.monitor import recv_monitor_message
    FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
              | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    ctx = zmq.Context()
    sub, push = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH)
    sub.subscribe(b"")
    result = {}
    for name, sock, address in (("sub", sub, sys.argv[1]), ("push", push, sys.argv[2])):
        monitor = sock.get_monitor_socket()
        sock.connect(address)
        deadline = time.monotonic() + 10
        while name not in result and monitor.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                result[name] = "in"
            elif event & FAILED:
                result[name] = "refused"
        result.setdefault(name, "no handshake within 10s")
    if result["push"] == "in":
        push.send_string("INJECTED", zmq.NOBLOCK)
    result["received"] = sub.recv_string() if result["sub"] == "in" and sub.poll(5000) else None
    print(json.dumps(result), flush=True)
    ctx.destroy(linger=1000)
""")


def _stranger(pub: str, sink: str) -> dict[str, str | None]:
    """Runs :data:`STRANGER_CODE` in a process of its own, with none of the run's keys."""
    done = subprocess.run([sys.executable, "-c", STRANGER_CODE, pub, sink], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, str | None] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("curve", [None, False], ids=["default", "curve_false"])
def test_another_user_gets_nothing_from_a_tcp_link_unless_curve_is_off(topo: Topo, curve: bool | None) -> None:
    extra = "" if curve is None else ", curve: false"
    path = topo.file(f"""
        topology: onehosttcp
        nodes:
          pub: {{run: itnodes:publish_forever, sockets: {{out: PUB}}}}
          sink: {{run: itnodes:say_endpoint_and_print, sockets: {{in: {{type: PULL, bind: true}}}}}}
          feed: {{run: itnodes:send_numbers, sockets: {{out: PUSH}}}}
          listen: {{run: itnodes:print_received, sockets: {{in: {{type: SUB, subscribe: [""]}}}}}}
        links:
          - {{from: pub.out, to: listen.in, transport: tcp{extra}}}
          - {{from: feed.out, to: sink.in, transport: tcp{extra}}}
        """.replace("\n        ", "\n"))
    proc = topo.start("up", path)
    try:
        text = "".join(topo.wait_for_lines(proc, [r"pub +\| endpoint tcp://", r"sink +\| endpoint tcp://",
                                                  r"sink +\| received \d", r"listen +\| received tick"]))
        pub_at = re.search(r"pub +\| endpoint (tcp://\S+)", text)
        sink_at = re.search(r"sink +\| endpoint (tcp://\S+)", text)
        assert pub_at and sink_at, text
        assert pub_at.group(1).startswith("tcp://127.0.0.1:")
        got = _stranger(pub_at.group(1), sink_at.group(1))
        if curve is None:
            assert got == {"sub": "refused", "push": "refused", "received": None}
        else:  # the same user, the same code: in, reading and injecting
            assert got["sub"] == "in" and got["push"] == "in" and (got["received"] or "").startswith("tick")
            topo.wait_for_lines(proc, [r"sink +\| received INJECTED"])
        # the run's own links work either way
        topo.wait_for_lines(proc, [r"listen +\| received tick", r"sink +\| received \d"])
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    if curve is None:
        assert "INJECTED" not in out
