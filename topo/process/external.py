"""Endpoints outside the topology: bound and connected after the gate, lingering bounded.

An external endpoint's peers are nobody topo starts, so nothing here waits for them:

- They are bound and connected once the node's gate is open, before the node is reported
  ready and its function called. The gate counts handshakes on a socket's monitor, and an
  outside client that connected early would stand for one of the node's real peers; after
  the gate the monitor is gone. A client that connects once the node is ready finds the
  endpoint bound; a connect is under way (ZeroMQ connects in the background and retries
  until the peer is there, whatever its name resolves to later).
- They are plain: no CURVE option is set around their bind or connect (topo has no key
  of an outsider), and libzmq copies a socket's options when it binds or connects, so a
  socket's CURVE links stay CURVE (:mod:`topo.process.curve`).
- At a node's return, what it queued for them is let out for a bounded time: the
  socket's own ``linger`` option when it is 0 or more, at most the run's grace; the
  grace without one. The run's stop does not cut that short (the run ends when its last
  node returns, and that node's broker must still get what it sent). topo
  cannot see whether an outsider has read what it was sent (its address may be a name,
  a wildcard, a NAT), so it does not hold the connections as it does for its own peers
  (:mod:`topo.process.delivery`); a peer that never comes costs that long, not forever.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import zmq

from topo.plan.share import SocketShare


def wire(planned_sockets: Iterable[SocketShare], sockets: Mapping[str, zmq.Socket[Any]], exposed: list[str]) -> None:
    """Binds and connects a node's external endpoints, adding the socket files it bound to
    ``exposed``; an error names the socket and the endpoint (a port already in use, an
    interface that does not exist)."""
    for planned in planned_sockets:
        sock = sockets[planned.name]
        for address in planned.external_binds:
            _ipv6(sock, address)
            try:
                sock.bind(address)
            except zmq.ZMQError as err:
                raise zmq.ZMQError(err.errno, f"{err.strerror} (binding {planned.name!r} to external "
                                              f"{address})") from None
            path = address[len("ipc://"):] if address.startswith("ipc://") else ""
            if path and not path.startswith("@"):  # "@": Linux's abstract names have no file
                exposed.append(path)
        for address in planned.external_connects:
            _ipv6(sock, address)
            try:
                sock.connect(address)
            except zmq.ZMQError as err:
                raise zmq.ZMQError(err.errno, f"{err.strerror} (connecting {planned.name!r} to external "
                                              f"{address})") from None


def _ipv6(sock: zmq.Socket[Any], address: str) -> None:
    if address.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)


def has_external(planned: SocketShare) -> bool:
    return bool(planned.external_binds or planned.external_connects)


def return_linger(planned: SocketShare, grace_ms: int) -> int:
    """The linger (ms) of a socket with external endpoints, closed after its node returned:
    the user's own, at most the run's grace (the supervisor's patience with a process that
    is stopping), the grace when it has none or an unbounded one."""
    chosen = planned.options.get("linger")
    if chosen is not None and int(chosen) >= 0:
        return min(int(chosen), grace_ms)
    return grace_ms
