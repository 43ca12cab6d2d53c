"""The supervisor's pure parts for exec nodes: when a program may start, the addresses
it is handed, a port picked for it."""

from __future__ import annotations

import socket

from topo.supervisor.execspawn import addresses, pick_port
from topo.supervisor.execstarts import ExecStarts
from topo.supervisor.runstate import NodeState, ProcState

PIPELINE = """\
    topology: t
    nodes:
      vent: {run: m:f, sockets: {out: PUSH}}
      work: {exec: [./w], sockets: {in: PULL, out: PUSH}}
      sink: {run: m:f, sockets: {in: PULL}}
    links: [vent.out -> work.in, work.out -> sink.in]
    """


def _nodes(**states: str) -> dict[str, NodeState]:
    return {name: NodeState(name, name, state=state) for name, state in states.items()}


def test_a_program_starts_once_what_it_sends_to_is_ready_and_its_peers_bound(plan):
    p = plan(PIPELINE)
    starts = ExecStarts(p)
    work = ProcState("work", ("work",))
    assert starts.is_program(work) and not starts.is_program(ProcState("sink", ("sink",)))
    needs = {k for s in p.instances["work"].sockets for k in s.connects}
    assert needs  # it connects to the vent, which binds (the usual rules: the upstream end)
    assert starts.waiting_for(work, _nodes(vent="starting", work="starting", sink="bound")) == ["sink"]
    assert not starts.due(work, _nodes(vent="starting", work="starting", sink="running"), set(), needs)
    assert starts.due(work, _nodes(vent="starting", work="starting", sink="running"), needs, needs)
    # a receiver that ended for good holds nothing up
    assert starts.due(work, _nodes(vent="bound", work="starting", sink="failed"), needs, needs)


def test_the_addresses_a_program_is_handed(plan):
    p = plan(PIPELINE)
    (vent_key,) = p.instances["work"].sockets[0].connects
    (sink_key,) = p.instances["work"].sockets[1].connects
    got = addresses(p, "work", "/run/x", {vent_key: "ipc:///run/x/a.sock", sink_key: "ipc:///run/x/b.sock"})
    assert got == {vent_key: "ipc:///run/x/a.sock", sink_key: "ipc:///run/x/b.sock"}


def test_a_tcp_star_a_program_binds_gets_a_port_and_keeps_it_across_a_restart(plan):
    p = plan("""\
        topology: t
        hosts: {local: {address: 127.0.0.1}}
        nodes:
          a: {exec: [./a], sockets: {out: PUSH}}
          b: {exec: [./b], sockets: {in: PULL}}
        links: [{from: a.out, to: b.in, transport: tcp, curve: false}]
        """)
    (key,) = p.instances["b"].sockets[0].binds
    first = addresses(p, "b", "/run/x", {})[key]
    assert first.startswith("tcp://127.0.0.1:") and not first.endswith(":*")
    assert addresses(p, "b", "/run/x", {key: first})[key] == first


def test_a_picked_port_is_free_to_bind():
    address = pick_port("tcp://127.0.0.1:*")
    port = int(address.rpartition(":")[2])
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if it were taken
