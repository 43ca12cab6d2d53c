"""sd_notify's server side: datagrams parsed, senders placed, hostile input dropped."""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import sys

import pytest

from topo.supervisor.notify import NotifySockets, Watchdogs, descends
from topo.supervisor.notifymsg import MAX_DATAGRAM, Notice, Refused, parse, printable


def test_the_keys_topo_acts_on_are_read():
    n = parse(b"READY=1\nSTATUS=warming up: 3/4\nWATCHDOG=1\n")
    assert n.ready and n.watchdog and n.status == "warming up: 3/4" and not n.stopping
    assert parse(b"STOPPING=1").stopping and parse(b"RELOADING=1").reloading
    assert parse(b"WATCHDOG=trigger").watchdog_trigger and not parse(b"WATCHDOG=trigger").watchdog
    assert parse(b"MAINPID=42\nWATCHDOG_USEC=5000000").mainpid == 42
    assert parse(b"READY=0").ready is False  # only "1" means it


def test_unknown_keys_are_ignored_and_the_last_of_a_key_counts():
    n = parse(b"FDSTORE=1\nERRNO=2\nSTATUS=a\nSTATUS=b\nX_VENDOR_THING=yes")
    assert n.status == "b" and n.ignored == ("FDSTORE", "ERRNO", "X_VENDOR_THING") and not n.ready


def test_a_status_may_be_empty_and_hold_equals_signs():
    assert parse(b"STATUS=").status == "" and parse(b"STATUS=a=b").status == "a=b"


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\n\n", "empty"),
    (b"READY=1\0", "NUL"),
    (b"STATUS=\xff\xfe", "not UTF-8"),
    (b"READY", "not KEY=VALUE"),
    (b"ready=1", "not KEY=VALUE"),
    (b"=1", "not KEY=VALUE"),
    (b"READY=1\n\x1b[2J", "not KEY=VALUE"),
    (b"MAINPID=-3", "not a number"),
    (b"WATCHDOG_USEC=" + b"9" * 30, "not a number"),
    (b"STATUS=" + b"x" * MAX_DATAGRAM, "over 4096 bytes"),
])
def test_a_bad_datagram_is_refused_whole_with_its_reason(data, why):
    with pytest.raises(Refused, match=why):
        parse(data)


def test_a_truncated_datagram_is_refused():
    with pytest.raises(Refused, match="over"):
        parse(b"READY=1", truncated=True)


def test_a_status_is_shown_on_one_line_without_control_characters():
    assert printable("a\x1b[31mred\nnext") == "a?[31mred?next"
    assert len(printable("x" * 500)) == 200


def test_descent_follows_the_parent_chain():
    parents = {10: 5, 5: 3, 3: 1, 7: 1}
    assert descends(10, 3, parents.get) is True
    assert descends(3, 3, parents.get) is True
    assert descends(7, 3, parents.get) is False
    assert descends(99, 3, parents.get) is None  # gone: nothing can be said
    assert descends(os.getpid(), os.getppid()) is True


@pytest.fixture
def sockets(tmp_path):
    said: list[str] = []
    socks = NotifySockets(str(tmp_path), said.append)
    yield socks, said
    socks.close_all()


def _send(path: str, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(data, path)


def _read(socks: NotifySockets, path_of: str) -> list[tuple[str, Notice]]:
    fd = next(fd for fd in socks.fds() if socks._by_fd[fd].name == path_of)
    return list(socks.read(fd))


def test_the_programs_own_datagrams_count(sockets):
    socks, said = sockets
    path = socks.open("worker")
    assert os.stat(path).st_mode & 0o777 == 0o600 and len(path.encode()) <= 107
    socks.started("worker", os.getpid())  # this test process plays the program
    _send(path, b"READY=1\nSTATUS=up")
    got = _read(socks, "worker")
    assert [(name, n.ready, n.status) for name, n in got] == [("worker", True, "up")] and said == []


def test_a_sender_gone_before_its_datagram_is_read_is_refused(sockets):
    socks, said = sockets
    path = socks.open("worker")
    socks.started("worker", os.getpid())
    code = f"import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', {path!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)  # a child, alive while it sends...
    # ... and reaped by now: its pid is gone, so it cannot be placed
    got = _read(socks, "worker")
    assert got == [] and "has exited" in said[0]


def test_a_live_descendants_datagram_counts(sockets):
    socks, said = sockets
    path = socks.open("worker")
    socks.started("worker", os.getpid())
    code = (f"import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', {path!r}); "
            "print('sent', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"sent\n"
        got = _read(socks, "worker")
    finally:
        child.communicate(timeout=30)
    assert [n.ready for _, n in got] == [True] and said == []


def test_a_strangers_datagram_is_refused(sockets):
    socks, said = sockets
    path = socks.open("worker")
    stranger = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        socks.started("worker", stranger.pid)  # the program is another process: we are not its child
        _send(path, b"READY=1")
        assert _read(socks, "worker") == []
    finally:
        stranger.communicate(timeout=30)
    assert "is not the program" in said[0] and f"pid {os.getpid()}" in said[0]


def test_before_the_program_runs_nothing_counts(sockets):
    socks, said = sockets
    path = socks.open("worker")
    _send(path, b"READY=1")
    assert _read(socks, "worker") == [] and "before the program was started" in said[0]


def test_hostile_datagrams_are_dropped_said_a_few_times_then_counted(sockets):
    socks, said = sockets
    path = socks.open("worker")
    socks.started("worker", os.getpid())
    for data in (b"\xff" * 10, b"x" * 70000, b"garbage", b"\x00\x01", b"READY", b"=", b"ready=1"):
        _send(path, data)
    _send(path, b"READY=1")
    got = _read(socks, "worker")
    assert [n.ready for _, n in got] == [True]
    assert len(said) == 5 and "not UTF-8" in said[0] and "over 4096" in said[1] and "only counted" in said[4]
    socks.close("worker")
    assert said[-1] == "worker: 7 sd_notify datagrams refused in all" and not os.path.exists(path)


def test_descriptors_sent_are_closed_once_read(sockets):
    socks, _ = sockets
    path = socks.open("worker")
    socks.started("worker", os.getpid())
    r, w = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]).tobytes())], 0, path)
    os.close(w)
    got = _read(socks, "worker")
    assert [n.barrier for _, n in got] == [True]
    assert os.read(r, 1) == b""  # every copy of the write end closed: a barrier's sender goes on
    os.close(r)


def test_a_flood_is_read_in_bounded_batches(sockets):
    socks, _ = sockets
    path = socks.open("worker")
    socks.started("worker", os.getpid())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        sent = 0
        try:
            while sent < 100:
                s.sendto(b"WATCHDOG=1", path)
                sent += 1
        except BlockingIOError:
            pass
    first = _read(socks, "worker")
    assert len(first) == min(sent, 64)


def test_a_restart_gets_a_fresh_socket(sockets):
    socks, _ = sockets
    old = socks.open("worker")
    new = socks.open("worker")
    assert old != new and not os.path.exists(old) and os.path.exists(new)


def test_a_path_too_long_for_a_unix_socket_is_refused_naming_it(tmp_path):
    from topo.errors import UsageError

    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with pytest.raises(UsageError, match="over the 107"):
        NotifySockets(str(deep), print).open("worker")


def test_watchdogs_fire_once_when_not_petted():
    w = Watchdogs()
    w.arm("a", 2.0, now=100.0)
    w.arm("b", 5.0, now=100.0)
    assert w.next_deadline() == 102.0
    w.pet("a", now=101.5)
    assert w.missed(103.0) == [] and w.next_deadline() == 103.5
    assert w.missed(104.0) == [("a", 2.0)] and w.missed(104.0) == []
    w.disarm("b")
    assert w.next_deadline() is None


def test_a_notice_relayed_by_an_agent_is_the_notice_heard():
    from topo.supervisor.notifymsg import from_wire, parse, to_wire

    heard = parse(b"READY=1\nSTATUS=warming up\nWATCHDOG=1\nMAINPID=42\nFDSTORE=1")
    wire = json.loads(json.dumps(to_wire(heard)))
    assert from_wire(wire) == heard
    assert from_wire({}) == Notice()


@pytest.mark.parametrize("wire", [{"ready": "yes"}, {"mainpid": True}, {"status": 3}, {"__class__": "x"},
                                  {"ignored": "FOO"}])
def test_a_relayed_notice_with_anything_but_its_fields_is_refused(wire):
    from topo.supervisor.notifymsg import Refused, from_wire

    with pytest.raises(Refused):
        from_wire(wire)
