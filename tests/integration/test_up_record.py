"""``topo up FILE --record OUT.mcap``: every message from the first one, none lost to a
recorder that is slower than the run (the nodes wait), none of the nodes held by a
recorder that dies, and the file finished however the run ends."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import psutil

from conftest import ROOT, Topo, wait_until
from recnodes import expected, numbers_topology, source_messages
from topo.observe.recorded import RecordingError, messages, summarize

PIPELINE = str(ROOT / "topologies" / "pipeline.yaml")

FLOOD = """\
topology: flood
nodes:
  source:
    run: uprecnodes:{source}
    args: {{count: {count}}}
    sockets: {{out: PUSH}}
  sink:
    run: uprecnodes:{sink}
    on_exit: stop
    sockets: {{in: PULL}}
links:
  - source.out -> sink.in
"""


def chunked(path: Path) -> bool:
    """Whether the recording has a chunk on disk (its header may not be there yet). Reads
    up to the first message only: a flood's recording grows faster than the whole of it
    could be read (a summary of it never returned, and the file grew by gigabytes)."""
    try:
        with contextlib.closing(messages(str(path))) as each:
            return next(each, None) is not None
    except RecordingError:
        return False


def channels(path: Path) -> dict[str, int]:
    return {c.topic: c.messages for c in summarize(str(path)).channels}


def test_the_pipeline_is_recorded_from_its_first_message(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "pipeline.mcap"
    result = topo.run("up", PIPELINE, "--record", str(out))
    assert result.code == 0, result.out + result.err
    assert "sink: 12/12 results" in result.out
    assert re.search(r"topo\s+\| recording 8 socket\(s\) to .*pipeline\.mcap", result.out), result.out
    assert re.search(r"topo\s+\| recorded 48 message\(s\) to .*pipeline\.mcap", result.out), result.out
    summary = summarize(str(out))
    assert summary.complete and summary.topology == "pipeline"
    counts = channels(out)
    assert counts["ventilator/tasks/out"] == 12  # every task sent, the first included
    assert counts["sink/results/in"] == 12       # every result the sink counted
    assert sum(n for t, n in counts.items() if t.endswith("/tasks/in")) == 12
    assert all(c.missed == 0 for c in summary.channels)
    recorded = list(messages(str(out)))
    sent = [frames for topic, _, frames, _ in recorded if topic == "ventilator/tasks/out"]
    assert sent == [[str(i).encode()] for i in range(12)]  # in order, from task 0
    results = [frames for topic, _, frames, _ in recorded if topic == "sink/results/in"]
    assert sum(int(r[2]) for r in results) == 506  # what the sink printed: sum of squares = 506
    assert "sum of squares = 506" in result.out


def test_a_source_recorded_from_the_first_message_replays_into_the_same_result(topo: Topo, tmp_path: Path) -> None:
    rec = tmp_path / "numbers.mcap"
    real = topo.run("up", topo.file(numbers_topology("run: recnodes:numbers\n    args: {count: 300}")),
                    "--record", str(rec), "--record-only", "source.out")
    assert real.code == 0, real.out + real.err
    want = expected([int(f[1]) for f in source_messages(300)[:-1]])
    assert re.search(rf"sink\s+\| {want}$", real.out, re.M), real.out
    assert channels(rec) == {"source/out/out": 301}
    replay = f'run: topo.nodes:replay\n    args: {{file: "{rec}", channel: source/out/out, rate: max}}'
    again = topo.run("up", topo.file(numbers_topology(replay), "replayed.yaml"))
    assert again.code == 0, again.out + again.err
    assert re.search(rf"sink\s+\| {want}$", again.out, re.M), again.out


def test_record_only_takes_a_comma_list_and_repeats(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "some.mcap"
    result = topo.run("up", PIPELINE, "--record", str(out), "--record-only", "ventilator.tasks,worker.1.tasks",
                      "--record-only", "sink.results")
    assert result.code == 0, result.out + result.err
    assert channels(out) == {"ventilator/tasks/out": 12, "worker.1/tasks/in": 4, "sink/results/in": 12}


def test_a_bad_record_only_name_is_one_line_and_exit_2_before_anything_starts(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "never.mcap"
    result = topo.run("up", PIPELINE, "--record", str(out), "--record-only", "sink.result")
    assert result.code == 2
    assert result.err.strip() == ("--record-only sink.result: no socket 'result' on sink in pipeline; "
                                  "did you mean sink.results?")
    assert result.out == "" and not out.exists() and not topo.run_dirs()
    alone = topo.run("up", PIPELINE, "--record-only", "sink.results")
    assert alone.code == 2 and len(alone.err.strip().splitlines()) == 1 and "--record" in alone.err
    unwritable = topo.run("up", PIPELINE, "--record", str(tmp_path / "no" / "such" / "dir.mcap"))
    assert unwritable.code == 2 and "No such file or directory" in unwritable.err and not topo.run_dirs()


def test_a_recorder_slower_than_the_flood_loses_nothing(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "flood.mcap"
    path = topo.file(FLOOD.format(source="flood", sink="count", count=200_000))
    result = topo.run("up", path, "--record", str(out), "--record-only", "source.out", timeout=120)
    assert result.code == 0, result.out + result.err
    assert "counted 200000" in result.out
    summary = summarize(str(out))
    assert summary.complete and [(c.topic, c.messages, c.missed) for c in summary.channels] == [
        ("source/out/out", 200_001, 0)]
    sequences = [seq for _, _, _, seq in messages(str(out))]
    assert sequences == list(range(1, 200_002))  # no gap: no copy dropped
    frames = [f for _, _, f, _ in messages(str(out))]
    assert frames[0] == [b"0"] and frames[-2] == [b"199999"] and frames[-1] == [b"end"]


def recorder_of(up: subprocess.Popen[str]) -> psutil.Process:
    found: list[psutil.Process] = []

    def seen() -> bool:
        found[:] = [p for p in psutil.Process(up.pid).children()
                    if "taprecorder" in " ".join(p.cmdline())]
        return bool(found)

    wait_until(seen, 10, "the recorder process")
    return found[0]


def test_a_recorder_killed_holds_no_node_and_leaves_a_readable_file(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "killed.mcap"
    up = topo.start("up", topo.file(FLOOD.format(source="forever", sink="drain", count=0)), "--record", str(out))
    topo.wait_for_line(up, r"all 2 node\(s\) ready")
    recorder = recorder_of(up)
    wait_until(lambda: chunked(out), 20, "a chunk written to the recording")
    recorder.send_signal(signal.SIGKILL)
    lines = topo.wait_for_lines(up, [r"topo\s+\| the recorder ended before the run \(killed by SIGKILL\)",
                                     r"source\s+\| topo: recording source.out: the recorder took no copy for 5s"])
    assert all("Traceback" not in line for line in lines)
    up.send_signal(signal.SIGINT)  # the nodes still run: the run stops as any does
    rest, err = up.communicate(timeout=30)
    assert up.returncode == 130, rest + err
    assert re.search(r"stopped: Ctrl-C after", rest) and "did not stop" not in rest, rest
    summary = summarize(str(out))
    assert not summary.complete and summary.messages > 0
    assert summary.channels[0].messages > 0


def test_the_recorder_starts_before_the_node_processes(topo: Topo, tmp_path: Path) -> None:
    """Their gates wait for it: started after them, its own start (an interpreter, zmq,
    mcap) came on top of theirs, and `topo up --record` of the pipeline took 1.45x the
    plain run (bench/record.py, target 1.3x); started first, 1.16x."""
    up = topo.start("up", topo.file(FLOOD.format(source="forever", sink="drain", count=0)), "--record",
                    str(tmp_path / "first.mcap"))
    topo.wait_for_line(up, r"all 2 node\(s\) ready")
    recorder = recorder_of(up)
    nodes = [p for p in psutil.Process(up.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(nodes) == 2
    assert all(recorder.create_time() <= node.create_time() for node in nodes), \
        (recorder.create_time(), [node.create_time() for node in nodes])
    up.send_signal(signal.SIGINT)
    rest, err = up.communicate(timeout=30)
    assert up.returncode == 130, rest + err


def test_a_detached_run_is_recorded_until_topo_down(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "detached.mcap"
    text = FLOOD.format(source="forever", sink="drain", count=0).replace("uprecnodes:forever", "recnodes:numbers_forever")
    _, identity = topo.up_detached(text, "--record", str(out), "--record-only", "source.out")
    wait_until(lambda: chunked(out), 20, "a chunk written to the recording")
    down = topo.run("down", identity)
    assert down.code == 0, down.out + down.err
    wait_until(lambda: summarize(str(out)).complete, 20, "the recording finished")
    summary = summarize(str(out))
    assert [c.topic for c in summary.channels] == ["source/out/out"] and summary.channels[0].missed == 0
    assert [seq for _, _, _, seq in messages(str(out))] == list(range(1, summary.messages + 1))
    assert os.path.getsize(out) == summary.size


def test_a_restarted_process_is_recorded_from_its_first_message_again(topo: Topo, tmp_path: Path) -> None:
    out = tmp_path / "restart.mcap"
    text = FLOOD.format(source="flaky", sink="count", count=0).replace(
        "    sockets: {out: PUSH}", "    restart: on-failure\n    sockets: {out: PUSH}")
    result = topo.run("up", topo.file(text), "--record", str(out), "--record-only", "source.out")
    assert result.code == 0, result.out + result.err
    assert "counted 10" in result.out and "restarting" in result.out
    sent = [(frames, seq) for _, _, frames, seq in messages(str(out))]
    assert [f for f, _ in sent] == [[b"start0-%d" % i] for i in range(5)] + [[b"start1-%d" % i] for i in range(5)] \
        + [[b"end"]]
    assert [s for _, s in sent] == list(range(1, 12))
