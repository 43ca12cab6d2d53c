"""The two sides of bench/datapath.py, driven the same way: the sender and receiver nodes of
bench/dp_nodes.py wired by topo (``topo.testing.up``) and wired by hand with pyzmq.

Both sides take commands on each node's ``ctl`` and answer on its ``report``, so one launch
per transport serves every trial and topo's trials can be interleaved with the baseline's.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import zmq

from bench import dp_nodes

REPLY_TIMEOUT = 120.0  # seconds a trial's answer may take before the benchmark gives up
#: ``tcp`` is plain tcp on both sides (``curve: false`` in topo's file); ``tcp+curve`` is
#: topo's default tcp link, CURVE-encrypted, against the same plain hand-wired tcp: its
#: ratio is the price of the encryption, not a target.
TRANSPORTS = ("inproc", "ipc", "tcp", "tcp+curve")
#: What each transport's links say in topo's file.
_LINK_KEYS: dict[str, dict[str, Any]] = {"tcp": {"transport": "tcp", "curve": False}, "tcp+curve": {"transport": "tcp"}}

#: The measured sockets of each node (the ``ctl`` PULL and ``report`` PUSH come on top).
SOCKETS = {
    "sender": {"push": "PUSH", "pub": "PUB", "req": "REQ"},
    "receiver": {"pull": "PULL", "sub": "SUB", "rep": "REP"},
}
LINKS = [("sender.push", "receiver.pull"), ("sender.pub", "receiver.sub"), ("sender.req", "receiver.rep")]


@dataclass(frozen=True)
class Test:
    """One measurement, run alike on both sides: ``n`` messages (throughput) or round
    trips (latency) of ``size`` bytes on the sender's ``socket``."""

    key: str  # for --tests
    name: str
    kind: str  # "thr" | "lat"
    socket: str  # the sender's socket
    size: int
    n: int

    @property
    def peer(self) -> str:
        return {"push": "pull", "pub": "sub", "req": "rep"}[self.socket]


def tests(quick: bool) -> list[Test]:
    """Every test; quick runs are shorter, long enough still for a rate to settle."""
    small, large, rtt = (30_000, 1_500, 2_000) if quick else (100_000, 5_000, 3_000)
    return [
        Test("push", "PUSH→PULL 64 B", "thr", "push", 64, small),
        Test("push64k", "PUSH→PULL 64 KB", "thr", "push", 65536, large),
        Test("pub", "PUB→SUB 64 B", "thr", "pub", 64, small),
        Test("pub64k", "PUB→SUB 64 KB", "thr", "pub", 65536, large),
        Test("rtt", "REQ→REP 64 B", "lat", "req", 64, rtt),
    ]




# -- the two sides, driven the same way --------------------------------------------------

class Side:
    """One launched pair of nodes: commands go to a node's ``ctl``, answers come from its ``report``."""

    label = ""

    def __init__(self) -> None:
        self.ctl: dict[str, zmq.Socket[Any]] = {}
        self.report: dict[str, zmq.Socket[Any]] = {}

    def cmd(self, node: str, **data: Any) -> None:
        self.ctl[node].send(json.dumps(data).encode())

    def reply(self, node: str, expect: str) -> dict[str, Any]:
        sock = self.report[node]
        if not sock.poll(int(REPLY_TIMEOUT * 1000)):
            raise RuntimeError(f"{self.label}: no answer from {node} within {REPLY_TIMEOUT:g}s (waiting for {expect})")
        answer: dict[str, Any] = json.loads(sock.recv())
        if answer.get("op") != expect:
            raise RuntimeError(f"{self.label}: {node} answered {answer} (waiting for {expect})")
        return answer

    def sync_pubsub(self) -> int:
        """Until a message on the PUB reaches the SUB; returns the messages it took."""
        self.cmd("receiver", op="syncwait")
        self.cmd("sender", op="sync")
        self.reply("receiver", "synced")
        self.cmd("sender", op="synced")
        sent = int(self.reply("sender", "synced")["sent"])
        self.cmd("receiver", op="drain", socket="sub")
        self.reply("receiver", "drained")
        return sent

    def throughput(self, test: Test) -> dict[str, Any]:
        self.cmd("receiver", op="count", socket=test.peer, n=test.n)
        self.reply("receiver", "armed")
        self.cmd("sender", op="send", socket=test.socket, n=test.n, size=test.size)
        got = self.reply("receiver", "counted")
        sent = self.reply("sender", "sent")
        return {"rate": (test.n - 1) / got["elapsed"], "send_loop": sent["elapsed"], "send_cpu": sent["cpu"],
                "recv_cpu": got["cpu"], "send_process_cpu": sent.get("process_cpu", 0.0)}

    def latency(self, test: Test) -> dict[str, Any]:
        self.cmd("receiver", op="pong", n=test.n)
        self.reply("receiver", "armed")
        self.cmd("sender", op="ping", n=test.n, size=test.size)
        got = self.reply("sender", "pinged")
        self.reply("receiver", "ponged")
        return got

    def run(self, test: Test) -> dict[str, Any]:
        return self.throughput(test) if test.kind == "thr" else self.latency(test)

    def quit(self) -> None:
        for node in ("sender", "receiver"):
            try:
                self.ctl[node].send(json.dumps({"op": "quit"}).encode(), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass


def topology(transport: str) -> dict[str, Any]:
    """The topology file (as a mapping) that puts the data links on ``transport``."""
    nodes: dict[str, Any] = {}
    for role, socks in SOCKETS.items():
        spec: dict[str, Any] = {}
        for name, kind in socks.items():
            spec[name] = {"type": kind, "options": dict(dp_nodes.OPTIONS[name])}
            if kind == "SUB":
                spec[name]["subscribe"] = [""]
        spec["ctl"] = "PULL"
        spec["report"] = "PUSH"
        nodes[role] = {"run": f"bench.dp_nodes:{role}", "sockets": spec}
        if transport == "inproc":
            nodes[role]["process"] = "same"
    links: list[Any] = [{"from": a, "to": b, **_LINK_KEYS.get(transport, {})} for a, b in LINKS]
    return {"topology": f"datapath-{transport.replace('+', '-')}", "nodes": nodes, "links": links}


class TopoSide(Side):
    label = "topo"

    def __init__(self, transport: str) -> None:
        super().__init__()
        from topo.testing import Probe, up

        probes = {}
        for role in SOCKETS:
            probes[f"ctl_{role}"] = Probe("PUSH", f"{role}.ctl", options={"sndtimeo": 10_000})
            probes[f"report_{role}"] = Probe("PULL", f"{role}.report")
        self.run_ = up(topology(transport), probes=probes, ready_timeout=60.0, grace=2.0)
        for role in SOCKETS:
            self.ctl[role] = self.run_.probes[f"ctl_{role}"]
            self.report[role] = self.run_.probes[f"report_{role}"]
        data = {a for a, _ in LINKS}
        #: For each data link (by its sending end): the ``NODE.SOCKET`` that binds, as planned.
        self.binds = {link.src: link.bind for link in self.run_.plan.links if link.src in data}
        planned = {link.src: link.transport.value + ("+curve" if link.secure else "") for link in self.run_.plan.links}
        wrong = [f"{src}: {t}" for src, t in planned.items() if src in data and t != transport]
        if wrong or len(self.binds) != len(LINKS):
            raise RuntimeError(f"topo planned the data links otherwise than {transport}: {wrong}")

    def close(self) -> None:
        self.quit()
        try:
            for role in SOCKETS:
                self.run_.wait_for(role, timeout=10)
        finally:
            self.run_.stop()


def baseline_node(ctx: zmq.Context[Any], role: str, binds: dict[str, str], ctl: str, report: str) -> None:
    """One node wired by hand: its sockets, bind, tell the endpoints, connect, run."""
    socks: dict[str, zmq.Socket[Any]] = {}
    for name, kind in SOCKETS[role].items():
        sock = ctx.socket(getattr(zmq, kind))
        for option, value in dp_nodes.OPTIONS[name].items():
            sock.setsockopt(getattr(zmq, option.upper()), value)
        if kind == "SUB":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        socks[name] = sock
    socks["ctl"] = ctx.socket(zmq.PULL)
    socks["ctl"].connect(ctl)
    socks["report"] = ctx.socket(zmq.PUSH)
    socks["report"].connect(report)
    bound = {}
    for name, address in binds.items():
        socks[name].bind(address)
        bound[f"{role}.{name}"] = socks[name].getsockopt_string(zmq.LAST_ENDPOINT)
    socks["report"].send(json.dumps({"op": "hello", "endpoints": bound}).encode())
    try:
        if socks["ctl"].poll(60_000):
            wire = json.loads(socks["ctl"].recv())
            for (a, b) in LINKS:
                end = a if a.startswith(role + ".") else b if b.startswith(role + ".") else None
                if end is not None and end.split(".", 1)[1] not in binds:
                    socks[end.split(".", 1)[1]].connect(wire["endpoints"][wire["binds"][a]])
            fn: Callable[[Any], None] = getattr(dp_nodes, role)
            fn(SimpleNamespace(name=role, sockets=socks, args={}, running=True))
    finally:
        for sock in socks.values():
            sock.close(linger=0)


def baseline_process(roles: list[str], binds: dict[str, dict[str, str]], ctl: dict[str, str],
                     report: dict[str, str]) -> None:
    """A spawned process of the baseline: its nodes as threads sharing one Context."""
    ctx: zmq.Context[Any] = zmq.Context()
    threads = [threading.Thread(target=baseline_node, args=(ctx, role, binds[role], ctl[role], report[role]),
                                name=role) for role in roles]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + dp_nodes.IDLE_MS / 1000 * 4
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    ctx.term()


class BaselineSide(Side):
    label = "baseline"

    def __init__(self, transport: str, tmp: Path, ctx: zmq.Context[Any], binds_by_link: dict[str, str]) -> None:
        super().__init__()
        ipc_dir = tmp / f"b-{transport}"
        ipc_dir.mkdir(exist_ok=True)
        self.binds_by_link = binds_by_link  # the same ends bind as in topo's plan
        binds: dict[str, dict[str, str]] = {role: {} for role in SOCKETS}
        for bind in self.binds_by_link.values():
            role, name = bind.split(".")
            binds[role][name] = {"inproc": f"inproc://base/{bind}", "ipc": f"ipc://{ipc_dir}/{bind}.sock",
                                 "tcp": "tcp://127.0.0.1:*", "tcp+curve": "tcp://127.0.0.1:*"}[transport]
        ctl_ep, report_ep = {}, {}
        for role in SOCKETS:
            ctl_ep[role] = f"ipc://{ipc_dir}/ctl-{role}"
            report_ep[role] = f"ipc://{ipc_dir}/report-{role}"
            self.ctl[role] = ctx.socket(zmq.PUSH)
            self.ctl[role].setsockopt(zmq.SNDTIMEO, 10_000)
            self.ctl[role].setsockopt(zmq.LINGER, 0)
            self.ctl[role].bind(ctl_ep[role])
            self.report[role] = ctx.socket(zmq.PULL)
            self.report[role].setsockopt(zmq.LINGER, 0)
            self.report[role].bind(report_ep[role])
        spawn = multiprocessing.get_context("spawn")
        groups = [["sender", "receiver"]] if transport == "inproc" else [["receiver"], ["sender"]]
        self.procs = [spawn.Process(target=baseline_process, args=(g, binds, ctl_ep, report_ep), daemon=True)
                      for g in groups]
        for proc in self.procs:
            proc.start()
        endpoints: dict[str, str] = {}
        for role in SOCKETS:
            endpoints.update(self.reply(role, "hello")["endpoints"])
        for role in SOCKETS:
            self.cmd(role, op="wire", endpoints=endpoints, binds=self.binds_by_link)

    def close(self) -> None:
        self.quit()
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for sock in (*self.ctl.values(), *self.report.values()):
            sock.close(linger=0)
