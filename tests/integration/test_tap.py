"""Taps on live sockets: ``topo echo``, ``topo hz``, ``topo sockets`` and ``run.tap()``, with
real processes and sockets. A tap must show what flows without changing delivery."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Topo
from topo.testing import up
from topo.testing.tapping import TapTimeout

LINKS = """
topology: taps
nodes:
  src: {run: "tapnodes:ticker", args: {topics: ["a.", "b."], interval: 0.01}, sockets: {out: PUB}}
  sub: {run: "tapnodes:printer", sockets: {in: {type: SUB, subscribe: [""]}}}
  pusher: {run: "tapnodes:ticker", args: {interval: 0.01}, sockets: {out: PUSH}}
  puller: {run: "tapnodes:printer", sockets: {in: PULL}}
  near: {run: "tapnodes:ticker", process: both, args: {binary: true, interval: 0.01}, sockets: {out: PUSH}}
  far: {run: "tapnodes:async_printer", process: both, sockets: {in: PULL}}
  apub: {run: "tapnodes:async_ticker", sockets: {out: PUB}}
  asub: {run: "tapnodes:printer", sockets: {in: {type: SUB, subscribe: [""]}}}
links:
  - apub.out -> asub.in
  - src.out -> sub.in
  - pusher.out -> puller.in
  - near.out -> far.in
"""

CLOCK = r"\d\d:\d\d:\d\d\.\d{6}"


def _up_d(topo: Topo, text: str) -> str:
    return topo.up_detached(text)[1]


def _ticks(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(r"tick (\d+)", line))]


def test_echo_shows_what_flows_on_pubsub_pushpull_and_inproc_links(topo: Topo) -> None:
    run = _up_d(topo, LINKS)
    pub = topo.run("echo", run, "src.out", "--count", "4")
    assert pub.code == 0, pub.err
    lines = pub.out.splitlines()
    assert len(lines) == 4, pub.out
    assert all(re.fullmatch(rf"{CLOCK} src\.out out \[0\] [ab]\.  \[1\] tick \d+", line) for line in lines), pub.out
    ticks = _ticks(lines)
    assert ticks == list(range(ticks[0], ticks[0] + 4)), pub.out  # in order, none left out

    sub = topo.run("echo", run, "sub.in", "--count", "3", "--prefix", "b.")
    assert sub.code == 0, sub.err
    assert [line.split(" ", 3)[1:3] for line in sub.out.splitlines()] == [["sub.in", "in"]] * 3, sub.out
    assert all("[0] b." in line for line in sub.out.splitlines()), sub.out

    pushed = topo.run("echo", "pusher.out", "--count", "2", "--out")  # RUN left out: the only one
    pulled = topo.run("echo", run, "puller.in", "--count", "2", "--format", "hex")
    assert pushed.code == pulled.code == 0, pushed.err + pulled.err
    assert len(_ticks(pushed.out.splitlines())) == 2, pushed.out
    assert all(re.fullmatch(rf"{CLOCK} puller\.in in  \[0\] 0x7469636b20\w+", line)
               for line in pulled.out.splitlines()), pulled.out

    # an inproc link, an async receiver, and frames that are not text: never raw on the terminal
    for target, direction in (("near.out", "out"), ("far.in", "in ")):
        binary = topo.run("echo", run, target, "--count", "2")
        assert binary.code == 0, binary.err
        assert [re.sub(r"..$", "", line.split("[0] ")[1]) for line in binary.out.splitlines()] == ["0x001b5b33316dff"] * 2
        assert f" {direction} " in binary.out
        assert "\x1b" not in binary.out and "\x00" not in binary.out
    # an async PUB: what it sends, never the subscriptions topo drains from it
    apub = topo.run("echo", run, "apub.out", "--count", "3")
    assert [line.split(" ")[1:3] for line in apub.out.splitlines()] == [["apub.out", "out"]] * 3, apub.out
    text = topo.run("echo", run, "far.in", "--count", "1", "--format", "text")
    assert text.out.split("[0] ")[1].startswith("\\x00\\x1b[31m\\xff"), text.out
    assert topo.run("down", run).code == 0


def test_bad_arguments_are_one_line_and_exit_2(topo: Topo) -> None:
    run = _up_d(topo, LINKS)
    for args, message in (
            (("echo", "nope", "src.out"), "no running topology 'nope'"),
            (("echo", run, "scr.out"), "no node 'scr' in taps; did you mean src.out?"),
            (("echo", run, "src.uot"), "no socket 'uot' on src in taps; did you mean src.out?"),
            (("echo", run, "src.out", "--format", "yaml"), "unknown format 'yaml'"),
            (("hz", run, "src"), "expected NODE.SOCKET"),
            (("echo", run, "pusher.out", "--in"), "pusher.out is a PUSH: it receives nothing to show"),
            (("sockets", "nope"), "no running topology 'nope'")):
        result = topo.run(*args)
        assert result.code == 2, (args, result.out, result.err)
        assert result.err.count("\n") == 1 and message in result.err, (args, result.err)
    try:
        import msgpack  # noqa: F401
    except ImportError:
        result = topo.run("echo", run, "src.out", "--format", "msgpack")
        assert result.code == 2 and "needs the msgpack package" in result.err
    assert topo.run("down", run).code == 0


def test_echo_of_a_req_rep_pair_in_and_out(topo: Topo) -> None:
    run = _up_d(topo, """
topology: reqrep
nodes:
  client: {run: "tapnodes:asker", sockets: {out: REQ}}
  server: {run: "tapnodes:answerer", sockets: {in: REP}}
links: [client.out -> server.in]
""")
    both = topo.run("echo", run, "server.in", "--count", "4")
    asked = topo.run("echo", run, "server.in", "--count", "2", "--in")
    answered = topo.run("echo", run, "client.out", "--count", "2", "--in")
    assert both.code == asked.code == answered.code == 0, both.err + asked.err + answered.err
    pairs = [line.split(" ", 4)[2:] for line in both.out.splitlines()]
    # a REP alternates: a question in, its answer out
    assert [p[0] for p in pairs] in (["in", "out"] * 2, ["out", "in"] * 2), both.out
    assert all(" in  [0] q " in line for line in asked.out.splitlines()), asked.out
    assert all(" in  [0] a " in line for line in answered.out.splitlines()), answered.out
    assert topo.run("down", run).code == 0


def test_killing_echo_ends_its_tap_in_the_node(topo: Topo) -> None:
    file = topo.file("""
topology: killed
nodes:
  src: {run: "tapnodes:ticker", args: {interval: 0.01, say_tapped: true}, sockets: {out: PUSH}}
  dst: {run: "tapnodes:printer", sockets: {in: PULL}}
links: [src.out -> dst.in]
""")
    run = topo.start("up", file)
    topo.wait_for_line(run, "all 2 node")
    echo = topo.start("echo", "src.out")
    topo.wait_for_line(run, r"src +\| tapped")
    echo.send_signal(signal.SIGKILL)
    echo.wait(10)
    topo.wait_for_line(run, r"src +\| untapped", timeout=20)  # its lease ran out
    # an echo whose run ends ends too
    follower = topo.start("echo", "src.out")
    topo.wait_for_line(run, r"src +\| tapped")
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    out, err = follower.communicate(timeout=20)
    assert follower.returncode == 0 and "has ended" in err, (follower.returncode, err)


def test_hz_measures_the_rate_and_ends_on_ctrl_c(topo: Topo) -> None:
    run = _up_d(topo, """
topology: paced
nodes:
  src: {run: "tapnodes:ticker", args: {interval: 0.05}, sockets: {out: PUB}}
  sub: {run: "tapnodes:printer", sockets: {in: {type: SUB, subscribe: [""]}}}
links: [src.out -> sub.in]
""")
    hz = topo.start("hz", run, "src.out", "--window", "1")
    lines = topo.wait_for_lines(hz, [r"rate .*\(\d+ msgs\)"])
    lines += topo.wait_for_lines(hz, [r"rate .*\(\d+ msgs\)"])
    rates = [float(re.search(r"rate ([\d.]+) msg/s", line).group(1)) for line in lines]  # type: ignore[union-attr]
    # paced at one message per 50 ms by the node (a loaded machine only makes it slower)
    assert all(20 * 0.7 <= rate <= 20 * 1.3 for rate in rates), lines
    assert all(re.search(r"min [\d.]+ms  max [\d.]+ms  std [\d.]+ms  \d+ B/s", line) for line in lines), lines
    hz.send_signal(signal.SIGINT)
    assert hz.wait(10) == 0
    assert topo.run("down", run).code == 0


def test_sockets_lists_every_socket_with_rates(topo: Topo) -> None:
    run = _up_d(topo, LINKS)
    result = topo.run("sockets", run, "--json")
    assert result.code == 0, result.err
    entries = json.loads(result.out)
    assert {(e["instance"], e["socket"], e["type"]) for e in entries} == {
        ("src", "out", "PUB"), ("sub", "in", "SUB"), ("pusher", "out", "PUSH"), ("puller", "in", "PULL"),
        ("near", "out", "PUSH"), ("far", "in", "PULL"), ("apub", "out", "PUB"), ("asub", "in", "SUB")}
    by = {f"{e['instance']}.{e['socket']}": e for e in entries}
    assert by["src.out"]["peers"] == ["sub.in"] and by["src.out"]["transports"] == ["ipc"]
    assert by["near.out"]["transports"] == ["inproc"]
    rated = topo.run("sockets", "--rate", "1")
    assert rated.code == 0, rated.err
    row = next(line.split() for line in rated.out.splitlines() if line.strip().startswith("pusher.out"))
    assert float(row[-2]) > 10 and float(row[-4]) == 0.0, rated.out  # out ~100 msg/s, nothing in
    assert topo.run("down", run).code == 0


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return str(path)


WORKERS = """
topology: dealt
nodes:
  src: {run: "tapnodes:ticker", args: {count: 300, interval: 0.002, wait_tapped: WAIT}, sockets: {out: PUSH}}
  worker: {run: "tapnodes:printer", replicas: 3, sockets: {in: PULL}}
links: [src.out -> worker.in]
"""


def _dealt(run: Any) -> dict[str, list[int]]:
    run.wait_for_output("src", "src sent 300", timeout=30)
    got: dict[str, list[int]] = {}

    def all_in() -> bool:
        got.clear()
        for name in ("worker.0", "worker.1", "worker.2"):
            got[name] = _ticks(run.output(name))
        return sum(len(v) for v in got.values()) == 300

    deadline = time.monotonic() + 20
    while not all_in():
        assert time.monotonic() < deadline, got
        run.wait_for_output("worker", "got", timeout=1)  # (a real wait: output lines)
    return got


def _round_robin(got: dict[str, list[int]]) -> None:
    owner = {tick: name for name, ticks in got.items() for tick in ticks}
    assert sorted(owner) == list(range(300))
    assert all(ticks == sorted(ticks) and len(ticks) == 100 for ticks in got.values()), got
    assert all(owner[i] == owner[i % 3] for i in range(300)), "not dealt in turn"


def test_a_tapped_push_deals_to_its_workers_as_an_untapped_one(tmp_path: Path) -> None:
    with up(_write(tmp_path, WORKERS.replace("WAIT", "false"))) as untapped:
        _round_robin(_dealt(untapped))
    with up(_write(tmp_path, WORKERS.replace("WAIT", "true"))) as run:
        with run.tap("src.out") as tap:
            dealt = _dealt(run)
            seen = [next(tap) for _ in range(300)]
        _round_robin(dealt)
        assert _ticks([m.frames[0].decode() for m in seen]) == list(range(300))
        assert {m.direction for m in seen} == {"out"} and tap.missed == 0


def test_a_reader_that_does_not_read_never_slows_the_node(tmp_path: Path) -> None:
    count = 100_000
    with up(_write(tmp_path, f"""
topology: flood
nodes:
  src: {{run: "tapnodes:ticker", args: {{count: {count}, interval: 0, wait_tapped: true, stay: true}}, sockets: {{out: PUSH}}}}
  sink: {{run: "tapnodes:counting_sink", args: {{count: {count}}}, sockets: {{in: PULL}}}}
links: [src.out -> sink.in]
""")) as run, run.tap("src.out", timeout=3) as tap:
        run.wait_for_output("sink", f"sink received {count}", timeout=60)  # every message, unread tap or not
        run.wait_for_output("src", f"src sent {count}", timeout=10)
        with pytest.raises(TapTimeout) as ran_out:
            while True:
                next(tap)
        assert tap.missed > 0, f"the tap should have dropped copies; saw {len(tap.messages)}"
        assert len(tap.messages) + tap.missed == count, (len(tap.messages), tap.missed)
        assert f"({len(tap.messages)} seen so far, {tap.missed} missed)" in str(ran_out.value)  # what a timeout says


def test_harness_tap_yields_messages_and_times_out_clearly(tmp_path: Path) -> None:
    with up(_write(tmp_path, """
topology: quiet
nodes:
  src: {run: "tapnodes:ticker", args: {interval: 0.01}, sockets: {out: PUB}}
  sub: {run: "tapnodes:printer", sockets: {in: {type: SUB, subscribe: ["never"]}}}
links: [src.out -> sub.in]
""")) as run:
        with run.tap("src.out") as tap:
            first, second = next(tap), tap.next(timeout=5)
            assert _ticks([first.frames[0].decode(), second.frames[0].decode()]) == [
                _ticks([first.frames[0].decode()])[0] + i for i in range(2)]
            assert tap.messages == [first, second] and first.label == "src.out"
        with run.tap("sub.in", timeout=0.5) as quiet:
            with pytest.raises(TapTimeout, match=r"sub\.in \(0 seen so far\): none came within 0.5s"):
                next(quiet)


def test_copies_queued_when_the_tapped_process_ends_are_read_or_counted_missed(tmp_path: Path) -> None:
    count = 60_000
    with up(_write(tmp_path, f"""
topology: ending
nodes:
  src: {{run: "tapnodes:ticker", args: {{count: {count}, interval: 0, wait_tapped: true}}, sockets: {{out: PUSH}}}}
  sink: {{run: "tapnodes:counting_sink", args: {{count: {count}}}, sockets: {{in: PULL}}}}
links: [src.out -> sink.in]
""")) as run, run.tap("src.out", timeout=3) as tap:
        run.wait_for_output("src", f"src sent {count}", timeout=30)  # its process ends with copies queued
        with pytest.raises(TapTimeout):
            while True:
                next(tap)
        assert len(tap.messages) + tap.missed == count, (len(tap.messages), tap.missed)
        ticks = _ticks([m.frames[0].decode() for m in tap.messages])
        assert ticks == sorted(ticks) and ticks[0] == 0, "in order, from the first"
