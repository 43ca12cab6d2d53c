"""``topo apply`` lowering ``replicas`` while work flows: the feeder's PUSH binds, the
workers connect, and every task dealt to the removed worker is still relayed by it before
it goes (topo.process.handover): each task arrives exactly once."""

from __future__ import annotations

import re

import pytest

from conftest import Topo
from test_edit import pids, pipeline, tell


def counted(ctl: str, replicas: int, transport: str = "ipc", small: bool = False) -> str:
    """test_edit's pipeline, ``replicas`` workers, the tally counting each batch by worker;
    the feed's link to the workers over ``transport`` (tcp: with ``small`` queues)."""
    text = pipeline(ctl).replace("replicas: 2", f"replicas: {replicas}")
    if transport != "ipc":
        text = text.replace("links: [feed.out -> worker.in,",
                            f"links: [{{from: feed.out, to: worker.in, transport: {transport}}},")
        assert transport in text
    if small or transport == "tcp":
        # small queues and kernel buffers: tcp's would take the whole batch at once, and the
        # feed would be done dealing before the apply lands (a removed worker still holds
        # a thousand tasks or so: the kernel doubles the buffer sizes asked for)
        text = text.replace("out: PUSH\n", "out: {type: PUSH, options: {sndhwm: 100, sndbuf: 16384}}\n", 1)
        text = text.replace("sockets: {in: PULL, out: PUSH}",
                            "sockets: {in: {type: PULL, options: {rcvhwm: 100, rcvbuf: 16384}}, out: PUSH}")
        assert text.count("16384") == 2, text
    # each worker paced (0.3 ms of work a task: some 6 s for the batch), so that it still flows
    # when the apply lands
    text = text.replace("run: editnodes:relay,", "run: editnodes:relay, args: {pause: 0.0003},")
    return text.replace("run: editnodes:tally,", "run: editnodes:census,")


@pytest.mark.parametrize("transport, tasks", [("ipc", 50_000), ("tcp", 20_000)])
def test_scale_down_while_tasks_flow_delivers_each_exactly_once(topo: Topo, transport: str, tasks: int) -> None:
    ctl = str(topo.home / "ctl")
    proc = topo.start("up", topo.file(counted(ctl, 3, transport)))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    if transport == "tcp":
        plan = topo.run("plan", topo.file(counted(ctl, 3, transport)))
        assert re.search(r"feed\.out +worker\.2\.in +PUSH→PULL +tcp\+curve ", plan.out), plan.out
    before = pids(topo, "edpipe")
    tell(ctl, f"1 {tasks}")
    result = topo.run("apply", topo.file(counted(ctl, 2, transport), "two.yaml"))
    assert result.code == 0, result.out + result.err
    assert "- worker.2" in result.out and "- process worker.2" in result.out and "↻" not in result.out, result.out
    took = float(re.search(r"applied in (\d+\.\d\d)s", result.out).group(1))  # type: ignore[union-attr]
    after = pids(topo, "edpipe")
    assert after == {n: before[n] for n in ("feed", "worker.0", "worker.1", "tally")}

    # the feed sends batch 2 once all of batch 1 is sent, and the tally prints every
    # batch's count whenever it falls idle: the print that has all of batch 2 has batch 1's last
    tell(ctl, "2 3000")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 has 3000 dup 0 ")
    last = [ln for ln in seen if "batch 1 has" in ln][-1]
    assert f"batch 1 has {tasks} dup 0 " in last, "".join(seen)
    by = dict(pair.split(":") for pair in last.split(" by ")[1].split())
    share = int(by.get(str(before["worker.2"][0]), "0"))
    kept = [int(by[str(before[w][0])]) for w in ("worker.0", "worker.1")]
    assert 0 < share < 0.9 * min(kept), last  # it had a share, and left while the batch flowed
    assert sum(int(n) for n in by.values()) == tasks, last
    batch2 = [ln for ln in seen if "batch 2 has" in ln][-1]
    assert str(before["worker.2"][0]) not in batch2, batch2  # after the apply: the two kept only
    assert any("retiring process worker.2 (worker.2): removed" in ln for ln in seen), "".join(seen)
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    assert any("feed.out bound again, by a new socket" in ln for ln in seen), "".join(seen)
    assert not any("what was in flight to it is lost" in ln for ln in seen), "".join(seen)
    print(f"scale-down 3 -> 2 over {transport} under {tasks:,} tasks: applied in {took:.2f}s; {last}")
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


def test_a_feeder_waiting_in_a_poller_of_its_own_is_handed_over_at_its_node_running(topo: Topo) -> None:
    """Its node never calls a socket's own send, recv or poll (a ``zmq.Poller`` of its own,
    ``while node.running``): the hand-over is made at its ``node.running``."""
    ctl = str(topo.home / "ctl")
    held = counted(ctl, 3).replace("run: editnodes:feed", "run: editnodes:hold")
    proc = topo.start("up", topo.file(held))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    result = topo.run("apply", topo.file(held.replace("replicas: 3", "replicas: 2"), "two.yaml"))
    assert result.code == 0, result.out + result.err
    assert "- process worker.2" in result.out and "↻" not in result.out, result.out
    seen = topo.wait_for_line(proc, r"feed.out bound again, by a new socket")
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    assert not any("what was in flight to it is lost" in ln for ln in seen), "".join(seen)
    assert set(pids(topo, "edpipe")) == {"feed", "worker.0", "worker.1", "tally"}
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


def test_a_feeder_whose_node_looks_at_nothing_leaves_the_removed_worker_stopped_as_before(topo: Topo) -> None:
    """Its node sleeps 5 s at a time (``node.sleep``): no socket call and no ``node.running``
    within the 2 s the supervisor gives."""
    ctl = str(topo.home / "ctl")
    dozing = counted(ctl, 3).replace("run: editnodes:feed", "run: editnodes:doze")
    proc = topo.start("up", topo.file(dozing))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    result = topo.run("apply", topo.file(dozing.replace("replicas: 3", "replicas: 2"), "two.yaml"))
    assert result.code == 0, result.out + result.err
    assert "- process worker.2" in result.out and "↻" not in result.out, result.out
    seen = topo.wait_for_line(proc, r"topo apply done in")
    assert any("stopping process worker.2 (worker.2): removed, not drained (feed.out: its node used none of "
               "its sockets in time); what was in flight to it is lost" in ln for ln in seen), "".join(seen)
    assert set(pids(topo, "edpipe")) == {"feed", "worker.0", "worker.1", "tally"}
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


def test_a_feeder_that_also_binds_inproc_keeps_its_inproc_worker_and_stops_the_removed_one(topo: Topo) -> None:
    """A new socket would cut the feed's inproc peer off for good (libzmq's inproc peers
    never reconnect): the hand-over is refused, the removed worker stopped as before."""
    ctl = str(topo.home / "ctl")

    def text(replicas: int) -> str:
        body = counted(ctl, replicas).replace("run: editnodes:feed", "run: editnodes:feed\n            process: front")
        body = body.replace("          tally:", "          near: {run: editnodes:relay, process: front, "
                                                "sockets: {in: PULL, out: PUSH}}\n          tally:")
        out = body.replace("links: [", "links: [feed.out -> near.in, near.out -> tally.in, ")
        assert out.count("process: front") == 2 and "near.in" in out, out
        return out

    proc = topo.start("up", topo.file(text(3)))
    topo.wait_for_line(proc, r"all 6 node\(s\) ready")
    plan = topo.run("plan", topo.file(text(3)))
    assert re.search(r"feed\.out +near\.in +PUSH→PULL +inproc ", plan.out), plan.out
    before = pids(topo, "edpipe")
    result = topo.run("apply", topo.file(text(2), "two.yaml"))
    assert result.code == 0, result.out + result.err
    seen = topo.wait_for_line(proc, r"topo apply done in")
    assert any("stopping process worker.2 (worker.2): removed, not drained (feed.out: feed.out binds inproc too"
               in ln for ln in seen), "".join(seen)
    tell(ctl, "2 3000")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 has 3000 dup 0 ")
    by = dict(pair.split(":") for pair in seen[-1].split(" by ")[1].split())
    assert int(by.get(str(before["near"][0]), "0")) > 0, seen[-1]  # the inproc worker is still dealt to
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


def test_a_removed_worker_that_drained_and_loops_on_a_recv_for_ever_is_stopped_and_the_apply_ends(
        topo: Topo) -> None:
    """Its node never asks ``node.running``: it loops on a ``recv`` with a timeout. It
    retires at one of those calls (all it was dealt is read), and its loop goes on for
    ever. It is stopped after the grace period (nothing in flight to it), and the apply,
    which waits for its end, returns."""
    ctl = str(topo.home / "ctl")
    text = counted(ctl, 3, small=True).replace("run: editnodes:relay,", "run: editnodes:endless_relay,")
    assert "endless_relay" in text
    proc = topo.start("up", topo.file(text), "--grace", "3")  # (time to drain its share, loaded)
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    before = pids(topo, "edpipe")
    tell(ctl, "1 20000")  # (some 2 s of work: it flows when the apply lands)
    result = topo.run("apply", topo.file(text.replace("replicas: 3", "replicas: 2"), "two.yaml"), timeout=60)
    assert result.code == 0, result.out + result.err
    tell(ctl, "2 300")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 has 300 dup 0 ")
    assert any("batch 1 has 20000 dup 0 " in ln for ln in seen), "".join(seen)
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    assert any("stopping process worker.2 (worker.2): it drained, and its node has not returned within 3s"
               in ln for ln in seen), "".join(seen)
    assert set(pids(topo, "edpipe")) == {"feed", "worker.0", "worker.1", "tally"}
    assert before["worker.0"] == pids(topo, "edpipe")["worker.0"]
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


@pytest.mark.parametrize("feed, worker, tasks", [("afeed", "relay", 20_000), ("feed", "arelay", 5_000)])
def test_async_feeders_and_workers_are_handed_over_too(topo: Topo, feed: str, worker: str, tasks: int) -> None:
    """An ``async def`` feed: its asyncio socket follows the new socket (its event loop
    watches the new one's descriptor); an ``async def`` worker retires as a plain one."""
    ctl = str(topo.home / "ctl")

    def text(replicas: int) -> str:
        out = counted(ctl, replicas, small=True).replace("run: editnodes:feed", f"run: editnodes:{feed}")
        return out.replace("run: editnodes:relay,", f"run: editnodes:{worker},")

    assert f"editnodes:{feed}\n" in text(3) and f"editnodes:{worker}," in text(3)
    proc = topo.start("up", topo.file(text(3)))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    before = pids(topo, "edpipe")
    tell(ctl, f"1 {tasks}")  # (some 2 s of work: an async worker's sleep is coarser)
    result = topo.run("apply", topo.file(text(2), "two.yaml"))
    assert result.code == 0, result.out + result.err
    tell(ctl, "2 3000")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 has 3000 dup 0 ")
    last = [ln for ln in seen if "batch 1 has" in ln][-1]
    assert f"batch 1 has {tasks} dup 0 " in last, "".join(seen)
    by = dict(pair.split(":") for pair in last.split(" by ")[1].split())
    assert int(by.get(str(before["worker.2"][0]), "0")) > 0, last
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    assert not any("what was in flight to it is lost" in ln for ln in seen), "".join(seen)
    assert pids(topo, "edpipe") == {n: before[n] for n in ("feed", "worker.0", "worker.1", "tally")}
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)


def test_a_feeder_between_two_frames_of_a_message_is_handed_over_only_at_its_end(topo: Topo) -> None:
    """The feed looks at another socket between the two frames of each message: the
    hand-over waits for the message's last frame, so no worker gets half a message."""
    ctl = str(topo.home / "ctl")

    def text(replicas: int) -> str:
        out = counted(ctl, replicas, small=True).replace("run: editnodes:feed", "run: editnodes:feed_pairs")
        return out.replace("run: editnodes:relay,", "run: editnodes:relay_pairs,")

    assert "feed_pairs" in text(3) and "relay_pairs" in text(3)
    proc = topo.start("up", topo.file(text(3)))
    topo.wait_for_line(proc, r"all 5 node\(s\) ready")
    tell(ctl, "1 20000")
    result = topo.run("apply", topo.file(text(2), "two.yaml"))
    assert result.code == 0, result.out + result.err
    tell(ctl, "2 3000")
    seen = topo.wait_for_line(proc, r"tally +\| batch 2 has 3000 dup 0 ")
    assert not any("split message" in ln for ln in seen), "".join(seen)
    assert any("batch 1 has 20000 dup 0 " in ln for ln in seen), "".join(seen)
    assert any("worker.2.in drained: it read all feed.out dealt it" in ln for ln in seen), "".join(seen)
    result = topo.run("down", "edpipe")
    assert result.code == 0, result.err
    proc.communicate(timeout=30)
