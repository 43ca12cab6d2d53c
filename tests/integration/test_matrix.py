"""Every shape of link wires up: binder and dialer placement x socket pattern, in one file.

The placements: the same process (inproc), two processes here (ipc), two processes on one
remote host (ipc in its agent's directory), two remote hosts (tcp+CURVE), and here to a
remote host either way (tcp+CURVE). Each pattern but PAIR has one hub per binding process,
linked to a dialer in every placement: so one socket serves CURVE and plain ipc (and
inproc) side by side, as a sink with remote and local workers does. Its cross-host links
come first in the file, so the CURVE bind comes before the plain ones. One more pusher
makes the remote PULL hub dial plain ipc too. Each pair makes one exchange; the run must
end by itself with exit 0.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from typing import Any, Iterator

import pytest
import yaml

from conftest import Topo
from hostnet import Network, host_network, hosts_emptied, requires_netns

pytestmark = [requires_netns, pytest.mark.slow]

#: process -> host
PROCESSES = {"loc_hub": "local", "loc_peer": "local", "h1_hub": "h1", "h1_peer": "h1", "h2_peer": "h2"}
#: placement -> (binding process, dialing process, transport); cross-host ones first
PLACEMENTS = {
    "hosts": ("h1_hub", "h2_peer", "tcp"),
    "from_local": ("h1_hub", "loc_peer", "tcp"),
    "to_local": ("loc_hub", "h1_peer", "tcp"),
    "remote": ("h1_hub", "h1_peer", "ipc"),
    "local": ("loc_hub", "loc_peer", "ipc"),
    "proc_h1": ("h1_hub", "h1_hub", "inproc"),
    "proc_local": ("loc_hub", "loc_hub", "inproc"),
}
#: pattern -> (hub's type, hub's code, dialer's type, dialer's code, hub sends)
PATTERNS = {
    "pushpull": ("PULL", "hub_pull", "PUSH", "push_one", False),
    "pubsub": ("PUB", "hub_pub", {"type": "SUB", "subscribe": ["m"]}, "sub_one", True),
    "reqrep": ("REP", "hub_rep", "REQ", "ask_one", False),
    "dealerrouter": ("ROUTER", "hub_router", "DEALER", "ask_one", False),
}


def matrix(net: Network) -> tuple[dict[str, Any], dict[str, str]]:
    """The topology, and each link's expected transport (``FROM -> TO``)."""
    hosts: dict[str, Any] = {"local": {"address": net.local_address}}
    for i, host in enumerate(net.hosts, 1):
        hosts[f"h{i}"] = {"address": host.address, "launch": host.launch(), "python": sys.executable}
    nodes: dict[str, Any] = {}
    links: list[str] = []
    expected: dict[str, str] = {}

    def node(name: str, process: str, code: str, sock: Any, **args: Any) -> None:
        nodes[name] = {"run": f"matrixnodes:{code}", "process": process, "host": PROCESSES[process],
                       "sockets": {"s": sock}, **({"args": args} if args else {})}

    def link(src: str, dst: str, transport: str) -> None:
        links.append(f"{src}.s -> {dst}.s")
        expected[f"{src}.s -> {dst}.s"] = transport

    peers: dict[str, int] = defaultdict(int)
    for pattern, (hub_type, hub_code, dialer_type, dialer_code, hub_sends) in PATTERNS.items():
        for placement, (binder, dialer, transport) in PLACEMENTS.items():
            hub, peer = f"{pattern}_hub_{binder}", f"{pattern}_{placement}"
            node(peer, dialer, dialer_code, dialer_type)
            link(*((hub, peer) if hub_sends else (peer, hub)), transport)
            peers[hub] += 1
        for binder in ("h1_hub", "loc_hub"):
            hub = f"{pattern}_hub_{binder}"
            node(hub, binder, hub_code, hub_type, peers=peers[hub])
    # a PUSH that binds: the remote PULL hub, a CURVE server, dials it over plain ipc
    node("pushpull_mixed", "h1_peer", "push_one", {"type": "PUSH", "bind": True})
    link("pushpull_mixed", "pushpull_hub_h1_hub", "ipc")
    nodes["pushpull_hub_h1_hub"]["args"]["peers"] += 1
    # PAIR has one link per socket: a pair per placement
    for placement, (binder, dialer, transport) in PLACEMENTS.items():
        node(f"pair_{placement}_ping", binder, "pair_ping", "PAIR")
        node(f"pair_{placement}_pong", dialer, "pair_pong", "PAIR")
        link(f"pair_{placement}_ping", f"pair_{placement}_pong", transport)
    return {"topology": "matrix", "hosts": hosts, "nodes": nodes, "links": links}, expected


@pytest.fixture
def net2() -> Iterator[Network]:
    with host_network(2) as net:
        yield net


def test_every_placement_and_pattern_wires_up_in_one_run(topo: Topo, net2: Network) -> None:
    source, expected = matrix(net2)
    path = topo.file(yaml.safe_dump(source, sort_keys=False))
    plan = json.loads(topo.run("plan", path, "--json").out)
    got = {f"{ln['from']} -> {ln['to']}": ln["transport"] for ln in plan["links"]}
    assert got == expected
    binds = {(ln["from"] if ln["bind"] == ln["from"] else ln["to"]) for ln in plan["links"]}
    assert "pushpull_hub_h1_hub.s" in binds and "pushpull_mixed.s" in binds

    result = topo.run("up", path, "--ready-timeout", "10", timeout=60)
    out = result.out
    assert result.code == 0, out + result.err
    assert f"all {len(source['nodes'])} node(s) ready" in out, out
    assert "stopped: every node returned" in out, out
    for pattern, (_, _, _, dialer_code, hub_sends) in PATTERNS.items():
        for binder in ("h1_hub", "loc_hub"):
            if not hub_sends:
                hub = f"{pattern}_hub_{binder}"
                heard = re.search(rf"^{hub}@\S+ +\| heard (.*)$", out, re.M)
                want = sorted(f"{pattern}_{p}" for p, (b, _, _) in PLACEMENTS.items() if b == binder)
                if hub == "pushpull_hub_h1_hub":
                    want = sorted([*want, "pushpull_mixed"])
                assert heard and heard.group(1).split() == want, out
        for placement in PLACEMENTS:
            word = "got m from" if hub_sends else "answered" if dialer_code == "ask_one" else None
            if word:
                assert re.search(rf"^{pattern}_{placement}@\S+ +\| {word}", out, re.M), out
    for placement in PLACEMENTS:
        assert re.search(rf"^pair_{placement}_ping@\S+ +\| pong to pair_{placement}_ping$", out, re.M), out
    assert topo.socket_files() == [] and topo.run_dirs() == []
    hosts_emptied(net2, 10)
