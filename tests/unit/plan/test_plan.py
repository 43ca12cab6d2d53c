"""The plan: transports, which end binds, endpoints, instances and processes."""

from __future__ import annotations

import json
from textwrap import dedent

import pytest

from topo.file.model import DEFAULT_MAX_MESSAGE, Restart, SocketType, Transport
from topo.plan.planner import MAX_IPC_NAME, MAX_RUN_DIR, RUN_DIR, Plan

# -- transports -------------------------------------------------------------------------

TWO_HOSTS = """\
topology: t
hosts:
  local: {address: 127.0.0.1}
  edge: {address: 10.0.0.2, launch: [ssh, edge]}
nodes:
"""


def only_link(plan: Plan):
    assert len(plan.links) == 1
    return plan.links[0]


def test_same_process_is_inproc(plan):
    link = only_link(plan("""\
        topology: weather
        nodes:
          a: {run: m:f, process: p, sockets: {out: PUSH}}
          b: {run: m:f, process: p, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """))
    assert link.transport is Transport.INPROC
    assert link.endpoint == "inproc://weather/a/out"


def test_same_host_different_processes_is_ipc(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """))
    assert link.transport is Transport.IPC
    assert link.endpoint.startswith(f"ipc://{RUN_DIR}/")
    assert link.endpoint.endswith(".sock")


def test_different_hosts_is_tcp_on_the_binding_hosts_address(plan):
    p = plan(TWO_HOSTS + dedent("""\
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, host: edge, sockets: {in: {type: PULL, bind: true}}}
          c: {run: m:f, host: edge, sockets: {out: PUSH}}
          d: {run: m:f, sockets: {in: {type: PULL, bind: true}}}
        links: [a.out -> b.in, c.out -> d.in]
        """))
    to_edge, to_local = p.links
    assert (to_edge.transport, to_edge.endpoint, to_edge.bind) == (Transport.TCP, "tcp://10.0.0.2:*", "b.in")
    assert (to_local.transport, to_local.endpoint, to_local.bind) == (Transport.TCP, "tcp://127.0.0.1:*", "d.in")


def test_tcp_on_an_ipv6_address_is_bracketed(plan):
    link = only_link(plan("""\
        topology: t
        hosts:
          local: {address: "::1"}
          edge: {address: "fd00::2"}
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, host: edge, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """))
    assert link.endpoint == "tcp://[::1]:*"


@pytest.mark.parametrize("process, asked, expected", [
    ("p", "ipc", Transport.IPC),
    ("p", "tcp", Transport.TCP),
    ("p", "inproc", Transport.INPROC),
    (None, "tcp", Transport.TCP),
    (None, "ipc", Transport.IPC),
])
def test_a_wider_transport_asked_for_is_honoured(plan, process, asked, expected):
    placement = f"process: {process}, " if process else ""
    link = only_link(plan(f"""\
        topology: t
        nodes:
          a: {{run: m:f, {placement}sockets: {{out: PUSH}}}}
          b: {{run: m:f, {placement}sockets: {{in: PULL}}}}
        links:
          - {{from: a.out, to: b.in, transport: {asked}}}
        """))
    assert link.transport is expected
    assert link.endpoint.startswith(f"{expected.value}://")


def test_tcp_within_one_host_binds_on_that_hosts_address(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.in, transport: tcp}
        """))
    assert link.endpoint == "tcp://127.0.0.1:*"


# -- which end binds --------------------------------------------------------------------


def test_push_to_three_worker_replicas_the_push_binds(plan):
    p = plan("""\
        topology: t
        nodes:
          vent: {run: m:f, sockets: {tasks: PUSH}}
          worker: {run: m:f, replicas: 3, sockets: {tasks: PULL}}
        links: [vent.tasks -> worker.tasks]
        """)
    assert [ln.bind for ln in p.links] == ["vent.tasks"] * 3
    assert {ln.endpoint for ln in p.links} == {p.links[0].endpoint}
    assert [ln.dst_instance for ln in p.links] == ["worker.0.tasks", "worker.1.tasks", "worker.2.tasks"]


def test_three_push_replicas_to_one_pull_the_pull_binds(plan):
    p = plan("""\
        topology: t
        nodes:
          worker: {run: m:f, replicas: 3, sockets: {results: PUSH}}
          sink: {run: m:f, sockets: {results: PULL}}
        links: [worker.results -> sink.results]
        """)
    assert [ln.bind for ln in p.links] == ["sink.results"] * 3
    assert [ln.bind_instance for ln in p.links] == ["sink.results"] * 3


def test_req_to_rep_tie_the_server_binds(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          client: {run: m:f, sockets: {req: REQ}}
          server: {run: m:f, sockets: {rep: REP}}
        links: [client.req -> server.rep]
        """))
    assert link.bind == "server.rep"


def test_dealer_to_router_tie_the_router_binds(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          client: {run: m:f, sockets: {d: DEALER}}
          server: {run: m:f, sockets: {r: ROUTER}}
        links: [client.d -> server.r]
        """))
    assert link.bind == "server.r"


def test_pub_to_sub_tie_the_upstream_pub_binds(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: PUB}}
          sub: {run: m:f, sockets: {in: SUB}}
        links: [pub.out -> sub.in]
        """))
    assert link.bind == "pub.out"


def test_more_links_beats_being_a_server(plan):
    p = plan("""\
        topology: t
        nodes:
          broker: {run: m:f, sockets: {back: DEALER}}
          worker: {run: m:f, replicas: 2, sockets: {rep: REP}}
        links: [broker.back -> worker.rep]
        """)
    assert {ln.bind for ln in p.links} == {"broker.back"}


def test_bind_false_overrides_the_rule(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: {type: PUB, bind: false}}}
          sub: {run: m:f, sockets: {in: SUB}}
        links: [pub.out -> sub.in]
        """))
    assert link.bind == "sub.in"


def test_bind_true_overrides_the_rule(plan):
    p = plan("""\
        topology: t
        nodes:
          vent: {run: m:f, sockets: {tasks: PUSH}}
          worker: {run: m:f, replicas: 3, sockets: {tasks: {type: PULL, bind: true}}}
        links: [vent.tasks -> worker.tasks]
        """)
    assert [ln.bind_instance for ln in p.links] == ["worker.0.tasks", "worker.1.tasks", "worker.2.tasks"]
    assert len({ln.endpoint for ln in p.links}) == 3


def test_bind_false_on_the_receiving_end_makes_the_sender_bind(plan):
    link = only_link(plan("""\
        topology: t
        nodes:
          worker: {run: m:f, replicas: 1, sockets: {out: PUSH}}
          sink: {run: m:f, sockets: {in: {type: PULL, bind: false}}}
        links: [worker.out -> sink.in]
        """))
    assert link.bind == "worker.out"


def test_sockets_know_what_they_bind_connect_and_who_their_peers_are(plan):
    p = plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: PUB}}
          sub: {run: m:f, replicas: 2, sockets: {in: {type: SUB, subscribe: [x]}}}
        links: [pub.out -> sub.in]
        """)
    out = p.instances["pub"].sockets[0]
    assert len(out.binds) == 1 and out.connects == ()
    assert [(peer.instance, peer.subscribe, peer.binds) for peer in out.peers] == [
        ("sub.0", ("x",), False), ("sub.1", ("x",), False)]
    for name in ("sub.0", "sub.1"):
        sock = p.instances[name].sockets[0]
        assert sock.binds == () and sock.connects == out.binds
        assert [(peer.instance, peer.type, peer.binds) for peer in sock.peers] == [("pub", SocketType.PUB, True)]
    assert p.endpoints[out.binds[0]].address == p.links[0].endpoint


# -- instances and processes ------------------------------------------------------------


def test_replicas_are_expanded_each_in_a_process_of_its_own(plan):
    p = plan("""\
        topology: t
        nodes:
          worker: {run: m:work, replicas: 2, args: {n: 1}, restart: always}
        """)
    assert list(p.instances) == ["worker.0", "worker.1"]
    assert [(i.node, i.replica, i.process, i.run, dict(i.args), i.restart) for i in p.instances.values()] == [
        ("worker", 0, "worker.0", "m:work", {"n": 1}, Restart.ALWAYS),
        ("worker", 1, "worker.1", "m:work", {"n": 1}, Restart.ALWAYS),
    ]
    assert sorted(proc.name for proc in p.processes) == ["worker.0", "worker.1"]


def test_replicas_that_name_a_process_share_it(plan):
    p = plan("""\
        topology: t
        nodes:
          worker: {run: m:f, replicas: 3, process: pool, env: {A: x}}
        """)
    assert [i.process for i in p.instances.values()] == ["pool"] * 3
    assert [(proc.name, proc.instances, dict(proc.env)) for proc in p.processes] == [
        ("pool", ("worker.0", "worker.1", "worker.2"), {"A": "x"})]


def test_single_instance_keeps_the_node_name(plan):
    p = plan("topology: t\nnodes: {a: {run: m:f, replicas: 1}}\n")
    assert list(p.instances) == ["a"] and p.instances["a"].replica == 0


def test_replicas_of_one_node_in_separate_processes_talk_ipc(plan):
    p = plan("""\
        topology: t
        nodes:
          vent: {run: m:f, process: main, sockets: {tasks: PUSH}}
          worker: {run: m:f, replicas: 2, sockets: {tasks: PULL}}
          local: {run: m:f, process: main, sockets: {tasks: PULL}}
        links: [vent.tasks -> worker.tasks, vent.tasks -> local.tasks]
        """)
    assert [ln.transport for ln in p.links] == [Transport.IPC, Transport.IPC, Transport.INPROC]
    vent = p.instances["vent"].sockets[0]
    assert len(vent.binds) == 2  # one ipc and one inproc endpoint


def test_process_order_puts_receivers_first(plan):
    p = plan("""\
        topology: t
        nodes:
          source: {run: m:f, sockets: {out: PUSH, news: PUB}}
          middle: {run: m:f, sockets: {in: PULL, out: PUSH}}
          sink: {run: m:f, sockets: {in: PULL}}
          reader: {run: m:f, sockets: {news: SUB}}
          server: {run: m:f, sockets: {rep: REP}}
          client: {run: m:f, sockets: {req: REQ}}
        links:
          - source.out -> middle.in
          - middle.out -> sink.in
          - source.news -> reader.news
          - client.req -> server.rep
        """)
    order = [proc.name for proc in p.processes]
    assert order == ["middle", "sink", "reader", "server", "source", "client"]


def test_hosts_are_in_the_plan(plan):
    p = plan(TWO_HOSTS + "  a: {run: m:f}\n")
    assert [(h.name, h.address, h.launch) for h in p.hosts] == [
        ("local", "127.0.0.1", None), ("edge", "10.0.0.2", ("ssh", "edge"))]


# -- endpoints --------------------------------------------------------------------------


def test_run_directory_and_ipc_name_fit_a_unix_socket_path():
    assert len(RUN_DIR) <= MAX_RUN_DIR
    assert len("ipc://") + MAX_RUN_DIR + 1 + MAX_IPC_NAME - len("ipc://") <= 107


def test_very_long_names_give_short_unique_ipc_files(plan):
    long_node = "n" * 199  # + its digit: the longest name allowed
    long_sock = "s" * 199  # + its "x"
    nodes = "\n".join(
        f"  {long_node}{i}: {{run: m:f, sockets: {{{long_sock}: {{type: PULL, bind: true}}, {long_sock}x: {{type: PULL, bind: true}}}}}}"
        for i in range(3))
    links = "\n".join(
        f"  - src.out -> {long_node}{i}.{long_sock}{x}" for i in range(3) for x in ("", "x"))
    p = plan(f"topology: t\nnodes:\n  src: {{run: m:f, sockets: {{out: PUSH}}}}\n{nodes}\nlinks:\n{links}\n")
    assert all(ln.bind != "src.out" for ln in p.links)
    names = [ln.endpoint.removeprefix(f"ipc://{RUN_DIR}/") for ln in p.links]
    assert all(ln.endpoint.startswith(f"ipc://{RUN_DIR}/") for ln in p.links)
    assert all("/" not in name and len(name.encode()) <= MAX_IPC_NAME for name in names)
    assert len(set(names)) == len(names) == 6


def test_ipc_names_are_unique_for_names_that_differ_only_at_the_end(plan):
    prefix = "w" * 60
    p = plan(f"""\
        topology: t
        nodes:
          src: {{run: m:f, sockets: {{out: PUSH}}}}
          {prefix}a: {{run: m:f, replicas: 3, sockets: {{in: {{type: PULL, bind: true}}}}}}
          {prefix}b: {{run: m:f, replicas: 3, sockets: {{in: {{type: PULL, bind: true}}}}}}
        links: [src.out -> {prefix}a.in, src.out -> {prefix}b.in]
        """)
    endpoints = [ln.endpoint for ln in p.links]
    assert len(set(endpoints)) == 6
    assert all(len(e.rsplit("/", 1)[1].encode()) <= MAX_IPC_NAME for e in endpoints)


def test_inproc_names_are_unique(plan):
    p = plan("""\
        topology: t
        nodes:
          a: {run: m:f, process: p, replicas: 2, sockets: {x: {type: PULL, bind: true}, y: {type: PULL, bind: true}}}
          b: {run: m:f, process: p, sockets: {x: PUSH, y: PUSH}}
        links: [b.x -> a.x, b.y -> a.y]
        """)
    endpoints = [ln.endpoint for ln in p.links]
    assert all(e.startswith("inproc://t/") for e in endpoints)
    assert len(set(endpoints)) == len(endpoints) == 4


def test_same_binding_socket_reuses_one_endpoint_per_transport(plan):
    p = plan("""\
        topology: t
        nodes:
          sink: {run: m:f, sockets: {in: PULL}}
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {out: PUSH}}
        links: [a.out -> sink.in, b.out -> sink.in]
        """)
    assert [ln.bind for ln in p.links] == ["sink.in", "sink.in"]
    assert p.links[0].endpoint == p.links[1].endpoint
    assert len(p.instances["sink"].sockets[0].binds) == 1


# -- to_json ----------------------------------------------------------------------------


def test_to_json_has_links_as_the_spec_says_and_serialises(plan):
    p = plan(TWO_HOSTS + dedent("""\
          pub: {run: m:f, sockets: {out: PUB}}
          sub: {run: m:f, replicas: 2, host: edge, sockets: {in: {type: SUB, subscribe: [""]}}}
          a: {run: m:f, process: p, sockets: {out: PUSH}}
          b: {run: m:f, process: p, sockets: {in: PULL}}
          c: {run: m:f, sockets: {out: PUSH}}
        links:
          - pub.out -> sub.in
          - a.out -> b.in
          - c.out -> b.in
        """))
    data = json.loads(json.dumps(p.to_json()))
    assert data["topology"] == "t"
    links = data["links"]
    assert [(ln["from"], ln["to"], ln["transport"], ln["bind"]) for ln in links] == [
        ("pub.out", "sub.in", "tcp", "pub.out"),
        ("pub.out", "sub.in", "tcp", "pub.out"),
        ("a.out", "b.in", "inproc", "b.in"),
        ("c.out", "b.in", "ipc", "b.in"),
    ]
    for ln in links:
        assert ln["endpoint"].startswith(ln["transport"] + "://")
        assert ln["bind"] in (ln["from"], ln["to"])
    assert [ln["to_instance"] for ln in links[:2]] == ["sub.0.in", "sub.1.in"]
    assert {n["name"] for n in data["nodes"]} == {"pub", "sub.0", "sub.1", "a", "b", "c"}
    assert {proc["name"]: proc["host"] for proc in data["processes"]} == {
        "pub": "local", "sub.0": "edge", "sub.1": "edge", "p": "local", "c": "local"}


# -- across hosts ------------------------------------------------------------------------

def test_links_between_hosts_are_secure_and_others_are_not(plan):
    p = plan(TWO_HOSTS + """\
  vent: {run: m:f, sockets: {out: PUSH}}
  far: {run: m:f, host: edge, sockets: {in: PULL, out: PUSH}}
  near: {run: m:f, sockets: {in: PULL}}
links:
  - vent.out -> far.in
  - far.out -> near.in
  - vent.out -> near.in
""")
    secure = {(ln.src_instance, ln.dst_instance): ln.secure for ln in p.links}
    assert secure == {("vent.out", "far.in"): True, ("far.out", "near.in"): True, ("vent.out", "near.in"): False}
    by_key = {e.key: e for e in p.endpoints.values()}
    tcp = [e for e in by_key.values() if e.transport is Transport.TCP]
    assert tcp and all(e.secure for e in tcp)
    assert all(not e.secure for e in by_key.values() if e.transport is not Transport.TCP)
    # a dialer finds the binding host (whose public key it needs) on the endpoint itself
    assert {e.host for e in tcp} <= {"local", "edge"}
    assert json.loads(json.dumps(p.to_json()))["links"][0]["secure"] in (True, False)


ONE_HOST_TCP = """\
topology: t
nodes:
  a: {run: m:f, sockets: {out: PUSH}}
  b: {run: m:f, sockets: {in: PULL}}
links:
  - {from: a.out, to: b.in, transport: tcp}
"""


def test_a_tcp_link_on_one_host_is_secure_too(plan):
    # 127.0.0.1 is open to every user of the machine: CURVE on every tcp link by default
    p = plan(ONE_HOST_TCP)
    assert only_link(p).transport is Transport.TCP and only_link(p).secure
    (endpoint,) = p.endpoints.values()
    assert endpoint.secure and endpoint.max_message == DEFAULT_MAX_MESSAGE
    assert p.key_hosts == ("local",)


def test_curve_false_on_the_link_or_the_file_makes_it_plain(plan):
    for text in (ONE_HOST_TCP.replace("transport: tcp}", "transport: tcp, curve: false}"),
                 ONE_HOST_TCP + "security: {curve: false}\n"):
        p = plan(text)
        assert only_link(p).transport is Transport.TCP and not only_link(p).secure
        assert not any(e.secure for e in p.endpoints.values()) and p.key_hosts == ()
    # the link's word wins over the file's
    p = plan(ONE_HOST_TCP.replace("transport: tcp}", "transport: tcp, curve: true}")
             + "security: {curve: false, max_message: 4096}\n")
    assert only_link(p).secure and next(iter(p.endpoints.values())).max_message == 4096


def test_curve_false_across_hosts_is_plain_and_an_endpoint_any_link_wants_curve_is_curve(plan):
    p = plan(TWO_HOSTS + """\
  vent: {run: m:f, sockets: {out: PUSH}}
  far: {run: m:f, host: edge, sockets: {in: PULL}}
  near: {run: m:f, sockets: {in: PULL}}
links:
  - {from: vent.out, to: far.in, curve: false}
  - {from: vent.out, to: near.in, transport: tcp}
""")
    # vent.out binds one tcp endpoint for both links; the second wants CURVE, so both get it
    assert [ln.secure for ln in p.links] == [True, True]
    p = plan(TWO_HOSTS + """\
  vent: {run: m:f, sockets: {out: PUSH}}
  far: {run: m:f, host: edge, sockets: {in: PULL}}
links:
  - {from: vent.out, to: far.in, curve: false}
""")
    assert [ln.secure for ln in p.links] == [False]
    assert p.key_hosts == ("edge", "local")  # the agent's channel is CURVE all the same


def test_for_host_holds_that_hosts_processes_and_what_they_reference(plan):
    p = plan(TWO_HOSTS + """\
  vent: {run: m:f, sockets: {out: PUSH}}
  far: {run: m:f, host: edge, replicas: 2, sockets: {in: PULL}}
links: [vent.out -> far.in]
""")
    assert [h.name for h in p.remote_hosts] == ["edge"]
    share = p.for_host("edge")
    assert [proc.name for proc in share.processes] == ["far.0", "far.1"]
    assert set(share.instances) == {"far.0", "far.1"}
    assert [h.name for h in share.hosts] == ["edge"]
    assert {e.key for e in share.endpoints.values()} == {
        k for i in share.instances.values() for s in i.sockets for k in (*s.binds, *s.connects)}
    from topo.plan.planner import share_of

    child = share_of(share, "far.1")
    assert list(child.instances) == ["far.1"] and child.host == "edge"
    assert child.instances["far.1"].sockets[0].type == "PULL"  # plain strings, not enums
    assert set(child.endpoints) == set(share.instances["far.1"].sockets[0].connects)


def test_a_single_host_plan_has_no_remote_hosts(plan):
    p = plan("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert p.remote_hosts == ()
