"""A recording's tap makes the node wait for room instead of dropping, within a bound;
a taker that stops taking for ``stall`` seconds turns it into a dropping tap."""

from __future__ import annotations

import threading

from topo.observe.taprecorder import _Taps
from topo.process.taprecord import RecordTap


def test_the_node_waits_for_room_and_nothing_is_dropped() -> None:
    tap = RecordTap(stall=10.0)
    tap.capacity = tap.limit = 3
    done = threading.Event()

    def node() -> None:
        for i in range(10):
            tap.sent(b"%d" % i, 0)
        done.set()

    thread = threading.Thread(target=node)
    thread.start()
    taken: list[bytes] = []
    while not done.is_set() or tap.queued:
        for copy in tap.take():
            taken += copy.frames
        tap.taken()
        assert tap.queued <= 3  # bounded whatever the node does
    thread.join(5)
    assert taken == [b"%d" % i for i in range(10)] and tap.dropped == 0 and not tap.stalled


def test_multipart_and_received_messages_wait_too() -> None:
    tap = RecordTap(stall=10.0)
    tap.limit = 1
    tap.sent(b"a", 1)
    tap.sent(b"b", 0)
    thread = threading.Thread(target=lambda: tap.received(b"c", 0))
    thread.start()
    thread.join(0.05)
    assert thread.is_alive()  # waiting for room, not dropping
    assert [c.frames for c in tap.take()] == [[b"a", b"b"]]
    tap.taken()
    thread.join(5)
    assert [c.frames for c in tap.take()] == [[b"c"]] and tap.dropped == 0


def test_no_copy_taken_for_stall_seconds_drops_from_then_on() -> None:
    tap = RecordTap(stall=0.05)
    tap.limit = 1
    tap.sent(b"kept", 0)
    tap.sent(b"waits, then dropped", 0)  # returns after the stall: a dead recorder holds no node
    assert tap.stalled and not tap.blocking and tap.dropped == 1
    tap.sent(b"dropped at once", 0)
    assert tap.dropped == 2 and [c.frames for c in tap.take()] == [[b"kept"]]
    assert "took no copy for 0.05s" in tap.stall_notice("a.out")


def test_release_ends_a_wait_at_once() -> None:
    tap = RecordTap(stall=60.0)
    tap.limit = 1
    tap.sent(b"kept", 0)
    thread = threading.Thread(target=lambda: tap.sent(b"x", 0))
    thread.start()
    thread.join(0.05)
    assert thread.is_alive()
    tap.release()  # the run stops
    thread.join(5)
    assert not thread.is_alive() and tap.dropped == 1 and not tap.stalled


def test_the_recorder_counts_missed_copies_per_tap_and_its_markers() -> None:
    taps = _Taps()
    key = (b"record:out", b"source")
    taps.marker(key, b"on", 0)
    assert taps.lost(key, 0) == 0
    assert taps.lost(key, 3) == 3      # 3 lost before this copy
    taps.marker(key, b"missed", 5)     # 2 more, with no copy to carry them
    assert taps.lost(key, 5) == 2 and taps.missed == 5
    assert not taps.all_ended() and taps.unended() == ["source"]
    taps.marker(key, b"end", 5)
    assert taps.all_ended()
    taps.marker(key, b"on", 0)         # a restarted process counts from zero again
    assert taps.lost(key, 1) == 1 and not taps.all_ended()
