"""The sockets topo builds, with real zmq: a PUB stays a PUB and its gate's XPUB never
lets subscription messages pile up after the node starts."""

from __future__ import annotations

import zmq

from topo.file.model import SocketType
from topo.plan.planner import PlannedSocket
from topo.process.sockets import DRAIN_EVERY, PubSocket, build


def _planned(kind: SocketType, **kw: object) -> PlannedSocket:
    return PlannedSocket(name="s", type=kind, subscribe=tuple(kw.get("subscribe", ())),  # type: ignore[arg-type]
                         options=dict(kw.get("options", {})), binds=(), connects=(), peers=())  # type: ignore[call-overload]


def test_a_pub_is_built_as_a_verbose_xpub_that_cannot_be_read_by_mistake() -> None:
    ctx = zmq.Context()
    try:
        sock = build(ctx, _planned(SocketType.PUB, options={"sndhwm": 77}), linger_ms=0)
        assert isinstance(sock, PubSocket)
        assert sock.getsockopt(zmq.SNDHWM) == 77
        try:
            sock.recv()
        except zmq.ZMQError as err:
            assert err.errno == zmq.ENOTSUP
        else:
            raise AssertionError("a blocking recv on a PUB must fail")
        sock.close()
    finally:
        ctx.term()


def test_subscription_churn_after_the_gate_does_not_pile_up() -> None:
    ctx = zmq.Context()
    pub = build(ctx, _planned(SocketType.PUB), linger_ms=0)
    pub.bind("inproc://churn")
    sub = ctx.socket(zmq.SUB)
    sub.connect("inproc://churn")
    try:
        for i in range(2000):
            topic = f"t{i}".encode()
            sub.setsockopt(zmq.SUBSCRIBE, topic)
            sub.setsockopt(zmq.UNSUBSCRIBE, topic)
            pub.send(b"x")
        assert isinstance(pub, PubSocket)
        # what is left unread is at most what arrived since the last drain
        left = pub.drain_subscriptions()
        assert left <= 2 * DRAIN_EVERY + 2, left
        assert pub.drain_subscriptions() == 0
    finally:
        sub.close(0)
        pub.close(0)
        ctx.term()


def test_without_the_drain_the_same_churn_would_pile_up() -> None:
    """The control: an XPUB that nobody reads keeps every subscription message."""
    ctx = zmq.Context()
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    xpub.bind("inproc://churn2")
    sub = ctx.socket(zmq.SUB)
    sub.connect("inproc://churn2")
    try:
        for i in range(500):
            sub.setsockopt(zmq.SUBSCRIBE, f"t{i}".encode())
            xpub.send(b"x")
        count = 0
        while xpub.poll(0):
            xpub.recv()
            count += 1
        assert count >= 500
    finally:
        sub.close(0)
        xpub.close(0)
        ctx.term()
