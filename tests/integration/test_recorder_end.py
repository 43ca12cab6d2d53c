"""The recorder of ``topo up --record`` at a run's end: it reads for as long as copies
still come, not for a fixed second after the end began. A recorder behind a flood (a
remote node's, under load) still had thousands of copies queued when the run ended, and
lost them with the tap's ``end``: the file said "no last word" for a node that had said
it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from topo.file.validate import load
from topo.observe.recorded import summarize
from topo.plan.planner import make_plan
from topo.process.recordack import ask
from topo.supervisor.recorder import RunRecorder

TOPOLOGY = """\
topology: trickle
nodes:
  src:
    run: recnodes:numbers
    sockets: {out: PUSH}
  sink:
    run: recnodes:total
    sockets: {in: PULL}
links:
  - src.out -> sink.in
"""
#: Copies sent after the end began, each this far apart: together longer than the
#: recorder's one second of silence, each gap well within it.
COPIES, GAP = 8, 0.3


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[RunRecorder]:
    file = tmp_path / "trickle.yaml"
    file.write_text(TOPOLOGY)
    rec = RunRecorder(make_plan(load(str(file))), str(tmp_path / "trickle.mcap"), only=["src.out", "sink.in"])
    yield rec
    rec.kill()


def test_the_end_reads_copies_that_keep_coming_and_the_tap_s_end(recorder: RunRecorder, tmp_path: Path) -> None:
    spec = recorder.prepare(str(tmp_path))
    recorder.start(str(tmp_path / "trickle.yaml"), lambda line: None)
    ctx: zmq.Context[Any] = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.linger = 5000
    push.connect(spec.endpoint)
    tap, other = [b"record:out", b"src"], [b"record:in", b"sink"]
    try:
        push.send_multipart([*tap, b"on", b"%d" % time.time_ns(), b"0"])
        # the other tap opened and ended, and its end confirmed read (as a process's end
        # asks): the recorder has read src's "on", sent before it, so src's tap is open
        push.send_multipart([*other, b"on", b"1", b"0"])
        push.send_multipart([*other, b"end", b"2", b"0"])
        assert ask(ctx, spec.ack, [(*other, 2)], time.monotonic() + 10), "the recorder never confirmed sink's end"
        paced = threading.Event()  # never set: its wait is the pace of a slow trickle, not a synchronisation

        def trickle() -> None:
            for n in range(COPIES):
                push.send_multipart([*tap, b"out", b"%d" % time.time_ns(), b"0", b"%d" % n])
                paced.wait(GAP)
            push.send_multipart([*tap, b"end", b"%d" % time.time_ns(), b"0"])

        sender = threading.Thread(target=trickle)
        sender.start()
        said = recorder.finish(timeout=20)  # the run's end, while copies still come
        sender.join(10)
    finally:
        push.close()
        ctx.term()
    assert said == [f"recorded {COPIES} message(s) to {tmp_path / 'trickle.mcap'} ("
                    + said[0].rsplit("(", 1)[1]], said  # every copy, and no "no last word from src"
    summary = summarize(str(tmp_path / "trickle.mcap"))
    assert summary.complete and [(c.topic, c.messages) for c in summary.channels if c.messages] == [
        ("src/out/out", COPIES)]
