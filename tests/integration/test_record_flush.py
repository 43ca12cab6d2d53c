"""An agent's last recorded copies reach a supervisor that is behind: the agent keeps its
way up open until the supervisor has read its FLUSHED (:mod:`topo.hosts.recordfeed`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import zmq

from topo.supervisor import recordways
from topo.supervisor.recordways import CREDIT


#: The agent's side at its end, in a process of its own (its exit is what loses the
#: copies): its process's recorded copies relayed up, flushed, then its way closed with
#: a linger and its context ended, as the agent does, then the exit. The process is a
#: thread that does what a recorded process does: its copies, its ``end``, then its close
#: once the agent says it read that ``end`` (:mod:`topo.process.recordack`; a PUSH that
#: hung up while the agent's PULL was full lost the kernel's last bytes: 2 of 3002 here,
#: 4 runs in 150 under load, before the stand-in asked). ``LATE`` is what the process
#: does before its second half.
AGENT_END = """
import os, sys, threading, time, zmq
from pathlib import Path
from topo.hosts.recordfeed import RecordFeed
from topo.process.recordack import ask
from topo.supervisor.recordways import CREDIT, FLUSHED
ctx = zmq.Context()
feed = RecordFeed(ctx, Path(sys.argv[2]))
up = ctx.socket(zmq.DEALER)
up.identity = b"h1"
up.sndhwm = 100_000
up.connect(sys.argv[1])
count = int(sys.argv[3])
answered = []

def process():
    push = ctx.socket(zmq.PUSH)
    push.sndhwm = 100_000
    push.connect(feed.endpoint)
    push.send_multipart([b"record:out", b"src", b"on", b"1", b"0"])
    for n in range(count):
        if n == count // 2:
            LATE
        push.send_multipart([b"record:out", b"src", b"out", b"2", b"0", b"%d" % n, b"x" * 200])
    push.send_multipart([b"record:out", b"src", b"end", b"77", b"0"])
    answered.append(ask(ctx, feed.ack_endpoint, [(b"record:out", b"src", 77)], time.monotonic() + 10))
    push.close(linger=0)

worker = threading.Thread(target=process)
worker.start()

def read():  # what the agent's relay does with what the supervisor sends
    while up.poll(0):
        frames = up.recv_multipart()
        if frames[0] == CREDIT:
            feed.granted(frames)
        elif frames[0] == FLUSHED:
            feed.confirm(frames)

# as in the agent, whose processes' ends are read before its flush (topo.process.recordack):
# the tap's "on" is there to be read (flushing an empty feed ends at once, loaded or not)
assert feed.pull.poll(10_000)
feed.flush(up, read, time.monotonic() + 10)
# the agent's relay answers its processes until they have ended, and its flush comes after
# their ends; this process is a thread still running at the flush, so its question may come
# after FLUSHED was confirmed (it did, under load: "confirmed not answered")
bound = time.monotonic() + 12
while worker.is_alive() and time.monotonic() < bound:
    if feed.ack.poll(20):
        feed.asked()
worker.join(1)
print("confirmed" if feed.confirmed else "not confirmed", "answered" if answered == [True] else "not answered", flush=True)
feed.close()
up.close(linger=3000)
ctx.term()
os._exit(0)
"""


def read_until_flushed(router: zmq.Socket[Any], got: list[list[bytes]], within: float) -> None:
    """What the supervisor does at an agent's end: reads its copies into ``got`` until its
    FLUSHED, answered (or ``within`` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not (got and got[-1][1] == recordways.FLUSHED):
        if router.poll(100):
            frames = router.recv_multipart()
            got.append(frames)
            if frames[1] == recordways.FLUSHED:
                router.send_multipart([frames[0], recordways.FLUSHED])


@contextlib.contextmanager
def _agent(script: str, tmp_path: Path, count: int, rcvhwm: int | None = None) \
        -> Iterator[tuple[zmq.Socket[Any], subprocess.Popen[str]]]:
    """The supervisor's ROUTER and ``script`` run as the agent relaying ``count`` copies up
    to it; the agent killed and the context ended however the test ends."""
    ctx: zmq.Context[Any] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    if rcvhwm is not None:
        router.rcvhwm = rcvhwm
    port = router.bind_to_random_port("tcp://127.0.0.1")
    agent = subprocess.Popen([sys.executable, "-c", script, f"tcp://127.0.0.1:{port}", str(tmp_path), str(count)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield router, agent
    finally:
        agent.kill()
        agent.wait()
        ctx.destroy(linger=0)


def _assert_every_copy(got: list[list[bytes]], count: int, out: str) -> None:
    """The supervisor read every copy (``on``, ``count`` copies, ``end``), the agent saw
    its FLUSHED answered, and the process was told its ``end`` was read."""
    copies = [f for f in got if f[1] == b"c"]
    numbers = {int(f[7]) for f in copies if len(f) == 9}  # [agent, COPY, tap, instance, out, ...]
    missing = sorted(set(range(count)) - numbers)
    markers = [f[4] for f in copies if len(f) != 9]
    flushed = bool(got) and got[-1][1] == recordways.FLUSHED
    assert len(copies) == count + 2 and markers == [b"on", b"end"], \
        f"{count + 2 - len(copies)} of {count + 2} lost: copies {missing[:10]}, markers {markers}, " \
        f"{len(got)} messages read, FLUSHED {'read' if flushed else 'not read'}, the agent said {out.strip()!r}"
    assert out.strip() == "confirmed answered"


def test_the_agent_keeps_its_way_up_open_until_the_supervisor_read_its_flushed(tmp_path: Path) -> None:
    """The agent's end: once ZeroMQ has handed its last copies on, its context ends at once
    and the agent exits; a supervisor whose ROUTER was behind (its pipe full, so not
    reading the connection) then lost them, FLUSHED too (a remote flood's tail, 1 run in
    5 under load). So the flush waits for the supervisor's word that it read FLUSHED; the
    stand-in here reads nothing until the agent has exited (or a bound)."""
    count = 3000
    with _agent(_late_half("pass"), tmp_path, count, rcvhwm=4) as (router, agent):
        assert router.poll(10_000)
        got: list[list[bytes]] = [router.recv_multipart()]
        # the supervisor behind: nothing read until the agent exited (or 2 s), while it
        # still grants credits for what it passes on; bytes left unread on the agent's
        # side at its exit make its kernel reset the connection, dropping what it still had
        bound = time.monotonic() + 2.0
        while agent.poll() is None and time.monotonic() < bound:
            router.send_multipart([got[0][0], CREDIT, b"1"])
            try:
                agent.wait(0.005)
            except subprocess.TimeoutExpired:
                pass
        read_until_flushed(router, got, 10)
        out, _ = agent.communicate(timeout=15)
    _assert_every_copy(got, count, out)


def _late_half(wait: str) -> str:
    """The agent's side with its process's second half of copies, and the ``end``, sent once
    ``wait`` (a line of Python) returns."""
    return AGENT_END.replace("LATE", wait)


def test_the_agent_s_end_waits_for_a_process_s_last_copies_that_are_slow_to_come(tmp_path: Path) -> None:
    """Copies still on their way from a process when the agent's end begins (a process
    slow to send its last ones, or an agent not given the CPU for a while) are not the
    supervisor's stall: before, a second without a copy to send made the end give the
    supervisor up and say FLUSHED with them unsent."""
    slow = _late_half("time.sleep(1.5)  # the process's last copies come late (the condition, not a wait)")
    count = 200
    got: list[list[bytes]] = []
    with _agent(slow, tmp_path, count) as (router, agent):
        read_until_flushed(router, got, 20)
        out, _ = agent.communicate(timeout=15)
    _assert_every_copy(got, count, out)


def test_an_agent_stopped_for_a_while_during_its_end_still_sends_what_comes_after(tmp_path: Path) -> None:
    """An agent that went without the CPU for longer than the flush's stall bound (here:
    SIGSTOP for 1.5 s while it waits for a process's last copies) is not the supervisor
    letting nothing go. Before, the end looked at the time before trying again, took the
    pause for a stall, and said FLUSHED with the last copies and the ``end`` unsent
    (101 of 202 lost here)."""
    held = _late_half("sys.stdin.readline()  # the test's word: the process's last copies come now")
    count = 200
    got: list[list[bytes]] = []
    with _agent(held, tmp_path, count) as (router, agent):
        deadline = time.monotonic() + 20
        while len(got) < 1 + count // 2 and time.monotonic() < deadline:  # "on" and the first half
            if router.poll(100):
                got.append(router.recv_multipart())
        assert len(got) == 1 + count // 2, got[-1:]
        agent.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1.5)  # the fault: an agent given no CPU for longer than FLUSH_STALL
        finally:
            agent.send_signal(signal.SIGCONT)
        assert agent.stdin is not None
        agent.stdin.write("go\n")
        agent.stdin.flush()
        read_until_flushed(router, got, 20)
        out, _ = agent.communicate(timeout=15)
    _assert_every_copy(got, count, out)
