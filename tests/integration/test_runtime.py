"""What the runtime guarantees, through the test harness (the project's own dogfood):
first messages, fair fan-out, every transport, async nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from topo.plan.planner import make_plan
from topo.testing import up
from topo.file.validate import load

PUBSUB_SLOW = """
topology: slowsubs
nodes:
  pub:
    run: itnodes:publish_once
    sockets: {out: PUB}
  fast:
    run: itnodes:receive_one
    sockets: {in: {type: SUB, subscribe: ["t"]}}
  slow:
    run: slowmod:receive_one
    replicas: 2
    sockets: {in: {type: SUB, subscribe: [""]}}
links:
  - pub.out -> fast.in
  - pub.out -> slow.in
"""


@pytest.mark.slow
def test_slow_subscribers_get_the_very_first_message_every_time() -> None:
    """Subscribers that take a second to import; the publisher sends one message, once."""
    data = yaml.safe_load(PUBSUB_SLOW)
    for attempt in range(5):
        with up(data) as run:
            for name in ("fast", "slow.0", "slow.1"):
                assert run.wait_for(name).returned, (attempt, name, run.output())
                assert run.output(name) == ["got pub"], (attempt, name, run.output())


FANOUT = """
topology: fanout
nodes:
  vent:
    run: itnodes:vent
    args: {tasks: 400}
    sockets: {out: PUSH}
  worker:
    run: itnodes:work
    replicas: 4
    sockets: {in: PULL, out: PUSH}
  sink:
    run: itnodes:collect
    args: {tasks: 400}
    sockets: {in: PULL}
links:
  - vent.out -> worker.in
  - worker.out -> sink.in
"""


def test_push_fans_out_fairly_over_four_worker_processes() -> None:
    with up(yaml.safe_load(FANOUT)) as run:
        assert run.wait_for("sink").returned, run.output()
        [line] = run.output("sink")
    # round-robin over all four from the very first task: exactly a quarter each
    assert line == "counts worker.0=100 worker.1=100 worker.2=100 worker.3=100"


MIXED = """
topology: mixed
nodes:
  pub:
    run: itnodes:publish_once
    process: main
    sockets: {out: PUB}
  same_process:
    run: itnodes:receive_one
    process: main
    sockets: {in: {type: SUB, subscribe: [""]}}
  other_process:
    run: itnodes:receive_one
    sockets: {in: {type: SUB, subscribe: [""]}}
  over_tcp:
    run: itnodes:receive_one
    sockets: {in: {type: SUB, subscribe: [""]}}
links:
  - pub.out -> same_process.in
  - pub.out -> other_process.in
  - {from: pub.out, to: over_tcp.in, transport: tcp}
"""


def test_inproc_ipc_and_tcp_links_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    plan = make_plan(load(str(path)))
    assert sorted(json.dumps(ln["transport"]) for ln in plan.to_json()["links"]) == ['"inproc"', '"ipc"', '"tcp"']
    with up(str(path)) as run:
        for name in ("same_process", "other_process", "over_tcp"):
            assert run.wait_for(name).returned, run.output()
            assert run.output(name) == ["got pub"]


def test_async_node_receives_the_first_message() -> None:
    data = yaml.safe_load("""
        topology: asyncsub
        nodes:
          pub: {run: "itnodes:publish_once", sockets: {out: PUB}}
          sub: {run: "itnodes:async_receive_one", sockets: {in: {type: SUB, subscribe: [""]}}}
        links: [pub.out -> sub.in]
    """)
    with up(data) as run:
        assert run.wait_for("sub").returned, run.output()
        assert run.output("sub") == ["async got pub"]


def test_an_async_node_blocked_in_an_await_is_cancelled_by_the_stop() -> None:
    data = yaml.safe_load("""
        topology: asyncblock
        nodes:
          feeder: {run: "itnodes:block_forever", sockets: {in: PULL, out: PUSH}}
          blocked: {run: "itnodes:async_block", sockets: {in: PULL, out: PUSH}}
        links: [feeder.out -> blocked.in, blocked.out -> feeder.in]
    """)
    with up(data) as run:
        run.wait_for_output("blocked", "async blocking")
        outcome = run.stop()
    assert outcome.code == 0
    assert run.result("blocked").state == "stopped"
    assert not [line for line in run.output() if "ContextTerminated" in line or "Traceback" in line]
