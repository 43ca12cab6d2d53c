"""The "all N node(s) ready" line: said once every node got ready, in whatever order the
processes' reports are read (each process reports on a connection of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from topo.file.validate import load
from topo.plan.planner import make_plan
from topo.process.control import Kind, Message
from topo.supervisor.supervise import Supervisor

TOPOLOGY = """\
topology: lines
nodes:
  a: {run: m:f, process: pa, sockets: {out: PUSH}}
  b: {run: m:f, process: pb, sockets: {in: PULL}}
links: [a.out -> b.in]
"""


class Said:
    """Stands for the reporter: keeps the supervisor's own lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def system(self, line: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(line)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _run(tmp_path: Path, reports: list[tuple[Kind, str]]) -> list[str]:
    file = tmp_path / "t.yaml"
    file.write_text(TOPOLOGY)
    said = Said()
    sup = Supervisor(make_plan(load(str(file))), said)  # type: ignore[arg-type]
    for kind, instance in reports:
        sup._handle(Message(kind, {"instance": instance, "gen": 0}))
    return [line for line in said.lines if "ready in" in line]


def test_a_ready_read_after_another_node_s_stopped_still_completes_all_ready(tmp_path: Path) -> None:
    """b got ready and was stopped (the run stopping as a sink returned) before a's READY,
    sent earlier, was read: before, the line was never said (a CI run of pipeline.yaml)."""
    lines = _run(tmp_path, [(Kind.READY, "b"), (Kind.STOPPED, "b"), (Kind.READY, "a")])
    assert [line.split(" in ")[0] for line in lines] == ["all 2 node(s) ready"]


def test_a_node_stopped_before_it_was_ready_keeps_all_ready_unsaid(tmp_path: Path) -> None:
    assert _run(tmp_path, [(Kind.STOPPED, "b"), (Kind.READY, "a")]) == []
