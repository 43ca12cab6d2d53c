"""Stop bookkeeping: a stop or a restart decided before a process's HELLO still reaches it."""

from __future__ import annotations

import signal
import time

import pytest

from topo.process.control import Kind, Message
from topo.supervisor.runstate import ABANDON_AFTER, KILL_AFTER, Every, NodeState, ProcState, next_deadline, was_ready
from topo.supervisor.stopping import Stopping


class FakeCommands:
    """Records what would be sent to and signalled at each process."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.signals: list[tuple[str, signal.Signals]] = []
        self.abandoned: list[tuple[str, str]] = []

    def send(self, proc: ProcState, message: Message) -> None:
        self.sent.append((proc.name, message.kind.value, str(message.data.get("reason"))))

    def signal(self, proc: ProcState, sig: signal.Signals) -> None:
        self.signals.append((proc.name, sig))

    def abandon(self, proc: ProcState, why: str) -> None:
        self.abandoned.append((proc.name, why))


def make(*names: str, grace: float = 5.0, external: tuple[str, ...] = ()) -> tuple[Stopping, FakeCommands, list[str]]:
    procs = {n: ProcState(n, (f"{n}-node",), pid=100 + i) for i, n in enumerate(names)}
    nodes = {f"{n}-node": NodeState(f"{n}-node", n) for n in names}
    commands, said = FakeCommands(), []
    stopping = Stopping(procs, nodes, commands, said.append, grace=grace, external=external)
    for proc in procs.values():
        stopping.started(proc)
    return stopping, commands, said


STOP = Kind.STOP.value


def test_a_hello_before_the_stop_is_wired_and_told_when_the_stop_begins() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    assert stopping.hello(proc, 0) is True and proc.hello
    assert commands.sent == []
    assert stopping.begin(10.0, "b failed") == []
    assert commands.sent == [("a", STOP, "b failed")]


def test_a_hello_after_the_stop_began_is_told_at_once_and_not_wired() -> None:
    stopping, commands, _ = make("early", "late")
    stopping.hello(stopping.procs["early"], 0)
    stopping.begin(10.0, "bad failed")
    assert commands.sent == [("early", STOP, "bad failed")]
    assert stopping.hello(stopping.procs["late"], 0) is False
    assert commands.sent[-1] == ("late", STOP, "bad failed")


def test_an_ended_process_is_not_told() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.hello(proc, 0)
    proc.ended = True
    stopping.begin(1.0, "x")
    assert commands.sent == []


def test_a_remote_process_still_pending_is_never_started() -> None:
    stopping, commands, _ = make("here", "there")
    there = stopping.procs["there"]
    there.remote, there.pending = "h1", True
    assert stopping.may_start()
    assert stopping.begin(1.0, "Ctrl-C") == [there]
    assert not there.pending and not stopping.may_start()
    assert commands.sent == []  # neither had said hello


def test_a_replaced_process_that_had_not_said_hello_is_stopped_by_its_late_hello() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.replace(proc, "restart of a-node")
    proc.generation += 1  # what the supervisor does next
    assert commands.sent == []  # nobody to route it to yet
    assert stopping.hello(proc, 0) is False
    assert commands.sent == [("a", STOP, "restart of a-node")]
    assert not proc.hello  # the next process's hello is still to come


def test_a_replaced_process_that_had_said_hello_is_stopped_at_once() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.hello(proc, 0)
    stopping.replace(proc, "restart of a-node")
    assert commands.sent == [("a", STOP, "restart of a-node")]


def test_a_stale_hello_after_the_replacement_started_is_ignored() -> None:
    """The old process is gone (the new one starts only then): a STOP by name would reach
    the new one."""
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.replace(proc, "restart")
    proc.generation += 1
    proc.ended = True  # the old process ended
    assert stopping.hello(proc, 0) is False
    proc.ended = False
    stopping.started(proc)  # generation 1 runs
    assert stopping.hello(proc, 0) is False
    assert commands.sent == []
    assert stopping.hello(proc, 1) is True


def test_a_replacement_of_an_ended_process_sends_nothing() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    proc.ended = True
    stopping.replace(proc, "restart")
    proc.generation += 1
    assert stopping.hello(proc, 0) is False
    assert commands.sent == []


def test_pending_restarts_are_dropped_when_the_stop_begins() -> None:
    stopping, _, _ = make("a")
    stopping.procs["a"].restart_at = 99.0
    stopping.begin(1.0, "x")
    assert stopping.procs["a"].restart_at is None


def test_escalation_sigterm_after_the_grace_then_sigkill() -> None:
    stopping, commands, said = make("a", "b", "probe", grace=5.0, external=("probe",))
    stopping.procs["a"].hello = True  # its nodes run: told to stop, it has the grace period
    stopping.procs["b"].ended = True
    stopping.escalate(100.0)
    assert commands.signals == []  # no stop yet
    stopping.begin(100.0, "x")
    assert stopping.next_deadline() == 105.0
    stopping.escalate(104.9)
    assert commands.signals == []
    stopping.escalate(105.0)
    assert commands.signals == [("a", signal.SIGTERM)]
    assert said == ["process a did not stop within 5s (a-node): SIGTERM"]
    stopping.escalate(105.5)
    assert commands.signals == [("a", signal.SIGTERM)]  # once
    stopping.escalate(105.0 + KILL_AFTER)
    assert commands.signals == [("a", signal.SIGTERM), ("a", signal.SIGKILL)]
    stopping.escalate(105.0 + KILL_AFTER + ABANDON_AFTER + 1)
    assert commands.signals == [("a", signal.SIGTERM), ("a", signal.SIGKILL)]  # once
    assert commands.abandoned == []  # a local process: SIGKILL is the end of it


def test_a_remote_process_whose_agent_does_not_report_its_end_is_abandoned() -> None:
    stopping, commands, _ = make("there", grace=1.0)
    there = stopping.procs["there"]
    there.remote = "far"
    stopping.begin(100.0, "Ctrl-C")
    stopping.escalate(101.0)
    stopping.escalate(101.0 + KILL_AFTER)
    assert commands.signals == [("there", signal.SIGTERM), ("there", signal.SIGKILL)]
    assert there.kill_sent == 101.0 + KILL_AFTER
    # the loop's next wake: the abandonment, not the SIGKILL already sent
    now = time.monotonic()
    there.term_sent, there.kill_sent = now - 1.5, now - 0.5
    assert next_deadline(stopping.procs, None) == now - 0.5 + ABANDON_AFTER
    there.kill_sent = 101.0 + KILL_AFTER
    stopping.escalate(101.0 + KILL_AFTER + ABANDON_AFTER - 0.1)
    assert commands.abandoned == []
    stopping.escalate(101.0 + KILL_AFTER + ABANDON_AFTER)
    assert commands.abandoned == [("there", f"its agent did not report the end of process there "
                                            f"{ABANDON_AFTER:g}s after SIGKILL")]
    assert commands.signals == [("there", signal.SIGTERM), ("there", signal.SIGKILL)]  # SIGKILL once


def test_a_second_ctrl_c_ends_the_grace_now() -> None:
    stopping, commands, said = make("a")
    stopping.procs["a"].hello = True
    stopping.begin(100.0, "Ctrl-C")
    stopping.hurry(101.0)
    stopping.escalate(101.0)
    assert commands.signals == [("a", signal.SIGTERM)]
    assert "after a second Ctrl-C" in said[0]


@pytest.mark.parametrize("states, ready", [
    ({"a": ("running", 1.0), "b": ("running", 1.0)}, True),
    ({"a": ("exited", 1.0), "b": ("running", 1.0)}, True),  # returned after its gate opened
    ({"a": ("failed", None), "b": ("running", 1.0)}, False),  # the bug: failed counted as ready
    ({"a": ("stopped", None), "b": ("running", 1.0)}, False),
    # stopped after its READY, another's READY read after that STOPPED (one connection each)
    ({"a": ("stopped", 1.0), "b": ("running", 1.0)}, True),
    ({"a": ("bound", None), "b": ("running", 1.0)}, False),
])
def test_all_ready_means_every_node_was_ready(states: dict[str, tuple[str, float | None]], ready: bool) -> None:
    nodes = [NodeState(n, n, state=s, started=t) for n, (s, t) in states.items()]
    assert Every(was_ready)({n.name: n for n in nodes}) is ready  # the supervisor's check


def test_a_returned_node_restarting_delivers_first_and_is_stopped_after_the_grace() -> None:
    stopping, commands, _ = make("a", grace=5.0)
    proc = stopping.procs["a"]
    stopping.hello(proc, 0)
    proc.restart_at = 100.0
    stopping.deliver_first(proc, "restart of a-node")
    assert commands.sent == []  # not stopped at the restart: it is delivering
    stopping.late_stops(104.9)
    assert commands.sent == []
    stopping.late_stops(105.0)
    assert commands.sent == [("a", STOP, "restart: delivery took the grace period")]
    stopping.late_stops(106.0)
    assert len(commands.sent) == 1  # told once


def test_a_process_that_ended_while_delivering_is_not_told() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.hello(proc, 0)
    proc.restart_at = 1.0
    stopping.deliver_first(proc, "restart of a-node")
    proc.ended = True
    stopping.late_stops(100.0)
    assert commands.sent == [] and proc.stop_late_at is None


def test_a_restart_before_the_hello_cannot_wait_for_delivery() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    proc.restart_at = 1.0
    stopping.deliver_first(proc, "restart of a-node")
    proc.generation += 1  # as the supervisor does once a restart is decided
    assert proc.stop_late_at is None
    stopping.hello(proc, 0)  # the replaced process's late hello: the restart's stop
    assert commands.sent == [("a", STOP, "restart of a-node")]


def test_nodes_waiting_for_a_restart_end_stopped_when_the_stop_begins() -> None:
    stopping, _, _ = make("a")
    proc, node = stopping.procs["a"], stopping.nodes["a-node"]
    proc.ended, proc.restart_at = True, 50.0
    node.state, node.error = "restarting", "ValueError: broken"
    stopping.begin(10.0, "topo down")
    assert (node.state, node.error, proc.restart_at) == ("stopped", None, None)


def test_a_process_not_started_because_of_an_early_stop_ends_with_its_nodes_stopped() -> None:
    stopping, commands, _ = make("a")
    proc = stopping.procs["a"]
    stopping.not_started(proc)
    assert proc.ended and stopping.nodes["a-node"].state == "stopped"
    stopping.begin(10.0, "Ctrl-C")
    stopping.escalate(20.0)
    assert commands.sent == [] and commands.signals == []  # nothing to tell, nothing to kill


def test_a_process_still_starting_is_sent_sigterm_when_the_stop_begins() -> None:
    stopping, commands, _ = make("starting", "running", "there", "probe", external=("probe",))
    stopping.procs["running"].hello = True
    stopping.procs["there"].remote = "far"  # (its agent is told by STOP once it says hello)
    stopping.begin(100.0, "Ctrl-C")
    assert commands.signals == [("starting", signal.SIGTERM)]  # no node of it ran: nothing to wait for
    assert stopping.procs["starting"].stopped_unborn and not stopping.procs["running"].stopped_unborn
    assert [(name, kind) for name, kind, _ in commands.sent] == [("running", STOP)]
