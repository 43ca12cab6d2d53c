"""``topo hz``'s statistics: from the node's own times, lost copies counted in the rate."""

from __future__ import annotations

from topo.cli.observe import Window, format_sockets
from topo.supervisor.tapreader import TapMessage


def _window(times_ms: list[int], missed: int = 0) -> Window:
    window = Window()
    for t in times_ms:
        window.add(TapMessage("a", "out", "out", t * 1_000_000, [b"x" * 10]))
    window.missed = missed
    return window


def test_rate_and_intervals() -> None:
    text = _window([0, 100, 200, 300, 400]).summary(1.0)
    assert text == "rate 10.00 msg/s  min 100.000ms  max 100.000ms  std 0.000ms  100 B/s  (5 msgs)"


def test_lost_copies_count_in_the_rate_not_the_intervals() -> None:
    text = _window([0, 100, 400], missed=2).summary(1.0)
    assert text.startswith("rate 10.00 msg/s  min 100.000ms  max 300.000ms")
    assert text.endswith("(3 msgs, 2 missed by the tap)")


def test_too_few_for_a_rate() -> None:
    assert _window([5]).summary(2.0) == "1 message(s) in 2s: too few for a rate"


def test_sockets_table() -> None:
    entries = [{"instance": "w.0", "socket": "in", "type": "PULL", "state": "running", "transports": ["ipc"],
                "peers": ["v.out"], "rate": {"in": {"msgs": 2.5, "bytes": 25.0}, "out": {"msgs": 0, "bytes": 0}}},
               {"instance": "r", "socket": "in", "type": "SUB", "state": "running", "transports": ["tcp"],
                "peers": [], "remote": True}]
    lines = format_sockets("t/1", entries).splitlines()
    assert lines[0] == "t/1" and lines[1].split()[-8:] == ["IN", "msg/s", "IN", "B/s", "OUT", "msg/s", "OUT", "B/s"]
    assert lines[2].split() == ["w.0.in", "PULL", "running", "ipc", "v.out", "2.5", "25", "0.0", "0"]
    assert lines[3].split() == ["r.in", "SUB", "running", "tcp", "-", "-", "-", "-", "-"]
