"""``topo apply`` on a live run: each kind of change carried out with real processes, and
what must not change with it (the processes of unchanged nodes, their connections, the
messages on unchanged links). The pipeline is test_edit's: feed (told through an
external PULL) → workers → tally, which prints each batch once all of it came."""

from __future__ import annotations

import json
import re

from conftest import Topo
from test_edit import pids, pipeline, tell


def edited(ctl: str, old: str, new: str) -> str:
    text = pipeline(ctl)
    assert old in text
    return text.replace(old, new)


def applied(topo: Topo, *args: str) -> str:
    result = topo.run("apply", *args)
    assert result.code == 0, result.out + result.err
    assert re.search(r"^edpipe/\S+: applied in \d+\.\d\ds$", result.out, re.M), result.out
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
