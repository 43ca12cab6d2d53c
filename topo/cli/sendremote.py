"""``topo send`` to a node on another host: the message goes to the run's supervisor, which
passes it to that host's agent (:mod:`topo.supervisor.remotetaps`, :mod:`topo.hosts.taprelay`);
the agent dials the socket there as a peer of that host would (the run's keys are its own)
and the reply, or why there is none, comes back the same way. What the command says and
its exit status are those of a local ``topo send``.
"""

from __future__ import annotations

import json
from typing import Any

from topo.errors import TopoError, UsageError

#: Seconds beyond the send's own timeout for the supervisor's answer (the agent's is
#: bounded by that timeout, the supervisor gives it a margin of its own).
MARGIN = 5.0


def remote_endpoint(full: str, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The way to a remote node's socket: the supervisor's relay, and the endpoint its agent
    will dial, one bound on its host (ipc there, then plain tcp, then CURVE tcp: the agent
    has the keys)."""
    relay = entry.get("relay")
    if not isinstance(relay, str) or not relay:
        raise UsageError(f"not yet: {entry['instance']} runs on host {entry['remote']}, and this run's "
                         "supervisor cannot pass a message there (started by an older topo)")
    binds = [b for b in entry["binds"] if b["transport"] in ("ipc", "tcp")]
    binds.sort(key=lambda b: (b["transport"] != "ipc", bool(b["secure"]), bool(b.get("inject"))))
    if not binds:
        why = ("binds nothing to send to (it connects to its peers)" if not entry["binds"] else
               "is bound only on inproc (reachable only inside its process)")
        raise UsageError(f"not yet: {full} {why}")
    return relay, binds[0]


def send_remote(name: str, kind: str, address: str, secure: bool, relay: str, frames: list[bytes],
                timeout: float) -> list[bytes] | None:
    """As :func:`topo.cli.send.send`, through the supervisor (at ``relay``) and the agent of
    the host of ``name``'s node, which dials ``address`` there."""
    import zmq

    instance, socket = name.rsplit(".", 1)
    header = {"instance": instance, "socket": socket, "type": kind, "address": address, "secure": secure,
              "timeout": timeout}
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(relay)
        sock.send_multipart([json.dumps(header).encode(), *frames])
        if not sock.poll(int((timeout + MARGIN) * 1000)):
            raise TopoError(f"the run's supervisor did not answer within {timeout + MARGIN:g}s "
                            f"(sending to {name} on another host)")
        answer = sock.recv_multipart()
    finally:
        sock.close()
        ctx.term()
    try:
        result = json.loads(answer[0])
    except (ValueError, IndexError, RecursionError):
        raise TopoError("the run's supervisor answered something that is not an answer") from None
    if not isinstance(result, dict) or not result.get("ok"):
        error = result.get("error") if isinstance(result, dict) else None
        raise TopoError(str(error or "the message could not be sent"))
    return answer[1:] if result.get("replied") else None
