"""An agent handed its host's new share (topo apply), and the run's keys grown for a new
host: what an agent takes from the message, and what it leaves as it was."""

from __future__ import annotations

from typing import Callable

import zmq.utils.z85

from topo.hosts.agent_config import AgentConfig
from topo.hosts.replan import share_message, take
from topo.plan.planner import Plan
from topo.process.control import Kind, Message
from topo.process.curve import HostKeys, make_keys, with_hosts

FILE = """\
topology: far
hosts:
  local: {address: 10.0.0.1}
  h1: {address: 10.0.0.2, launch: [ssh, a]}
nodes:
  feed: {run: m:feed, sockets: {out: PUSH}}
  worker: {run: m:work, host: h1, replicas: REPLICAS, sockets: {in: PULL}}
links: [feed.out -> worker.in]
"""


def config(plan: Plan, keys: dict[str, HostKeys] | None = None) -> AgentConfig:
    keys = keys or make_keys(plan.key_hosts)
    return AgentConfig(plan.topology, "run", "h1", plan.for_host("h1"), "tcp://10.0.0.1:5", "local", keys["h1"], 1.0)


def test_an_agent_takes_its_new_share_and_keys_through_the_channel(plan: Callable[[str], Plan]) -> None:
    old, new = plan(FILE.replace("REPLICAS", "2")), plan(FILE.replace("REPLICAS", "3"))
    made = make_keys(old.key_hosts)
    cfg = config(old, made)
    keys = with_hosts(made, ["local", "h1", "h2"])["h1"]
    message = Message.decode(share_message(new.for_host("h1"), keys).encode())  # checked as off the wire
    assert message.kind is Kind.PLAN
    taken = take(cfg, message)
    assert [p.name for p in taken.plan.processes] == ["worker.0", "worker.1", "worker.2"]
    assert set(taken.keys.peers) == {"local", "h1", "h2"} and taken.keys.secret == cfg.keys.secret
    assert taken.control == cfg.control and taken.run_id == cfg.run_id


def test_a_share_for_another_host_or_a_broken_one_changes_nothing(plan: Callable[[str], Plan]) -> None:
    cfg = config(plan(FILE.replace("REPLICAS", "2")))
    other = make_keys(["h9"])["h9"]
    assert take(cfg, share_message(cfg.plan, other)) is cfg
    assert take(cfg, Message(Kind.PLAN, {"share": "not base64 at all!"})) is cfg
    assert take(cfg, Message(Kind.PLAN, {"share": "aGVsbG8="})) is cfg


def test_keys_grown_for_a_new_host_keep_the_pairs_made() -> None:
    keys = make_keys(["local", "h1"])
    grown = with_hosts(keys, ["local", "h1", "h2"])
    assert {n: (k.public, k.secret) for n, k in grown.items() if n != "h2"} == \
           {n: (k.public, k.secret) for n, k in keys.items()}
    assert all(set(k.peers) == {"local", "h1", "h2"} for k in grown.values())
    assert grown["local"].admits(zmq.utils.z85.decode(grown["h2"].public)) == "h2"
    assert with_hosts(None, ["local"])["local"].peers.keys() == {"local"}
