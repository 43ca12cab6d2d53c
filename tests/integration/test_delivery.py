"""What a node sent before it returned reaches its peers: on every transport, from every
sending socket type, and above all over ipc, where libzmq alone loses the tail when the
receiver is behind (libzmq issue 4660; docs/gate.md, "Delivery at a node's return")."""

from __future__ import annotations

import json
import re
import time

import psutil
import pytest

from conftest import Topo, wait_until

pytestmark = pytest.mark.slow

#: (sender type, sender function, receiver type, receiver function, link from, link to).
#: A link runs from client to server, so for a ROUTER that answers and a REP that replies
#: the receiving end is written first.
PATTERNS = [
    ("PUSH", "blast", "PULL", "count", "tx", "rx"),
    ("PUB", "blast", "SUB", "count", "tx", "rx"),
    ("XPUB", "blast", "SUB", "count", "tx", "rx"),
    ("DEALER", "blast", "ROUTER", "count", "tx", "rx"),
    ("DEALER", "blast", "DEALER", "count", "tx", "rx"),
    ("PAIR", "blast", "PAIR", "count", "tx", "rx"),
    ("ROUTER", "blast_replies", "DEALER", "hello_then_count", "rx", "tx"),
    ("REP", "reply_once", "REQ", "request_once", "rx", "tx"),
]
TRANSPORTS = ["inproc", "ipc", "tcp"]


def _socket(kind: str) -> str:
    if kind == "SUB":
        return '{type: SUB, subscribe: [""]}'
    if kind in ("PUB", "XPUB", "ROUTER"):
        # these drop what exceeds their high-water mark by design: a burst fits when it has none
        return f"{{type: {kind}, options: {{sndhwm: 0}}}}"
    return kind


def matrix(count: int) -> str:
    """Every sending pattern over every transport, each pair on its own, in one run."""
    nodes, links = [], []
    for transport in TRANSPORTS:
        for i, (tx_type, tx_fn, rx_type, rx_fn, first, second) in enumerate(PATTERNS):
            tx, rx = f"{transport}_{i}_tx", f"{transport}_{i}_rx"
            args = f"{{count: {1 if tx_type == 'REP' else count}, size: 1000000, xpub: {tx_type == 'XPUB'}}}"
            same = f", process: {transport}_{i}" if transport == "inproc" else ""
            nodes.append(f"  {tx}: {{run: 'floodnodes:{tx_fn}', args: {args}{same}, "
                         f"sockets: {{out: {_socket(tx_type)}}}}}")
            nodes.append(f"  {rx}: {{run: 'floodnodes:{rx_fn}', args: {args}{same}, "
                         f"sockets: {{in: {_socket(rx_type)}}}}}")
            ends = {"tx": f"{tx}.out", "rx": f"{rx}.in"}
            wide = ", transport: tcp" if transport == "tcp" else ""
            links.append(f"  - {{from: {ends[first]}, to: {ends[second]}{wide}}}")
    return "topology: deliver\nnodes:\n" + "\n".join(nodes) + "\nlinks:\n" + "\n".join(links) + "\n"


def received(out: str) -> dict[str, tuple[int, int]]:
    return {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"(\S+) received (\d+) of (\d+)", out)}


def test_every_sending_socket_type_delivers_at_return_on_every_transport(topo: Topo) -> None:
    path = topo.file(matrix(20_000))
    result = topo.run("up", path, timeout=180)
    counts = received(result.out)
    assert result.code == 0, result.out + result.err
    expected = {f"{t}_{i}_rx" for t in TRANSPORTS for i in range(len(PATTERNS))}
    assert set(counts) == expected, result.out
    lost = {name: f"{got} of {wanted}" for name, (got, wanted) in counts.items() if got != wanted}
    assert not lost, lost


@pytest.mark.parametrize("round_", range(3))
def test_200000_messages_over_ipc_arrive_whole_every_time(topo: Topo, round_: int) -> None:
    """Three pairs at once, three rounds: nine runs of the case that lost 600-2,700 before."""
    pairs = range(3)
    nodes = "\n".join(f"  tx{i}: {{run: 'floodnodes:blast', args: {{count: 200000}}, sockets: {{out: PUSH}}}}\n"
                      f"  rx{i}: {{run: 'floodnodes:count', args: {{count: 200000}}, sockets: {{in: PULL}}}}"
                      for i in pairs)
    links = "\n".join(f"  - tx{i}.out -> rx{i}.in" for i in pairs)
    path = topo.file(f"topology: flood\nnodes:\n{nodes}\nlinks:\n{links}\n")
    plan = json.loads(topo.run("plan", path, "--json").out)
    assert {ln["transport"] for ln in plan["links"]} == {"ipc"}
    result = topo.run("up", path, timeout=120)
    assert result.code == 0, result.out + result.err
    assert received(result.out) == {f"rx{i}": (200_000, 200_000) for i in pairs}, result.out


def _pid_of(topo: Topo, topology: str, node: str, state: str) -> int:
    """The pid of a node's process, once ``topo ps`` shows the node in ``state``."""
    found: list[int] = []

    def seen() -> bool:
        for run in json.loads(topo.run("ps", topology, "--json").out):
            for entry in run.get("nodes", []):
                if entry["name"] == node and entry["state"] == state and entry["pid"]:
                    found.append(entry["pid"])
                    return True
        return False

    wait_until(seen, 30, f"{node} {state} in topo ps")
    return found[0]


def gone_file(tx_binds: bool) -> str:
    return f"""
        topology: gone
        nodes:
          tx: {{run: 'floodnodes:blast', args: {{count: 50000, until_alone: true}},
                sockets: {{out: {{type: PUSH, bind: {str(tx_binds).lower()}, options: {{sndhwm: 0}}}}}}}}
          rx: {{run: 'floodnodes:take_one', sockets: {{in: PULL}}}}
          idle: {{run: 'floodnodes:blast', args: {{count: 0}}, sockets: {{out: PUSH}}}}
          keeper: {{run: 'floodnodes:wait_for_stop', sockets: {{in: PULL}}}}
        links:
          - tx.out -> rx.in
          - idle.out -> keeper.in
        """


@pytest.mark.parametrize("tx_binds", [True, False], ids=["sender-binds", "sender-connects"])
def test_a_receiver_that_returned_does_not_keep_the_sender_alive(topo: Topo, tx_binds: bool) -> None:
    """The receiver takes one of 50,000 and returns; the sender returns with the rest queued.
    Its process must end by itself long before the grace period (60 s) would end it, even
    where libzmq, dialling a peer that is gone, would wait for it forever."""
    path = topo.file(gone_file(tx_binds))
    proc = topo.start("up", path, "--grace", "60")
    try:
        topo.wait_for_line(proc, "rx returned")
        pid = _pid_of(topo, "gone", "tx", "exited")
        started = time.monotonic()
        wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                   15, "the sender's process to end")
        assert time.monotonic() - started < 15
    finally:
        topo.run("down", "gone")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err


def test_a_stop_drops_what_a_receiver_never_read(topo: Topo) -> None:
    """A receiver alive but not reading: the sender's process holds its messages
    (delivery is owed while the receiver lives: 300,000 do not fit in the buffers between),
    and a stop ends it all promptly."""
    path = topo.file("""
        topology: unread
        nodes:
          tx: {run: 'floodnodes:blast', args: {count: 300000}, sockets: {out: {type: PUSH, options: {sndhwm: 0}}}}
          rx: {run: 'floodnodes:wait_for_stop', args: {wait_on: idle}, sockets: {in: PULL, idle: PULL}}
          idle: {run: 'floodnodes:blast', args: {count: 0}, sockets: {out: PUSH}}
        links:
          - tx.out -> rx.in
          - idle.out -> rx.idle
        """)
    proc = topo.start("up", path, "--grace", "30")
    try:
        topo.wait_for_line(proc, "tx returned")
        pid = _pid_of(topo, "unread", "tx", "exited")
        assert psutil.pid_exists(pid)  # still owes most of 300,000 messages to a live receiver
        started = time.monotonic()
        down = topo.run("down", "unread")
        assert down.code == 0, down.out + down.err
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10, out + err  # not the 30 s grace
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not topo.socket_files()


def test_a_node_restarting_after_its_return_delivers_first(topo: Topo) -> None:
    """``restart: always``: the sender returns after each burst of 100,000 and is restarted.
    Its old process first delivers the burst to a receiver that lags behind (over ipc, where
    a stop at the restart drops the tail); the receiver must count three whole bursts."""
    path = topo.file("""
        topology: again
        nodes:
          tx: {run: 'floodnodes:blast', args: {count: 100000}, restart: always, sockets: {out: PUSH}}
          rx: {run: 'floodnodes:count', args: {count: 300000, lag: 0.05}, on_exit: stop, sockets: {in: PULL}}
        links:
          - tx.out -> rx.in
        """)
    result = topo.run("up", path, timeout=120)
    assert received(result.out) == {"rx": (300_000, 300_000)}, result.out
    assert result.code == 0, result.out + result.err
    assert "tx returned; restarting" in result.out
