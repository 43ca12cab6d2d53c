"""Links changed in place by ``topo apply`` (:mod:`topo.process.relink`): a running sender
connects to a new receiver in its own thread, no process restarted, nothing lost on the
links that did not change; and a socket whose node does not use it in time has its
process restarted instead, which the output says. The pipeline is test_edit's: feed →
two workers → tally."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import Topo
from test_apply import applied, edited
from test_edit import pids, pipeline, tell

#: An audit node fed by both workers: it binds, so each worker's PUSH connects to it.
AUDIT = "  audit: {run: editnodes:count, sockets: {in: {type: PULL, bind: true}}}\n        links: ["


def counted(topo: Topo, proc: Any, batch: int, total: int, nodes: tuple[str, ...]) -> dict[str, int]:
    """What each of ``nodes`` (``editnodes:count``) says it has of ``batch``, read until
    they have ``total`` between them (or the read's deadline fails the test)."""
    have = {n: 0 for n in nodes}
    pattern = rf"({'|'.join(nodes)}) +\| batch {batch} has (\d+) dup (\d+)"
    while sum(have.values()) < total:
        for line in topo.wait_for_line(proc, pattern):
            m = re.search(pattern, line)
            if m:
                assert m.group(3) == "0", line  # nothing received twice
                have[m.group(1)] = int(m.group(2))
    assert sum(have.values()) == total, have
    return have


def test_a_sender_connects_in_place_to_a_new_node_while_a_batch_flows_and_nothing_is_lost(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    base = pipeline(ctl).replace("editnodes:tally", "editnodes:count")
    proc = topo.start("up", topo.file(base))
    topo.wait_for_line(proc, r"all 4 node\(s\) ready")
    before = pids(topo, "edpipe")

    tell(ctl, "1 20000")  # in flight on every link while the workers connect to audit
    with_audit = base.replace("links: [", AUDIT + "worker.out -> audit.in, ")
    out = applied(topo, topo.file(with_audit, "audit.yaml"))
    assert "+ audit (process audit)" in out and "+ process audit" in out, out
    assert "+ link worker.0.out -> audit.in (ipc): linked in place (worker.0.out connects)" in out, out
    assert "+ link worker.1.out -> audit.in (ipc): linked in place (worker.1.out connects)" in out, out
    assert "↻" not in out and "(4 processes untouched)" in out, out
    after = pids(topo, "edpipe")
    assert {n: after[n] for n in before} == before  # the same processes, never restarted

    # every message of the batch reaches tally or audit, exactly once between them
    counted(topo, proc, 1, 20000, ("tally", "audit"))
    # the next batch, all sent after the apply: the workers deal to both from their connect on
    tell(ctl, "2 600")
    have = counted(topo, proc, 2, 600, ("tally", "audit"))
    assert have["audit"] > 0 and have["tally"] > 0, have


def test_a_sub_its_node_does_not_use_restarts_its_process_instead_for_the_new_publisher_s_gate(
        topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    # reader waits in a zmq.Poller of its own: it calls none of its SUB's methods until a
    # message comes, so a connect in place waits for its next message
    reader = ("  reader: {run: editnodes:hold, sockets: {news: {type: SUB, subscribe: [n]}}}\n"
              "          crier: {run: editnodes:once, args: {batch: 7}, sockets: {out: PUB}}\n"
              "        links: [crier.out -> reader.news, ")
    base = edited(ctl, "links: [", reader)
    proc = topo.start("up", topo.file(base))
    topo.wait_for_line(proc, r"all 6 node\(s\) ready")
    before = pids(topo, "edpipe")

    # a new publisher: its gate waits for reader's subscription, so the connect in place is
    # awaited; not made within 2 s, reader's process restarts and has the link from its start
    herald = ("  herald: {run: editnodes:once, args: {batch: 8}, sockets: {out: {type: PUB, bind: true}}}\n"
              "        links: [herald.out -> reader.news, ")
    out = applied(topo, topo.file(base.replace("links: [", herald, 1), "herald.yaml"))
    assert "+ link herald.out -> reader.news (ipc): ↻ restarted (process reader)" in out, out
    assert "↻ process reader (link herald.out -> reader.news: not in place, its node did not use the socket " \
           "in time)" in out, out
    after = pids(topo, "edpipe")
    assert after["reader"][0] != before["reader"][0]
    assert {n: after[n] for n in ("feed", "worker.0", "worker.1", "tally", "crier")} == \
           {n: before[n] for n in ("feed", "worker.0", "worker.1", "tally", "crier")}
    result = topo.run("apply", "--json", topo.file(base.replace("links: [", herald, 1), "herald.yaml"))
    assert json.loads(result.out)["empty"], result.out


def test_a_sender_that_does_not_send_connects_at_its_next_message_and_no_gate_waits_for_it(topo: Topo) -> None:
    ctl = str(topo.home / "ctl")
    once = "  once: {run: editnodes:once, args: {batch: 7}, sockets: {out: PUSH}}\n        links: [once.out -> tally.in, "
    base = edited(ctl, "links: [", once)
    proc = topo.start("up", topo.file(base))
    topo.wait_for_line(proc, r"tally +\| batch 7 complete 1 from once")
    before = pids(topo, "edpipe")
    # once sent its one message and only sleeps: its PUSH connects to extra at its next
    # send; extra's gate does not wait for it, the apply is over at once, nothing restarted
    extra = "  extra: {run: editnodes:hold, sockets: {in: {type: PULL, bind: true}}}\n        links: [once.out -> extra.in, "
    out = applied(topo, "--json", topo.file(base.replace("links: [", extra, 1), "extra.yaml"))
    reply = json.loads(out)
    (link,) = [ln for ln in reply["links"] if ln["dst"] == "extra.in"]
    assert link["how"] == "in place", link
    assert reply["processes"]["restarted"] == [] and reply["processes"]["started"] == ["extra"], reply
    after = pids(topo, "edpipe")
    assert {n: after[n] for n in before} == before
