"""Exec nodes in the plan: shown, drawn, and the environment and start order computed."""

from __future__ import annotations

import json

from topo.plan.execenv import Wiring, exec_env, expand_args, instance_waits, wiring
from topo.plan.graph import to_dot, to_mermaid
from topo.plan.planner import share_of
from topo.plan.planview import plan_table

PIPELINE = """\
    topology: t
    nodes:
      src: {exec: [./src, "--out={sockets.out}"], ready: notify, sockets: {out: PUSH}}
      work:
        exec: [./work]
        replicas: 2
        sockets:
          in: PULL
          out-r: {type: PUSH, external: {connect: tcp://10.0.0.1:5000}}
      sink: {run: m:f, sockets: {in: PULL}}
    links:
      - src.out -> work.in
      - work.out-r -> sink.in
    """


def test_the_plan_carries_exec_and_ready(plan):
    p = plan(PIPELINE)
    assert p.instances["src"].exec == ("./src", "--out={sockets.out}") and p.instances["src"].ready == "notify"
    assert p.instances["work.0"].ready == "started" and p.instances["sink"].exec == ()
    nodes = {n["name"]: n for n in p.to_json()["nodes"]}
    assert nodes["src"]["exec"] == ["./src", "--out={sockets.out}"] and nodes["src"]["ready"] == "notify"
    assert "exec" not in nodes["sink"]


def test_plan_table_and_graphs_mark_exec_nodes(plan):
    p = plan(PIPELINE)
    table = plan_table(p)
    assert "exec: ./src '--out={sockets.out}' (ready: notify)" in table
    assert "exec: ./work\n" in table
    assert 'n_src[["src"]]' in to_mermaid(p) and 'n_sink("sink")' in to_mermaid(p)
    assert 'n_src [label="src", shape=component' in to_dot(p)


def _addresses(p) -> dict[str, str]:
    return {k: e.address.replace("{run_dir}", "/run/t").replace(":*", ":7000") for k, e in p.endpoints.items()}


def test_the_environment_of_an_exec_instance(plan):
    p = plan(PIPELINE)
    inst = share_of(p, "work.1").instances["work.1"]
    env = exec_env("t", inst, _addresses(p))
    sockets = json.loads(env["TOPO_SOCKETS"])
    bind = sockets["in"]["bind"]  # its sender is an exec node: the receiver binds
    assert len(bind) == 1 and bind[0].startswith("ipc:///run/t/")
    assert sockets == {
        "in": {"type": "PULL", "bind": bind, "connect": []},
        "out-r": {"type": "PUSH", "bind": [], "connect": [sockets["out-r"]["connect"][0], "tcp://10.0.0.1:5000"]},
    }
    assert env["TOPO_SOCKET_IN_TYPE"] == "PULL" and env["TOPO_SOCKET_IN_CONNECT"] == ""
    assert env["TOPO_SOCKET_IN_BIND"] == bind[0]
    assert env["TOPO_SOCKET_OUT_R_CONNECT"] == " ".join(sockets["out-r"]["connect"])
    assert (env["TOPO_TOPOLOGY"], env["TOPO_NODE"], env["TOPO_INSTANCE"], env["TOPO_REPLICA"],
            env["TOPO_REPLICAS"]) == ("t", "work", "work.1", "1", "2")


def test_placeholders_expand_to_endpoints_joined_by_commas():
    sockets = {"out": Wiring("PUSH", ("tcp://a:1",), ("ipc:///x", "ipc:///y"))}
    assert expand_args(["--out={sockets.out}", "{sockets.out.bind}", "{sockets.out.connect}",
                        "{sockets.out.type}", "{other}"], sockets) == [
        "--out=tcp://a:1,ipc:///x,ipc:///y", "tcp://a:1", "ipc:///x,ipc:///y", "PUSH", "{other}"]


def test_placeholders_expand_from_the_plan(plan):
    p = plan(PIPELINE)
    inst = share_of(p, "src").instances["src"]
    (arg,) = expand_args(p.instances["src"].exec[1:], wiring(inst, _addresses(p)))
    assert arg.startswith("--out=ipc:///run/t/") and arg.count(",") == 1  # it connects to both workers


def test_exec_instances_wait_for_the_instances_they_send_to(plan):
    waits = instance_waits(plan(PIPELINE))
    assert waits == {"src": frozenset({"work.0", "work.1"}), "work.0": frozenset({"sink"}),
                     "work.1": frozenset({"sink"})}


def test_a_cycle_of_exec_nodes_is_broken_at_the_first(plan):
    waits = instance_waits(plan("""\
        topology: t
        nodes:
          a: {exec: [./a], sockets: {out: PUSH, in: PULL}}
          b: {exec: [./b], sockets: {out: PUSH, in: PULL}}
        links: [a.out -> b.in, b.out -> a.in]
        """))
    assert waits == {"a": frozenset(), "b": frozenset({"a"})}


def test_a_subs_topics_and_a_sockets_options_are_in_topo_sockets(plan):
    p = plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: PUB}}
          sub:
            exec: [./sub]
            sockets: {in: {type: SUB, subscribe: [a, b], options: {rcvhwm: 10}}}
        links: [pub.out -> sub.in]
        """)
    env = exec_env("t", share_of(p, "sub").instances["sub"], _addresses(p))
    (sock,) = json.loads(env["TOPO_SOCKETS"]).values()
    assert sock["subscribe"] == ["a", "b"] and sock["options"] == {"rcvhwm": 10}
    assert set(json.loads(exec_env("t", share_of(p, "pub").instances["pub"], _addresses(p))["TOPO_SOCKETS"])["out"]) \
        == {"type", "bind", "connect"}
