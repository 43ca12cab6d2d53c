"""topo's Poller answers as zmq.Poller does, whatever the order things come and go in."""

from __future__ import annotations

import os
import random

import pytest
import zmq

from topo.supervisor.poller import Poller


def test_registered_entries_match_zmqs_after_random_registers_and_unregisters() -> None:
    rng = random.Random(7)
    ours, theirs = Poller(), zmq.Poller()
    for _ in range(3000):
        fd, flags = rng.randrange(40), rng.choice([0, zmq.POLLIN, zmq.POLLOUT, zmq.POLLIN | zmq.POLLOUT])
        if rng.random() < 0.3 and fd in dict(theirs.sockets):
            ours.unregister(fd)
            theirs.unregister(fd)
        else:
            ours.register(fd, flags)
            theirs.register(fd, flags)
        assert dict(ours.sockets) == dict(theirs.sockets)
    assert sorted(ours.sockets) == sorted(theirs.sockets)  # no entry twice


def test_unregistering_what_is_not_there_raises_as_zmqs_does() -> None:
    with pytest.raises(KeyError):
        Poller().unregister(3)
    with pytest.raises(KeyError):
        zmq.Poller().unregister(3)


def test_poll_says_which_descriptors_and_sockets_are_ready_after_some_are_taken_out() -> None:
    pipes = [os.pipe() for _ in range(6)]
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    try:
        pull.bind("inproc://poller-test")
        push.connect("inproc://poller-test")
        poller = Poller()
        poller.register(pull, zmq.POLLIN)
        for r, _ in pipes:
            poller.register(r, zmq.POLLIN)
        for r, _ in pipes[1:4]:
            poller.unregister(r)  # the last entries move into their places
        assert poller.poll(0) == []
        for _, w in pipes:
            os.write(w, b"x")
        push.send(b"m")
        assert pull.poll(5000)  # (the message has arrived: the poll below sees it)
        ready = dict(poller.poll(1000))
        assert set(ready) == {pull, pipes[0][0], pipes[4][0], pipes[5][0]}
        assert all(events == zmq.POLLIN for events in ready.values())
    finally:
        for fds in pipes:
            for fd in fds:
                os.close(fd)
        pull.close(0)
        push.close(0)
        ctx.term()
