"""The outbox of a node process: output within a bound (the printing thread waits),
control events never dropped and kept in order behind the output written before them."""

from __future__ import annotations

import threading

from topo.process.control import Kind, Message
from topo.process.outbox import Outbox


def _line(text: str) -> Message:
    return Message(Kind.OUTPUT, {"instance": "a", "line": text, "err": False})


def test_a_writer_waits_for_room_and_goes_on_as_the_sender_takes() -> None:
    box = Outbox(max_output=10)
    box.put_output(_line("x" * 6), 6)
    done = threading.Event()

    def writer() -> None:
        box.put_output(_line("y" * 6), 6)  # 12 > 10: waits for the first to be taken
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert not done.wait(0.2)  # bounded: the second line is not queued (true at any speed)
    assert box.get().data["line"] == "x" * 6  # type: ignore[union-attr]
    assert done.wait(10)
    t.join(10)
    assert box.get().data["line"] == "y" * 6  # type: ignore[union-attr]


def test_one_line_longer_than_the_bound_still_goes() -> None:
    box = Outbox(max_output=10)
    box.put_output(_line("z" * 50), 50)
    assert len(box) == 1


def test_control_events_never_wait_and_survive_a_drop_in_order() -> None:
    box = Outbox(max_output=10)
    box.put_output(_line("a" * 10), 10)
    box.put(Message(Kind.EXITED, {"instance": "a"}))  # the bound is reached: no wait
    box.drop_output()
    box.put_output(_line("late"), 4)  # counted, not queued
    box.put(Message(Kind.BYE, {"process": "p"}))
    box.put(None)
    kinds = []
    while (m := box.get()) is not None:
        kinds.append(m.kind)
    assert kinds == [Kind.EXITED, Kind.BYE]
    assert box.dropped == 2


def test_a_drop_releases_a_waiting_writer() -> None:
    box = Outbox(max_output=5)
    box.put_output(_line("12345"), 5)
    t = threading.Thread(target=box.put_output, args=(_line("678"), 3))
    t.start()
    box.drop_output()
    t.join(10)
    assert not t.is_alive() and box.dropped == 2 and len(box) == 0
