"""Where a PUB ``send``'s time goes, layer by layer (``bench/datapath.py`` unless
--no-experiment): pyzmq's PUB and XPUB, topo's PubSocket, and the variants that explain it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import zmq

from bench import dp_nodes
from bench.common import median


def send_cost_breakdown(rounds: int, n: int = 100_000) -> list[list[str]]:
    """ns per ``send`` of 64 B on a socket with no peer (nothing but the call path), for
    pyzmq's PUB and XPUB, topo's PubSocket as this tree builds it, and the PubSocket's
    ``send`` as it was before this benchmark's finding, whole and without its counter.

    No peer: libzmq drops the message at once, so what is left is the Python call path
    (pyzmq's sugar ``send``, the Cython ``send``, libzmq's send with nobody to send to).
    Variants interleaved, ``rounds`` times; median.
    """
    import itertools

    from topo.process import sockets as topo_sockets
    from topo.file.model import SocketType
    from topo.plan.planner import PlannedSocket

    planned = PlannedSocket(name="pub", type=SocketType.PUB, subscribe=(), options={}, binds=(),
                            connects=(), peers=())
    ctx: zmq.Context[Any] = zmq.Context()

    def topo_pub() -> zmq.Socket[Any]:
        return topo_sockets.build(ctx, planned, 0)  # exactly as a node gets it

    def pyzmq(kind: int, verbose: bool = False) -> Callable[[], zmq.Socket[Any]]:
        def make() -> zmq.Socket[Any]:
            sock: zmq.Socket[Any] = ctx.socket(kind)
            if verbose:
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            return sock
        return make

    def swapped(cls: Any) -> Callable[[], zmq.Socket[Any]]:
        def make() -> zmq.Socket[Any]:
            sock = topo_pub()
            sock.__class__ = cls
            return sock
        return make

    variants: list[tuple[str, Callable[[], zmq.Socket[Any]]]] = [
        ("pyzmq PUB (what the baseline sends on)", pyzmq(zmq.PUB)),
        ("pyzmq XPUB, XPUB_VERBOSE (what topo's PUB is underneath)", pyzmq(zmq.XPUB, True)),
        ("topo PubSocket, this tree (`topo.process.sockets.build`)", topo_pub),
        ("PubSocket.send before the fix (topo 83e10e3, rebuilt in bench/dp_nodes.py)",
         swapped(dp_nodes.old_pub_class())),
        ("  its layer alone: the override, `super().send`, `**kwargs`, no counter",
         swapped(dp_nodes.old_pub_class(layer_only=True))),
        ("this tree's send, draining every 1024 sends with the backend's `get` (a proposal)",
         swapped(dp_nodes.rare_drain_class())),
    ]
    names = itertools.count()
    payload = b"x" * 64
    samples: dict[str, list[float]] = {name: [] for name, _ in variants}
    try:
        for r in range(rounds):
            for name, make in (variants if r % 2 == 0 else variants[::-1]):
                sock = make()
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(f"inproc://breakdown-{next(names)}")
                started = time.perf_counter()
                for _ in range(n):
                    sock.send(payload)
                samples[name].append((time.perf_counter() - started) / n * 1e9)
                sock.close()
    finally:
        ctx.term()
    med = {name: median(xs) for name, xs in samples.items()}
    base = med[variants[0][0]]
    rows = [[name, f"{value:.0f} ns", f"{value - base:+.0f} ns" if i else ""]
            for i, (name, value) in enumerate(med.items())]
    old, layer = med[variants[3][0]], med[variants[4][0]]
    counter = ("  its counter: `self._topo_sends += 1` through pyzmq's `__setattr__`, `%` "
               "(before the fix − layer alone)")
    rows.insert(5, [counter, f"{old - layer:.0f} ns", ""])
    return rows
