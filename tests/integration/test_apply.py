"""``topo apply`` on a live run: each kind of change carried out with real processes, and
what must not change with it (the processes of unchanged nodes, their connections, the
messages on unchanged links). The pipeline is test_edit's: feed (told through an
external PULL) → workers → tally, which prints each batch once all of it came."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import Topo
from test_edit import pids, pipeline, tell


def edited(ctl: str, old: str, new: str) -> str:
    text = pipeline(ctl)
    assert old in text
    return text.replace(old, new)


def applied(topo: Topo, *args: str) -> str:
    result = topo.run("apply", *args)
    assert result.code == 0, result.out + result.err
    assert "--json" in args or re.search(r"^edpipe/\S+: applied in \d+\.\d\ds$", result.out, re.M), result.out
    return result.out


def test_scale_up_through_a_flowing_pipeline_loses_nothing_and_the_next_task_reaches_the_new_worker(
        topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")

    tell(ctl, "1 5000")  # in flight while the run changes
    out = applied(topo, topo.file(edited(ctl, "replicas: 2", "replicas: 3"), "three.yaml"))
    assert "+ worker.2 (process worker.2)" in out and "+ process worker.2" in out, out
    assert "↻" not in out, out  # nothing restarted: the feed's PUSH binds, the new worker dials it
    assert "= 2 unchanged (4 processes untouched)" in out, out
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 5000")

    after = pids(topo, "edpipe")
    assert {n: after[n] for n in before} == before  # the same processes, never restarted
    assert "worker.2" in after
    # the feed's next three tasks go one to each worker, the new one included
    tell(ctl, "2 3")
    (line,) = [ln for ln in topo.wait_for_line(proc, r"tally +\| batch 2 complete 3") if "batch 2" in ln]
    assert str(after["worker.2"][0]) in line.split(), line
    assert len(line.split("from ")[1].split()) == 3, line


def test_args_changed_restart_that_process_alone_and_an_added_node_s_first_message_arrives_then_it_is_removed(
        topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")

    # args of one node: its process alone restarts, with the new args
    out = applied(topo, "edpipe", topo.file(edited(ctl, "run: editnodes:tally,", "run: editnodes:tally, args: {v: 2},"),
                                             "args.yaml"))
    assert "~ tally (args)" in out and "↻ process tally (tally: args)" in out, out
    after = pids(topo, "edpipe")
    assert after["tally"][0] != before["tally"][0] and after["tally"][1] == 1
    assert {n: after[n] for n in ("feed", "worker.0", "worker.1")} == \
           {n: before[n] for n in ("feed", "worker.0", "worker.1")}
    tell(ctl, "1 300")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 300")

    # a node added: started and gated, so the one message it sends at once arrives
    added = edited(ctl, "run: editnodes:tally,", "run: editnodes:tally, args: {v: 2},").replace(
        "links: [", "  once: {run: editnodes:once, args: {batch: 7}, sockets: {out: PUSH}}\n        links: [once.out -> tally.in, ")
    out = applied(topo, topo.file(added, "added.yaml"))
    assert "+ once (process once)" in out and "+ process once" in out and "↻" not in out, out
    topo.wait_for_line(proc, r"tally +\| batch 7 complete 1 from once")
    assert {n: pids(topo, "edpipe")[n] for n in after} == after

    # and removed again (diffed against the plan applied last): stopped, gone from topo ps
    out = applied(topo, topo.file(edited(ctl, "run: editnodes:tally,", "run: editnodes:tally, args: {v: 2},"),
                                  "args.yaml"))
    assert "- once" in out and "- process once" in out and "↻" not in out, out
    assert "- link once.out -> tally.in (ipc): with the processes that stop or restart" in out, out
    assert set(pids(topo, "edpipe")) == set(after)
    tell(ctl, "2 300")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 complete 300")
    assert any("stopping process once (once): removed" in line for line in seen), seen
    assert {n: pids(topo, "edpipe")[n] for n in after} == after


def test_a_link_added_in_place_carries_messages_restarts_nothing_and_is_removed_in_place(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")

    # feed.out -> tally.in: the feed's PUSH already binds; tally's PULL connects in place,
    # in tally's own thread (at its next poll), while a batch flows: nothing of it lost
    tell(ctl, "1 5000")
    linked = edited(ctl, "links: [", "links: [feed.out -> tally.in, ")
    out = applied(topo, topo.file(linked, "linked.yaml"))
    assert "+ link feed.out -> tally.in (ipc): linked in place (tally.in connects)" in out, out
    assert "↻" not in out and "= 4 unchanged (4 processes untouched)" in out, out
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 5000")
    assert pids(topo, "edpipe") == before  # the same processes, none restarted
    # the feed deals to tally straight from the connection's handshake on
    direct = False
    for batch in range(2, 40):
        tell(ctl, f"{batch} 30")
        (line,) = [ln for ln in topo.wait_for_line(proc, rf"tally +\| batch {batch} complete 30")
                   if f"batch {batch}" in ln]
        if "direct" in line.split():
            direct = True
            break
    assert direct, "no message of 38 batches came over the new link"

    out = applied(topo, topo.file(pipeline(ctl), "unlinked.yaml"))
    assert "- link feed.out -> tally.in (ipc): unlinked in place (tally.in disconnects)" in out, out
    assert "↻" not in out, out
    assert pids(topo, "edpipe") == before
    tell(ctl, "50 30")
    (line,) = [ln for ln in topo.wait_for_line(proc, r"tally +\| batch 50 complete 30") if "batch 50" in ln]
    assert "direct" not in line.split(), line


def test_an_invalid_file_changes_nothing(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")

    broken = topo.file(edited(ctl, "sockets: {in: PULL}}\n", "sockets: {in: PULL}}}\n"), "broken.yaml")
    result = topo.run("apply", broken)
    assert result.code == 2 and result.out == "", result.out + result.err
    assert re.search(r"broken\.yaml:\d+:\d+: ", result.err) and "1 problem" in result.err, result.err
    other = topo.run("apply", topo.file(edited(ctl, "topology: edpipe", "topology: other"), "other.yaml"))
    assert other.code == 2 and "apply edits a run's own topology" in other.err, other.err

    assert pids(topo, "edpipe") == before
    tell(ctl, "1 300")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 300")


def test_scale_down_stops_the_removed_worker_and_the_feed_deals_to_the_others_only(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(edited(ctl, "replicas: 2", "replicas: 3")))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    before = pids(topo, "edpipe")
    tell(ctl, "1 3000")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 3000")

    out = applied(topo, topo.file(pipeline(ctl), "two.yaml"))
    assert "- worker.2" in out and "- process worker.2" in out and "↻" not in out, out
    assert "- link feed.out -> worker.2.in (ipc): with the processes that stop or restart" in out, out
    after = pids(topo, "edpipe")
    assert after == {n: before[n] for n in ("feed", "worker.0", "worker.1", "tally")}
    tell(ctl, "2 3000")  # nothing dealt to the worker that has gone
    (line,) = [ln for ln in topo.wait_for_line(proc, r"tally +\| batch 2 complete 3000") if "batch 2" in ln]
    assert str(before["worker.2"][0]) not in line.split(), line

    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)
    outcome = json.loads(next(topo.home.rglob("outcome.json")).read_text())
    assert sorted(outcome["nodes"]) == ["feed", "tally", "worker.0", "worker.1"], outcome


def test_harness_run_apply_returns_the_difference_and_the_run_follows_the_new_plan(tmp_path: Path) -> None:
    from topo.testing import up
    from topo.testing.applying import ApplyError

    ctl = str(tmp_path / "ctl")
    two = yaml.safe_load(pipeline(ctl).replace("\n        ", "\n"))
    three = copy.deepcopy(two)
    three["nodes"]["worker"]["replicas"] = 3
    with up(two) as run:
        before = {p.name for p in run.plan.processes}
        diff = run.apply(three)
        assert diff.added == ("worker.2",) and diff.removed == () and diff.restarted() == ()
        assert set(run.plan.instances) == {"feed", "worker.0", "worker.1", "worker.2", "tally"}
        assert {p.name for p in run.plan.processes} == before | {"worker.2"}
        tell(ctl, "1 3")
        line = run.wait_for_output("tally", r"batch 1 complete 3 from")
        assert len(line.split("from ")[1].split()) == 3, line  # one task each, the new worker's too

        with pytest.raises(ApplyError, match="apply edits a run's own topology"):
            run.apply({**three, "topology": "other"})
        again = run.apply(three)  # diffed against the plan applied: nothing to do
        assert again.empty
        assert run.apply(two).removed == ("worker.2",)
        assert "worker.2" not in run.plan.instances
        tell(ctl, "2 30")
        run.wait_for_output("tally", r"batch 2 complete 30 from")


def test_a_node_that_fails_to_come_up_is_named_and_exits_1(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    bad = edited(ctl, "links: [", "  bad: {run: \"brokenmod:run\"}\n        links: [")
    result = topo.run("apply", topo.file(bad, "bad.yaml"))
    assert result.code == 1, result.out + result.err
    assert re.search(r"bad failed during topo apply \(bad: \w+Error: ", result.err), result.err  # and why
    # a failure as at topo up: with no restart policy, it stops the run
    out, _ = proc.communicate(timeout=30)
    assert "brokenmod cannot be imported" in out and proc.returncode == 1, out


def test_a_link_whose_transport_changed_is_made_again_binder_restarted_dialers_in_place(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(pipeline(ctl)))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")
    tcp = edited(ctl, "worker.out -> tally.in]", "{from: worker.out, to: tally.in, transport: tcp, curve: false}]")
    out = applied(topo, topo.file(tcp, "tcp.yaml"))
    # tally binds the new endpoint (a bind: its process restarts); each worker's PUSH
    # disconnects from the old one and connects to the new one in place, before its next send
    assert "~ link worker.0.out -> tally.in (tcp; transport ipc → tcp): linked in place (worker.0.out " \
           "disconnects, worker.0.out connects)" in out, out
    assert "↻ process tally (link worker.0.out -> tally.in: tally.in would unbind; link worker.0.out -> " \
           "tally.in: tally.in would bind" in out, out
    assert not {"↻ process worker.0", "↻ process worker.1"} & {line.split(" (")[0] for line in out.splitlines()}, out
    after = pids(topo, "edpipe")
    assert {n: after[n] for n in ("feed", "worker.0", "worker.1")} == \
           {n: before[n] for n in ("feed", "worker.0", "worker.1")}
    assert after["tally"][0] != before["tally"][0]
    tell(ctl, "1 300")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 300")
    sockets = topo.run("sockets", "edpipe")
    assert re.search(r"tally\.in +PULL +running +tcp", sockets.out), sockets.out


def test_a_binder_restarted_after_an_apply_that_renumbered_the_ipc_files_binds_the_file_its_peers_use(
        topo: Topo) -> None:
    """A node added before the others takes the first ipc file numbers in the new plan;
    the running endpoints keep their files, and a process restarted later binds the file
    its peers are connected to, not the new plan's name for it."""
    ctl = str(topo.home / "ctl")
    text = pipeline(ctl)
    proc = topo.start("up", topo.file(text))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    first = pipeline(ctl).replace("        nodes:\n", "        nodes:\n"
                                  "          ping: {run: editnodes:once, args: {batch: 9}, sockets: {out: PUSH}}\n"
                                  "          pong: {run: editnodes:hold, sockets: {in: PULL}}\n", 1)
    first = first.replace("links: [", "links: [ping.out -> pong.in, ")
    assert "pong" in first and "ping.out -> pong.in" in first
    old_plan, new_plan = (topo.run("plan", topo.file(t, n)).out for t, n in ((text, "a.yaml"), (first, "b.yaml")))
    tally_file = re.compile(r"tally\.in +ipc://\{run_dir\}/(\S+)")
    assert tally_file.search(old_plan).group(1) != tally_file.search(new_plan).group(1), new_plan  # type: ignore[union-attr]
    out = applied(topo, topo.file(first, "first.yaml"))
    assert "+ process pong" in out and "↻" not in out, out
    result = topo.run("restart", "edpipe", "tally")
    assert result.code == 0, result.out + result.err
    tell(ctl, "1 300")
    topo.wait_for_line(proc, r"tally +\| batch 1 complete 300")
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)
