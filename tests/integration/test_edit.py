"""Editing a live run from another terminal: ``topo restart`` of running nodes (peers go
on and reconnect, nothing sent after the restart is lost) and ``topo apply --dry-run``
(the difference to an edited file, the run untouched)."""

from __future__ import annotations

import json
import re
import signal

import pytest
import zmq

from conftest import Topo
from hostnet import host_network, hosts_block, hosts_emptied, requires_netns


def pipeline(ctl: str) -> str:
    """feed (told by the test through an external PULL) → 2 workers → tally."""
    return f"""
        topology: edpipe
        nodes:
          feed:
            run: editnodes:feed
            sockets:
              ctl: {{type: PULL, external: {{bind: "ipc://{ctl}"}}}}
              out: PUSH
          worker: {{run: editnodes:relay, replicas: 2, sockets: {{in: PULL, out: PUSH}}}}
          tally: {{run: editnodes:tally, sockets: {{in: PULL}}}}
        links: [feed.out -> worker.in, worker.out -> tally.in]
    """


def tell(ctl: str, text: str) -> None:
    """Sends one command to the feed node, delivered before this returns (or fails)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.connect(f"ipc://{ctl}")
        push.send_string(text)
        push.close(linger=10_000)
    finally:
        ctx.term()


def pids(topo: Topo, run: str) -> dict[str, tuple[int, int]]:
    """Each node's (pid, restarts) as ``topo ps --json`` says."""
    result = topo.run("ps", run, "--json")
    assert result.code == 0, result.err
    (entry,) = json.loads(result.out)
    return {n["name"]: (n["pid"], n["restarts"]) for n in entry["nodes"]}


def test_restarting_a_worker_loses_nothing_sent_after_and_touches_no_other_process(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    tell(ctl, "1 100")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 100")
    before = pids(topo, "edpipe")

    result = topo.run("restart", "worker.1")
    assert result.code == 0, result.out + result.err
    assert re.search(r"^restarted worker\.1 \(process worker\.1, pid \d+\)$", result.out, re.M), result.out
    assert re.search(r"^edpipe/\S+: ready again in \d+\.\d\ds$", result.out, re.M), result.out

    after = pids(topo, "edpipe")
    assert after["worker.1"][0] != before["worker.1"][0] and after["worker.1"][1] == 1
    assert {n: after[n] for n in ("feed", "worker.0", "tally")} == \
           {n: before[n] for n in ("feed", "worker.0", "tally")}
    tell(ctl, "2 300")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 complete 300")
    assert any("restarting process worker.1 (worker.1): asked by topo restart" in line for line in seen), seen

    # the node's name or the run named first; a name the run has not: the nearest, exit 2
    again = topo.run("restart", "edpipe", "worker")
    assert again.code == 0, again.out + again.err
    assert "restarted worker.0 (process worker.0" in again.out and "restarted worker.1 (process worker.1" in again.out
    tell(ctl, "3 300")
    topo.wait_for_line(proc, r"tally +\| batch 3 complete 300")
    wrong = topo.run("restart", "wroker")
    assert wrong.code == 2 and "no node 'wroker' in edpipe; did you mean worker" in wrong.err, wrong.err
    assert pids(topo, "edpipe")["feed"] == before["feed"]

    assert topo.run("down", "edpipe").code == 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err


def test_restart_takes_the_other_nodes_of_the_process_and_ignores_restart_no(topo: Topo) -> None:
    _, run = topo.up_detached("""
        topology: edshared
        nodes:
          a: {run: "editnodes:hold", process: both, restart: "no", sockets: {out: PUSH}}
          b: {run: "editnodes:hold", process: both, sockets: {in: PULL}}
          c: {run: "editnodes:hold", sockets: {in: PULL}}
        links: [a.out -> b.in, a.out -> c.in]
    """)
    before = pids(topo, run)
    result = topo.run("restart", run, "a")
    assert result.code == 0, result.out + result.err
    assert "restarted a, b (process both" in result.out
    after = pids(topo, run)
    assert after["a"][0] == after["b"][0] != before["a"][0]
    assert (after["a"][1], after["b"][1]) == (1, 1) and after["c"] == before["c"]
    assert topo.run("down", run).code == 0


def test_restart_without_a_run_or_a_node_exits_2(topo: Topo) -> None:
    none = topo.run("restart", "x")
    assert none.code == 2 and "no running topology" in none.err, none.err
    usage = topo.run("restart")
    assert usage.code == 2


APPLIED = """
    topology: edapply
    nodes:
      src: {run: "editnodes:hold", args: {n: 1}, sockets: {out: PUSH, news: PUB}}
      worker: {run: "editnodes:hold", replicas: 2, sockets: {in: PULL}}
      log: {run: "editnodes:hold", sockets: {news: {type: SUB, subscribe: [""]}}}
    links: [src.out -> worker.in, src.news -> log.news]
"""


def test_apply_dry_run_prints_the_difference_and_changes_nothing(topo: Topo) -> None:
    _, run = topo.up_detached(APPLIED)
    before = pids(topo, run)
    edited = topo.file(APPLIED.replace("replicas: 2", "replicas: 3").replace("n: 1", "n: 2"), "edited.yaml")
    result = topo.run("apply", run, edited, "--dry-run")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines == [
        "+ worker.2 (process worker.2)",
        "~ src (args)",
        "~ worker.0, worker.1 (in place: replicas 2 → 3)",
        "+ link src.out -> worker.2.in (ipc): with the processes that start or restart",
        "↻ process src (src: args)",
        "+ process worker.2",
        "= 1 unchanged (3 processes untouched)",
    ], result.out
    as_json = topo.run("apply", edited, "--dry-run", "--json")  # the only run: RUN left out
    assert as_json.code == 0, as_json.err
    data = json.loads(as_json.out)
    assert data["run"] == run and data["added"] == ["worker.2"]
    assert data["processes"]["restarted"] == [{"name": "src", "why": ["src: args"]}]

    broken = topo.file(APPLIED.replace("src.news -> log.news", "src.news -> log.nope"), "broken.yaml")
    invalid = topo.run("apply", broken, "--dry-run")
    assert invalid.code == 2 and re.search(r"broken\.yaml:\d+:\d+: ", invalid.err), invalid.err
    other = topo.run("apply", topo.file(APPLIED.replace("edapply", "another"), "other.yaml"), "--dry-run")
    assert other.code == 2 and "the run is 'edapply'" in other.err
    assert pids(topo, run) == before  # nothing restarted, nothing lost
    assert topo.run("down", run).code == 0


def test_a_restart_asked_while_the_run_stops_is_refused(topo: Topo) -> None:
    """A restart asked of a run that is stopping says so (exit 1): nothing comes back."""
    path = topo.file("""
        topology: edstop
        nodes:
          slow: {run: "itnodes:ignore_stop", sockets: {out: PUSH}}
          c: {run: "editnodes:hold", sockets: {in: PULL}}
        links: [slow.out -> c.in]
    """)
    proc = topo.start("up", path, "--grace", "2")
    topo.wait_for_line(proc, r"all 2 node\(s\) ready")
    proc.send_signal(signal.SIGINT)
    topo.wait_for_line(proc, r"stop")
    result = topo.run("restart", "c")
    # stopping (1), ended while asked (1: it read the request, or not, in its last moments),
    # or already gone (2)
    assert result.code in (1, 2), result.out + result.err
    assert re.search(r"stopping|ended before it answered|no running topology", result.err), result.err
    proc.communicate(timeout=30)


@requires_netns
@pytest.mark.slow
def test_restart_of_a_node_on_another_host(topo: Topo) -> None:
    """A node on another host restarts through its agent as a policy restart does."""
    with host_network(2) as net:
        proc = topo.start("up", topo.file(f"""
            topology: edfar
            {hosts_block(net)}
            nodes:
              pub: {{run: itnodes:publish_forever, host: h1, sockets: {{out: PUB}}}}
              show: {{run: itnodes:print_received, host: h2, sockets: {{in: {{type: SUB, subscribe: [""]}}}}}}
            links: [pub.out -> show.in]
            """.replace("\n            ", "\n")))
        topo.wait_for_line(proc, r"show@h2 +\| received tick")
        before = pids(topo, "edfar")
        result = topo.run("restart", "show")
        assert result.code == 0, result.out + result.err
        assert re.search(r"^restarted show \(process show on h2, pid \d+\)$", result.out, re.M), result.out
        after = pids(topo, "edfar")
        assert after["show"][0] != before["show"][0] and after["show"][1] == 1 and after["pub"] == before["pub"]
        topo.wait_for_line(proc, r"show@h2 +\| received tick")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        hosts_emptied(net, 10)


@requires_netns
@pytest.mark.slow
def test_a_failed_node_on_another_host_is_restarted_by_its_policy(topo: Topo) -> None:
    """The end of the process being replaced is reported under its own generation, which a
    restart has moved on from by then: it must still count, or the restart never comes."""
    with host_network(2) as net:
        proc = topo.start("up", topo.file(f"""
            topology: edflaky
            {hosts_block(net)}
            nodes:
              flaky: {{run: "itnodes:fail_twice", host: h2, restart: on-failure, sockets: {{out: PUSH}}}}
              sink: {{run: "itnodes:block_forever", host: h1, sockets: {{in: PULL}}}}
            links: [flaky.out -> sink.in]
            defaults: {{on_exit: stop}}
            """.replace("\n            ", "\n")))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert re.findall(r"^flaky@h2 +\| run (\d)$", out, re.M) == ["0", "1", "2"], out
        hosts_emptied(net, 10)
