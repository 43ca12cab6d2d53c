"""Exec nodes in the plan: which end of their links binds, and which links a gate waits for."""

from __future__ import annotations

from topo.plan.planner import share_of


def _binder(p, link_from: str) -> str:
    (ln,) = [ln for ln in p.links if ln.src_instance == link_from]
    return ln.bind_instance


def test_the_receiver_binds_when_the_sender_is_an_exec_node(plan):
    p = plan("""\
        topology: t
        nodes:
          src: {exec: [./src], sockets: {out: PUB}}
          a: {run: m:f, sockets: {in: {type: SUB, subscribe: [""]}}}
          b: {run: m:f, sockets: {in: {type: SUB, subscribe: [""]}}}
        links: [src.out -> a.in, src.out -> b.in]
        """)
    # without the rule, the PUB with two links would bind
    assert {ln.bind_instance for ln in p.links} == {"a.in", "b.in"}
    assert p.instances["src"].sockets[0].binds == () and len(p.instances["src"].sockets[0].connects) == 2


def test_an_explicit_bind_wins_over_the_exec_rule(plan):
    p = plan("""\
        topology: t
        nodes:
          src: {exec: [./src], sockets: {out: {type: PUSH, bind: true}}}
          sink: {run: m:f, sockets: {in: PULL}}
        links: [src.out -> sink.in]
        """)
    assert _binder(p, "src.out") == "src.out"


def test_an_exec_receiver_of_a_python_sender_follows_the_usual_rules(plan):
    p = plan("""\
        topology: t
        nodes:
          feed: {run: m:f, sockets: {out: PUSH}}
          work: {exec: [./w], replicas: 2, sockets: {in: PULL}}
        links: [feed.out -> work.in]
        """)
    assert {ln.bind_instance for ln in p.links} == {"feed.out"}  # the end with more links


def test_over_tcp_the_python_end_binds_and_between_exec_nodes_the_receiver(plan):
    p = plan("""\
        topology: t
        hosts: {local: {address: 127.0.0.1}, far: {address: 10.0.0.2}}
        nodes:
          srv: {exec: [./srv], sockets: {rep: REP}}
          cli: {run: m:f, host: far, sockets: {req: REQ}}
          x: {exec: [./x], sockets: {out: PUSH}}
          y: {exec: [./y], host: far, sockets: {in: PULL}}
        links:
          - {from: cli.req, to: srv.rep, curve: false}
          - {from: x.out, to: y.in, curve: false}
        """)
    assert _binder(p, "cli.req") == "cli.req"  # not the REP server: it is an exec node
    assert _binder(p, "x.out") == "y.in"
    assert p.endpoints["y.in/tcp"].address == "tcp://10.0.0.2:*"


def test_a_python_gate_does_not_wait_for_an_exec_node_that_waits_for_it(plan):
    p = plan("""\
        topology: t
        nodes:
          hub: {run: m:f, sockets: {jobs: PUSH, results: PULL}}
          work: {exec: [./w], sockets: {in: PULL, out: PUSH}}
        links: [hub.jobs -> work.in, work.out -> hub.results]
        """)
    hub = share_of(p, "hub").instances["hub"]
    peers = {s.name: s.peers for s in hub.sockets}
    # work sends to hub (so it starts once hub is ready): no link of hub waits for it,
    # not even the one on which hub sends (a gate there would never open)
    assert [q.wait for q in peers["results"]] == [False]
    assert [q.wait for q in peers["jobs"]] == [False]


def test_a_python_sender_keeps_its_gate_toward_an_exec_receiver(plan):
    p = plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: PUB}}
          sub: {exec: [./s], sockets: {in: {type: SUB, subscribe: [""]}}}
        links: [pub.out -> sub.in]
        """)
    (sock,) = share_of(p, "pub").instances["pub"].sockets
    assert [q.wait for q in sock.peers] == [True]


def test_a_changed_exec_command_or_ready_restarts_the_program(plan):
    from topo.plan.diff import diff
    from topo.plan.facts import checked, facts_of

    text = """\
        topology: t
        nodes:
          prog: {exec: [./a, "1"], sockets: {out: PUSH}}
          sink: {run: m:f, sockets: {in: PULL}}
        links: [prog.out -> sink.in]
        """
    old = checked(facts_of(plan(text)))
    d = diff(old, facts_of(plan(text.replace('"1"', '"2"'))), link_restarts=True)
    assert [(p.kind, p.name) for p in d.processes] == [("↻", "prog")]
    assert [c.what for c in d.changed[0].changes] == ["exec"]
    d = diff(old, facts_of(plan(text.replace("./a, \"1\"]", "./a, \"1\"], ready: notify"))), link_restarts=True)
    assert [c.what for c in d.changed[0].changes] == ["ready"]
