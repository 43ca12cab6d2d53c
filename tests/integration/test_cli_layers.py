"""One topology varied without copying it: ``-f`` overlays, ``--set``, ``--profile`` and
``topo config`` through the real command, and the harness's ``overlays=``, ``sets=``,
``profiles=``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import Topo
from topo.testing import Probe, up

BASE = """\
    topology: layered
    nodes:
      vent:
        run: itnodes:vent
        args: {tasks: 40}
        sockets: {out: PUSH}
      worker:
        run: itnodes:work
        sockets: {in: PULL, out: PUSH}
      sink:
        run: itnodes:collect
        args: {tasks: 40}
        on_exit: stop
        sockets: {in: PULL}
      broken:
        run: itnodes:boom
        sockets: {in: PULL}
      hello:
        run: itnodes:talk
        profiles: [debug]
    links:
      - vent.out -> worker.in
      - worker.out -> sink.in
      - worker.out -> broken.in
    """

#: Two workers, and the node that would fail the run removed with its link.
OVERLAY = """\
    nodes:
      worker:
        replicas: 2
      broken: !reset null
    """


def test_up_runs_the_topology_the_overlay_set_and_profile_make(topo: Topo) -> None:
    base, overlay = topo.file(BASE), topo.file(OVERLAY, "two-workers.yaml")
    result = topo.run("up", base, "-f", overlay, "--set", "vent.args.tasks=6", "--set", "sink.args.tasks=6",
                      "--profile", "debug", "--no-color")
    assert result.code == 0, result.out + result.err
    # round-robin over both workers from the first task (as test_runtime's fan-out shows)
    assert re.search(r"^sink\s+\| counts worker\.0=3 worker\.1=3$", result.out, re.M), result.out
    # the profile's node is part of the run (the sink may end it before hello has printed)
    assert re.search(r"^topo\s+\| hello\s+(returned|stopped)\s", result.out, re.M), result.out
    assert "broken" not in result.out
    assert topo.run_dirs() == []


def test_without_the_profile_its_node_does_not_run(topo: Topo) -> None:
    base, overlay = topo.file(BASE), topo.file(OVERLAY, "two-workers.yaml")
    result = topo.run("up", "-f", base, "-f", overlay, "--set", "vent.args.tasks=4", "--set", "sink.args.tasks=4",
                      "--no-color")
    assert result.code == 0, result.out + result.err
    assert re.search(r"^sink\s+\| counts worker\.0=2 worker\.1=2$", result.out, re.M), result.out
    assert "hello" not in result.out


def test_check_points_into_the_file_that_wrote_the_value(topo: Topo) -> None:
    base = topo.file(BASE)
    overlay = topo.file("""\
        nodes:
          worker:
            replicas: 0
          sink: {on_exit: later}
        links:
          - vent.out -> wroker.in
        """, "bad.yaml")
    result = topo.run("check", base, "-f", overlay, "--set", "vent.replicas=zero")
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines() == [
        "--set:1:15: nodes.vent.replicas must be an integer, not a string",
        "  1 | vent.replicas=zero",  # each shown with the line (or the --set) that wrote it
        "    |               ^",
        f"{overlay}:3:15: nodes.worker.replicas must be at least 1; got 0",
        "  3 |     replicas: 0",
        "    |               ^",
        f"{overlay}:4:19: nodes.sink.on_exit must be one of continue, stop; got 'later'",
        "  4 |   sink: {on_exit: later}",
        "    |                   ^",
        f"{overlay}:6:17: link names node 'wroker', which does not exist (did you mean 'worker'?)",
        "  6 |   - vent.out -> wroker.in",
        "    |                 ^",
        "4 problems",
    ]
    result = topo.run("check", base, "-f", overlay.replace("bad", "missing"))
    assert result.code == 2 and "missing.yaml: cannot read the file" in result.err


def test_check_plan_and_graph_take_the_same_arguments(topo: Topo) -> None:
    base, overlay = topo.file(BASE), topo.file(OVERLAY, "two-workers.yaml")
    args = (base, "-f", overlay, "--profile", "debug")
    result = topo.run("check", *args)
    assert result.code == 0, result.err
    assert result.out == f"{base} -f {overlay} --profile debug: ok: topology layered (4 nodes, 5 instances, 2 links)\n"
    plan = json.loads(topo.run("plan", *args, "--json").out)
    assert plan["overlays"] == [overlay]
    assert sorted(n["name"] for n in plan["nodes"]) == ["hello", "sink", "vent", "worker.0", "worker.1"]
    graph = topo.run("graph", *args, "--set", "worker.replicas=3")
    assert graph.code == 0 and "worker.2" in graph.out and "broken" not in graph.out


def test_config_prints_the_resolved_file(topo: Topo) -> None:
    base, overlay = topo.file(BASE), topo.file(OVERLAY, "two-workers.yaml")
    topo.env["TOPO_PROFILES"] = "debug"
    result = topo.run("config", base, "-f", overlay, "--set", "vent.args.tasks=6")
    assert result.code == 0, result.err
    assert result.out == """\
topology: layered
nodes:
  vent:
    run: itnodes:vent
    args:
      tasks: 6
    sockets:
      out: PUSH
  worker:
    run: itnodes:work
    sockets:
      in: PULL
      out: PUSH
    replicas: 2
  sink:
    run: itnodes:collect
    args:
      tasks: 40
    on_exit: stop
    sockets:
      in: PULL
  hello:
    run: itnodes:talk
    profiles:
    - debug
links:
- vent.out -> worker.in
- worker.out -> sink.in
"""


def test_unknown_profiles_and_missing_files_are_errors(topo: Topo) -> None:
    base = topo.file(BASE)
    topo.env["TOPO_PROFILES"] = "debug,debgu"
    result = topo.run("config", base)
    assert result.code == 2
    assert result.err.splitlines() == ["TOPO_PROFILES:1:7: unknown profile 'debgu' (did you mean 'debug'?)", "1 problem"]
    result = topo.run("config", base, "--profile", "nope")  # the option wins over the variable
    assert result.err.splitlines()[0] == "--profile:1:1: unknown profile 'nope' (profiles in the file: debug)"
    result = topo.run("check")
    assert result.code == 2
    assert result.err.strip() == "no topology file: name one (topo up FILE), or several with -f FILE"


def test_the_harness_takes_overlays_sets_and_profiles(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BASE.replace("\n    ", "\n").removeprefix("    "))
    overlay = tmp_path / "two.yaml"
    overlay.write_text(OVERLAY.replace("\n    ", "\n").removeprefix("    "))
    with up(base, overlays=[overlay], sets=["vent.args.tasks=4", "sink.args.tasks=4"], profiles=["debug"]) as run:
        assert run.wait_for("sink").returned, run.output()
        assert run.output("sink") == ["counts worker.0=2 worker.1=2"]
        assert "hello" in run.plan.instances  # (sink's on_exit may stop it before it returns)
        assert "broken" not in run.plan.instances


def test_harness_overrides_read_variables_and_dotenv_as_topo_up_does(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TASKS=3\n")
    base = tmp_path / "base.yaml"
    base.write_text(
        "topology: h-vars\n"
        "nodes:\n"
        "  vent: {run: itnodes:vent, args: {tasks: ${TASKS}, note: $$HOME}, sockets: {out: PUSH}}\n"
        "  sink: {run: itnodes:collect, sockets: {in: PULL}}\n"
        "links: [vent.out -> sink.in]\n")
    with up(base, overrides={"sink": None}, sets=["vent.args.extra=${TASKS}"],
            probes={"got": Probe("PULL", "vent.out")}) as run:
        # ${TASKS} read from .env next to the file, typed; $$ a literal $, not read again;
        # a --set value taken as written (the shell has done its substitution)
        assert run.plan.instances["vent"].args == {"tasks": 3, "note": "$HOME", "extra": "${TASKS}"}
        assert [run.probes["got"].recv_string() for _ in range(3)] == ["0", "1", "2"]
