"""Warnings through the command line and the harness, with real files and real runs: they
are shown and the command goes on; ``--strict`` and ``TOPO_STRICT=1`` make them errors.
A socket with no link is an error, and a warning with ``--lenient``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import Topo
from topo.errors import InvalidTopology
from topo.testing import TopologyWarning, up

LONELY = """\
topology: lonely
nodes:
  sender:
    run: "warnnodes:lonely"
    sockets:
      out: PUSH
      spare: PUB
      idle: {type: SUB, subscribe: [""]}
  sink: {run: "warnnodes:receive", sockets: {in: PULL}}
links:
  - sender.out -> sink.in
"""

WARNINGS = [
    "topo.yaml:7:7: warning: socket sender.spare (PUB) has no link: add one under `links:` or remove the socket [an error without --lenient]",
    "  7 |       spare: PUB",
    "    |       ^",
    "topo.yaml:8:7: warning: socket sender.idle (SUB) has no link: add one under `links:` or remove the socket [an error without --lenient]",
    "  8 |       idle: {type: SUB, subscribe: [\"\"]}",
    "    |       ^",
]


def test_a_socket_with_no_link_is_an_error(topo: Topo) -> None:
    path = topo.file(LONELY)
    result = topo.run("check", path)
    assert result.code == 2, result.err
    assert "topo.yaml:7:7: socket sender.spare (PUB) has no link: add one under `links:` or remove the socket\n" in result.err
    assert result.err.endswith("2 problems\n") and result.out == ""


def test_check_lenient_lists_the_warnings_and_exits_0(topo: Topo) -> None:
    path = topo.file(LONELY)
    result = topo.run("check", "--lenient", path)
    assert result.code == 0, result.err
    assert [line.replace(str(Path(path).parent) + "/", "") for line in result.err.splitlines()] == WARNINGS
    assert result.out == f"{path}: ok: topology lonely (2 nodes, 1 link) (2 warnings)\n"


@pytest.mark.parametrize("command", [["check"], ["plan"], ["plan", "--json"], ["graph"]])
def test_strict_makes_warnings_errors(topo: Topo, command: list[str]) -> None:
    path = topo.file(LONELY.replace('subscribe: [""]', "subscribe: []"))  # and a warning of its own
    assert topo.run(*command, "--lenient", path).code == 0
    result = topo.run(*command, "--strict", "--lenient", path)
    assert result.code == 2, result.out + result.err
    assert result.out == ""
    assert "7:7: socket sender.spare (PUB) has no link: add one under `links:` or remove the socket\n" in result.err
    assert "subscribes to nothing (`subscribe: []`)" in result.err and "[warning, an error with --strict]" in result.err
    assert result.err.endswith("3 problems\n")


def test_topo_strict_in_the_environment(topo: Topo) -> None:
    path = topo.file(LONELY)
    topo.env["TOPO_STRICT"] = "1"
    assert topo.run("check", "--lenient", path).code == 2
    topo.env["TOPO_STRICT"] = "0"
    assert topo.run("check", "--lenient", path).code == 0


def test_an_invalid_file_counts_its_warnings_apart(topo: Topo) -> None:
    path = topo.file(LONELY.replace("topology: lonely", "topology: Lonely"))
    result = topo.run("check", "--lenient", path)
    assert result.code == 2
    assert result.err.endswith("1 problem, 2 warnings\n")
    assert "topo.yaml:1:11: topology must be" in result.err


def test_up_shows_the_warnings_first_and_runs_to_the_end(topo: Topo) -> None:
    """A linkless socket is created (the node's code finds it) and neither the gate nor
    the delivery at return waits for it."""
    result = topo.run("up", "--lenient", topo.file(LONELY), "--no-color", timeout=60)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert re.match(r"topo\s+\| .*topo.yaml:7:7: warning: socket sender.spare \(PUB\) has no link", lines[0]), result.out
    assert lines[1].endswith("|   7 |       spare: PUB")
    assert sum("warning:" in line for line in lines) == 2  # once each, at the start
    started = next(i for i, line in enumerate(lines) if "started" in line)
    assert all("warning:" not in line for line in lines[started:])
    assert re.search(r"^sender\s+\| sockets: idle out spare$", result.out, re.M), result.out
    assert re.search(r"^sink\s+\| got hello$", result.out, re.M), result.out
    assert "every node returned" in result.out
    assert topo.socket_files() == [] and topo.run_dirs() == []


def test_up_strict_starts_nothing(topo: Topo) -> None:
    result = topo.run("up", "--strict", "--lenient", topo.file(LONELY))
    assert result.code == 2
    assert "has no link" in result.err and "started" not in result.out
    assert topo.run_dirs() == []


def test_a_yaml_mistake_through_the_command(topo: Topo) -> None:
    path = topo.file(LONELY.replace("    run: \"warnnodes:lonely\"", "    run \"warnnodes:lonely\""))
    result = topo.run("check", path)
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}:4:8: missing `:` after `run`",
        '  4 |     run "warnnodes:lonely"',
        "    |        ^",
        "1 problem",
    ]


def test_the_harness_gives_the_warnings_and_takes_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPO_STRICT", raising=False)
    path = tmp_path / "topo.yaml"
    path.write_text(LONELY)
    with pytest.warns(TopologyWarning) as issued:
        with up(str(path), lenient=True) as run:
            assert run.wait_for_output("sink", r"^got hello$")
            assert run.wait_for("sender").returned
    assert [str(w.message).splitlines()[0] for w in issued] == [str(w) for w in run.warnings]
    assert [(w.pos.line, w.severity) for w in run.warnings] == [(7, "warning"), (8, "warning")]
    for how in ({"strict": True, "lenient": True}, {}):
        with pytest.raises(InvalidTopology) as info:
            up(str(path), **how)  # type: ignore[arg-type]
        assert len(info.value.errors) == 2
