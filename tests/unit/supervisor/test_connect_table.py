"""When the supervisor sends each process its CONNECT table: as soon as every endpoint that
process connects to is bound, not when the whole run is (a process that starts late, or a
node that never binds, no longer holds up the processes that do not depend on it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from topo.process.control import Kind, Message
from topo.plan.planner import make_plan
from topo.supervisor.supervise import Supervisor
from topo.file.validate import load

TOPOLOGY = """\
topology: table
nodes:
  pub: {run: m:f, process: pa, sockets: {out: PUB}}
  sub: {run: m:f, process: pb, sockets: {in: {type: SUB, subscribe: [""]}}}
  sink: {run: m:f, process: pc, sockets: {in: PULL}}
  source: {run: m:f, process: pd, sockets: {out: PUSH}}
links:
  - pub.out -> sub.in
  - source.out -> sink.in
"""


class Reporter:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class Sent:
    """Stands for the supervisor's Processes: records what it is asked to send."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, str]] = {}

    def send(self, proc: Any, message: Message) -> None:
        assert message.kind is Kind.CONNECT
        self.tables[proc.name] = message["endpoints"]

    def admit_keys(self, proc: Any) -> None:
        """No host is ever added here: nothing to tell."""


def supervisor(tmp_path: Path) -> tuple[Supervisor, Sent]:
    file = tmp_path / "t.yaml"
    file.write_text(TOPOLOGY)
    sup = Supervisor(make_plan(load(str(file))), Reporter())
    sent = Sent()
    sup.processes = sent  # type: ignore[assignment]
    return sup, sent


def bound(sup: Supervisor, instance: str, endpoints: dict[str, str]) -> None:
    sup._handle(Message(Kind.BOUND, {"instance": instance, "endpoints": endpoints, "gen": 0}))


def binder(sup: Supervisor, a: str, b: str) -> tuple[str, str, str, str]:
    """(binding instance, its endpoint key, connecting process, binding process) of the
    link between instances a and b, as the plan decided it."""
    key, e = next((k, e) for k, e in sup.plan.endpoints.items() if e.instance in (a, b))
    other = b if e.instance == a else a
    return e.instance, key, sup.plan.instances[other].process, sup.plan.instances[e.instance].process


def test_a_process_gets_its_table_once_its_peers_are_bound_whatever_the_others_do(tmp_path: Path) -> None:
    sup, sent = supervisor(tmp_path)
    for proc in ("pa", "pb", "pc", "pd"):
        sup._handle(Message(Kind.HELLO, {"process": proc, "gen": 0}))
    first, first_key, first_dialer, first_binder = binder(sup, "pub", "sub")
    second, second_key, second_dialer, second_binder = binder(sup, "source", "sink")
    # processes that connect to nothing have nothing to wait for
    assert set(sent.tables) == {first_binder, second_binder}
    bound(sup, first, {first_key: "ipc:///run/a"})
    assert sent.tables[first_dialer] == {first_key: "ipc:///run/a"}
    assert second_dialer not in sent.tables  # its peer has not bound yet
    bound(sup, second, {second_key: "tcp://127.0.0.1:5555"})
    assert sent.tables[second_dialer] == {second_key: "tcp://127.0.0.1:5555"}


def test_a_process_that_has_not_said_hello_gets_nothing_yet(tmp_path: Path) -> None:
    sup, sent = supervisor(tmp_path)
    first, key, dialer, _ = binder(sup, "pub", "sub")
    bound(sup, first, {key: "ipc:///run/a"})
    assert dialer not in sent.tables
    sup._handle(Message(Kind.HELLO, {"process": dialer, "gen": 0}))
    assert list(sent.tables) == [dialer]
