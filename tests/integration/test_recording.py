"""Recordings and replay with real processes: a recorder killed with SIGKILL leaves a file
topo reads, ``topo record --info`` shows it, and ``run: topo.nodes:replay`` stands in for a
recorded source so that the rest of the topology gets exactly what it got."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Topo
from recnodes import expected, numbers_topology, source_messages
from topo.observe.recorded import Recording, messages, summarize
from topo.observe.recording import Recorder

PLAN = json.dumps({"topology": "numbers", "nodes": [{"name": "source", "sockets": [{"name": "out", "type": "PUSH"}]}]})

def topology(topo: Topo, source: str, sink_args: str = "{}", name: str = "topo.yaml") -> str:
    return topo.file(numbers_topology(source, sink_args), name)


def record(path: Path, frames_list: list[list[bytes]], step_ns: int = 1_000_000) -> None:
    """What a recorder of source.out would have written, the messages ``step_ns`` apart."""
    with Recorder(path, "topology: numbers\n", PLAN) as rec:
        for i, frames in enumerate(frames_list):
            rec.add("source", "out", "out", 1_700_000_000_000_000_000 + i * step_ns, frames)


def replay(file: Path, **more: object) -> str:
    args = {"file": str(file), "channel": "source/out/out", **more}
    return f"run: topo.nodes:replay\n    args: {json.dumps(args)}"


def sink_line(out: str) -> str:
    found = re.search(r"sink\s+\| (total \d+ count \d+ digest \w+)$", out, re.M)
    assert found, out
    return found[1]


def replayed(out: str) -> tuple[int, float]:
    """The replay node's own count and time, from its last line."""
    found = re.search(r"source\s+\| INFO replayed (\d+) message\(s\) of source/out/out from .* in ([\d.]+)s", out)
    assert found, out
    return int(found[1]), float(found[2])


def test_a_replayed_recording_gives_the_sink_the_result_of_the_real_run(topo: Topo, tmp_path: Path) -> None:
    real = topo.run("up", topology(topo, "run: recnodes:numbers\n    args: {count: 200}"))
    assert real.code == 0, real.out + real.err
    result = sink_line(real.out)
    assert result == expected([int(f[1]) for f in source_messages(200)[:-1]])

    rec = tmp_path / "numbers.mcap"
    record(rec, source_messages(200))
    again = topo.run("up", topology(topo, replay(rec, rate="max"), name="replayed.yaml"))
    assert again.code == 0, again.out + again.err
    assert sink_line(again.out) == result
    assert replayed(again.out)[0] == 201


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_replay_keeps_the_recorded_pace_scaled_by_rate(topo: Topo, tmp_path: Path, rate: float) -> None:
    """Order and count exact; the replay took at least the recorded span / rate (the
    sink's own clock cannot say it: its first message may wait for its thread to start)."""
    rec = tmp_path / "paced.mcap"
    msgs = source_messages(10)
    record(rec, msgs, step_ns=30_000_000)  # 11 messages over 0.3 s
    done = topo.run("up", topology(topo, replay(rec, rate=rate)))
    assert done.code == 0, done.out + done.err
    assert sink_line(done.out) == expected([int(f[1]) for f in msgs[:-1]])
    count, took = replayed(done.out)
    assert count == 11 and took >= 0.3 / rate


def test_loop_replays_the_channel_again_until_the_run_stops(topo: Topo, tmp_path: Path) -> None:
    rec = tmp_path / "loop.mcap"
    msgs = source_messages(5)[:-1]  # no end marker: the sink counts
    record(rec, msgs)
    done = topo.run("up", topology(topo, replay(rec, rate=0, loop=True), sink_args="{count: 17}"))
    assert done.code == 0, done.out + done.err
    values = [int(f[1]) for f in msgs]
    assert sink_line(done.out) == expected((values * 4)[:17])


def test_a_cut_off_recording_is_replayed_up_to_where_it_ends(topo: Topo, tmp_path: Path) -> None:
    full = tmp_path / "full.mcap"
    with Recorder(full, "topology: numbers\n", PLAN, chunk_size=300) as rec:
        for i, frames in enumerate(source_messages(100)[:-1]):
            rec.add("source", "out", "out", 1_000 + i, frames)
    cut = tmp_path / "cut.mcap"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    kept = [int(m.frames[1]) for m in messages(cut)]
    assert 0 < len(kept) < 100
    done = topo.run("up", topology(topo, replay(cut, rate="max"), sink_args=f"{{count: {len(kept)}}}"))
    assert done.code == 0, done.out + done.err
    assert sink_line(done.out) == expected(kept)
    assert re.search(rf"source\s+\| WARNING .*cut\.mcap: cut off at byte \d+: the recorder did not finish the "
                     rf"file; replayed the {len(kept)} message\(s\) before it", done.out), done.out


@pytest.mark.parametrize("args, says", [
    ({"file": "missing.mcap", "channel": "source/out/out"}, r"missing\.mcap: No such file or directory"),
    ({"channel": "source/out/out", "rate": -1}, r"args\.file is missing; args\.rate must be a number >= 0"),
    ({"file": "REC", "channel": "source/out"},
     r"has no channel 'source/out' \(did you mean 'source/out/out'\?\); it has source/out/out"),
])
def test_wrong_replay_arguments_fail_the_node_with_a_clear_reason(topo: Topo, tmp_path: Path,
                                                                   args: dict[str, object], says: str) -> None:
    rec = tmp_path / "r.mcap"
    record(rec, source_messages(3))
    args = {k: str(rec) if v == "REC" else v for k, v in args.items()}
    done = topo.run("up", topology(topo, f"run: topo.nodes:replay\n    args: {json.dumps(args)}"))
    assert done.code == 1, done.out + done.err
    assert re.search(r"source failed: \w+: .*" + says, done.out + done.err), done.out + done.err


def test_a_replay_node_without_a_sending_socket_says_so(topo: Topo, tmp_path: Path) -> None:
    rec = tmp_path / "r.mcap"
    record(rec, source_messages(1))
    path = topo.file(f"""\
        topology: lone
        nodes:
          source:
            run: topo.nodes:replay
            args: {{file: {rec}, channel: source/out/out}}
            sockets: {{in: PULL}}
          feeder:
            run: recnodes:numbers
            sockets: {{out: PUSH}}
        links:
          - feeder.out -> source.in
        """)
    done = topo.run("up", path)
    assert done.code == 1
    assert "the node has no socket to send on (PUB, XPUB, PUSH, DEALER, PAIR); it has in (PULL)" in done.out + done.err


def test_topo_check_finds_the_replay_node_and_a_misspelt_one(topo: Topo, tmp_path: Path) -> None:
    rec = tmp_path / "r.mcap"
    assert topo.run("check", topology(topo, replay(rec))).code == 0
    wrong = topo.run("check", topology(topo, "run: topo.nodes:replya", name="wrong.yaml"))
    assert wrong.code == 2
    assert "has no 'replya' (did you mean 'replay'?)" in wrong.err


WRITER = """\
import json, sys
from topo.observe.recording import Recorder
rec = Recorder(sys.argv[1], "topology: numbers\\n", json.dumps({"topology": "numbers"}), flush_interval=3600)
for i in range(int(sys.argv[2])):
    rec.add("source", "out", "out", 1_000 + i, [b"num", str(i).encode()])
rec.flush()
for i in range(int(sys.argv[2]), 2 * int(sys.argv[2])):  # held in the chunk in progress
    rec.add("source", "out", "out", 1_000 + i, [b"num", str(i).encode()])
print("flushed", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_recorder_killed_with_sigkill_leaves_a_file_topo_reads(topo: Topo, tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "500"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=topo.env, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "flushed\n"  # (a dead writer ends the read: no hang)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait(timeout=30)
    got = [int(m.frames[1]) for m in messages(path)]
    assert got == list(range(500))  # what was flushed, in order; the chunk in progress is lost
    with Recording(path) as r:
        s = r.summarize()
    assert (s.complete, s.messages, s.topology) == (False, 500, "numbers")
    info = topo.run("record", "--info", str(path))
    assert info.code == 0, info.err
    assert re.search(r"incomplete: cut off at byte \d+: the recorder did not finish the file", info.out), info.out
    assert re.search(r"source/out/out\s+\?\s+500\s", info.out), info.out


def test_topo_record_info_and_its_json(topo: Topo, tmp_path: Path) -> None:
    rec = tmp_path / "numbers.mcap"
    record(rec, source_messages(3))
    text = topo.run("record", "--info", str(rec))
    assert text.code == 0, text.err
    assert f"{rec}: topology numbers, 4 message(s) on 1 channel(s)" in text.out
    assert "(0.003s)" in text.out and "  complete" in text.out
    assert re.search(r"source/out/out\s+PUSH\s+4\s+\d+ B\s+\+0\.000s\s+\+0\.003s\s+0", text.out), text.out
    data = json.loads(topo.run("record", "--info", str(rec), "--json").out)
    assert (data["topology"], data["complete"], data["messages"]) == ("numbers", True, 4)
    assert data["channels"][0]["topic"] == "source/out/out" and data["channels"][0]["missed"] == 0
    assert summarize(rec).end_ns == data["end_ns"]


@pytest.mark.parametrize("args, says", [
    (["numbers", "-o", "x.mcap"], "no running topology"),
    (["numbers"], "say where the recording goes with -o FILE.mcap"),
    ([], "name a run to record"),
    (["--info", "x.mcap", "-o", "y.mcap"], "--info FILE reads a recording: it takes no RUN"),
    (["--info", "topo.yaml"], "not a recording: not an MCAP file"),
])
def test_topo_record_usage(topo: Topo, args: list[str], says: str) -> None:
    topo.file("topology: x\n")
    done = topo.run("record", *[str(topo.tmp / a) if a == "topo.yaml" else a for a in args])
    assert done.code == 2
    assert says in done.err and "Traceback" not in done.err


LIVE = """\
topology: livenumbers
nodes:
  source: {run: "recnodes:numbers_forever", sockets: {out: PUSH}}
  sink: {run: "recnodes:drain", sockets: {in: PULL}}
links:
  - source.out -> sink.in
"""


def test_topo_record_of_a_running_run_replays_into_the_same_result(topo: Topo, tmp_path: Path) -> None:
    """A live run recorded with ``topo record RUN NODE.SOCKET``, then that recording
    replayed into a sink: the sink sums exactly what was recorded."""
    started = topo.run("up", "-d", topo.file(LIVE, "live.yaml"))
    assert started.code == 0, started.err
    try:
        out = tmp_path / "live.mcap"
        done = topo.run("record", "livenumbers", "source.out", "-o", str(out), "--count", "30")
        assert done.code == 0, done.err
        assert "topo: recorded 30 message(s) to" in done.err
        everything = tmp_path / "all.mcap"
        done = topo.run("record", "livenumbers", "-o", str(everything), "--count", "10")
        assert done.code == 0, done.err
    finally:
        topo.run("down", "livenumbers", "--timeout", "30")
    assert summarize(str(out)).topology == "livenumbers"
    got = [m.frames for m in messages(str(out))]
    assert len(got) == 30 and all(f[0] == b"num" for f in got)
    topics = {c.topic for c in summarize(str(everything)).channels}
    assert topics <= {"source/out/out", "sink/in/in"} and topics, topics  # every socket, both ways
    info = topo.run("record", "--info", str(out))
    assert re.search(r"source/out/out\s+PUSH\s+30\s", info.out), info.out
    result = topo.run("up", topology(topo, replay(out, rate="max"), '{"count": 30}'))
    assert result.code == 0, result.out + result.err
    assert sink_line(result.out).startswith(expected([int(f[1]) for f in got]))
