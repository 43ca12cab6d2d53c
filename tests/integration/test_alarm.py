"""The taps' sender thread's alarm (topo.process.alarm) with real zmq sockets: a wait with a
full PUSH ends when the reader makes room or the alarm rings, not on a timer."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Iterator

import pytest
import zmq

from topo.process.alarm import Alarm


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    """A PUSH filled to its high-water mark and its PULL, over inproc."""
    ctx: zmq.Context[Any] = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    pull = ctx.socket(zmq.PULL)
    for s in (push, pull):
        s.setsockopt(zmq.SNDHWM, 10)
        s.setsockopt(zmq.RCVHWM, 10)
        s.setsockopt(zmq.LINGER, 0)
    pull.bind("inproc://alarm")
    push.connect("inproc://alarm")
    sent = 0
    while True:
        try:
            push.send(b"x", zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            break
    assert sent > 0 and not push.getsockopt(zmq.EVENTS) & zmq.POLLOUT
    yield push, pull
    push.close()
    pull.close()
    ctx.term()


def _wait_until_polling(alarm: Alarm, deadline: float) -> None:
    while not alarm._polling:
        assert time.monotonic() < deadline, "the waiter never started its poll"
        time.sleep(0.001)


@contextlib.contextmanager
def _waiting(alarm: Alarm, push: zmq.Socket[Any]) -> Iterator[threading.Event]:
    """A thread in ``alarm.wait(30 s, [push])`` (its poll begun); the event: its wait ended."""
    done = threading.Event()

    def waiter() -> None:
        alarm.wait(30.0, [push])
        done.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    try:
        _wait_until_polling(alarm, time.monotonic() + 10)
        assert not done.is_set()
        yield done
    finally:
        alarm.set()
        thread.join(10.0)
        alarm.close()


def test_a_wait_with_a_full_push_ends_when_its_reader_makes_room(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    push, pull = pair
    with _waiting(Alarm(), push) as done:
        while pull.poll(0):  # the reader takes everything: the PUSH is below its low-water mark
            pull.recv()
        assert done.wait(10.0), "the wait did not end when the PUSH had room again (30 s)"
        assert int(push.getsockopt(zmq.EVENTS)) & zmq.POLLOUT


def test_a_wait_with_a_full_push_ends_when_the_alarm_is_set(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    push, _ = pair
    alarm = Alarm()
    with _waiting(alarm, push) as done:
        alarm.set()
        assert done.wait(10.0), "set() did not wake a waiter polling its sockets (30 s)"
        assert not alarm.is_set()  # consumed by the wait: a loop of waits does not spin


def test_a_set_before_the_wait_ends_it_at_once_and_once(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    push, _ = pair
    alarm = Alarm()
    alarm.set()
    begun = time.monotonic()
    alarm.wait(30.0, [push])
    assert time.monotonic() - begun < 10.0
    begun = time.monotonic()
    alarm.wait(0.2, [push])  # nothing rang since: it waits its time (the PUSH is still full)
    assert time.monotonic() - begun >= 0.15
    alarm.close()
    alarm.set()  # after close: the event only, no write to a closed descriptor
    assert alarm.is_set()
