"""The supervisor's answers to ``topo sockets``, ``topo echo``, ``topo hz``, ``topo
record`` and ``topo send``: what sockets a run declares, its plan, where one socket can be
reached, and taps asked for, checked and passed on to the processes that own them.

A request comes on the run's control socket (JSON, as ``topo ps``'s) and is hostile
until checked: a tap names ``NODE.SOCKET`` (every instance of the node) or
``INSTANCE.SOCKET``, which must be a declared socket of the plan, and an ipc endpoint in
the run's own private directory for the copies. The process side does the rest
(:mod:`topo.process.tapping`); nothing here keeps state, so a renewal is the request
again, and a process restarted meanwhile gets its tap with the next one. A node on another
host gets its tap through that host's agent, and its copies come back on a channel of
their own (:mod:`topo.supervisor.remotetaps`).
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Callable

from topo.plan.planner import Plan
from topo.plan.share import inject_key
from topo.process.control import Kind, Message
from topo.supervisor.remotetaps import INJECT
from topo.supervisor.runstate import STATE_WORDS, NodeState, ProcState, command_in

#: The requests answered here (the others: :func:`topo.supervisor.runstate.answer`).
COMMANDS = frozenset({"tap", "untap", "sockets", "plan", "target"})

#: Socket types with nothing to show in one direction (a PUB's "in" is subscriptions, which
#: topo handles; a SUB's "out" too).
_ONE_WAY = {"in": frozenset({"PUB", "PUSH"}), "out": frozenset({"SUB", "PULL"})}


class BadRequest(ValueError):
    """A request that names what the run does not have (the CLI exits 2 on it)."""


def command_of(request: bytes) -> str | None:
    """The request's command if it is one answered here, else None."""
    return command_in(request, COMMANDS)


def answer(request: bytes, plan: Plan, nodes: dict[str, NodeState], procs: dict[str, ProcState],
           bound: dict[str, str], sockets_dir: str,
           send: Callable[[ProcState, Message], None]) -> dict[str, Any]:
    """The reply to one of :data:`COMMANDS`; a tap request's messages sent with ``send``."""
    try:
        data = json.loads(request)
        if data["cmd"] == "sockets":
            return {"ok": True, "sockets": listing(plan, nodes, procs, bound)}
        if data["cmd"] == "plan":  # what a recording stores with the messages (topo record)
            return {"ok": True, "plan": plan.to_json()}
        if data["cmd"] == "target":  # topo send: where a socket can be reached from outside
            entries = reachable(resolve(data.get("target"), plan), plan, nodes, procs, bound)
            for entry in entries:  # a remote node's: through its agent (topo.supervisor.remotetaps)
                if entry["remote"] and sockets_dir:
                    entry["relay"] = f"ipc://{sockets_dir}/{INJECT}"
            return {"ok": True, "sockets": entries}
        tap_id = data.get("tap")
        if not isinstance(tap_id, str) or not tap_id or len(tap_id) > 64:
            raise BadRequest("a tap needs an id")
        pairs = resolve(data.get("target"), plan)
        if data["cmd"] == "untap":
            for proc_name in {plan.instances[i].process for i, _ in pairs}:
                send(procs[proc_name], Message(Kind.UNTAP, {"tap": tap_id}))
            return {"ok": True}
        endpoint, directions = data.get("endpoint"), data.get("directions", ["in", "out"])
        if not isinstance(endpoint, str) or not endpoint.startswith(f"ipc://{sockets_dir}/") \
                or "/.." in endpoint or not sockets_dir:
            raise BadRequest("the copies' endpoint must be an ipc file in the run's directory")
        if not isinstance(directions, list) or not directions or any(d not in ("in", "out") for d in directions):
            raise BadRequest("directions: a list of 'in' and 'out'")
        kinds = {s.type.value for i, name in pairs for s in plan.instances[i].sockets if s.name == name}
        if len(directions) == 1 and kinds <= _ONE_WAY[directions[0]]:
            raise BadRequest(f"{data['target']} is a {'/'.join(sorted(kinds))}: it "
                             f"{'receives' if directions == ['in'] else 'sends'} nothing to show")
        for instance, socket in pairs:
            message = Message(Kind.TAP, {"tap": tap_id, "instance": instance, "socket": socket,
                                         "endpoint": endpoint, "directions": directions})
            send(procs[plan.instances[instance].process], message)
        return {"ok": True, "instances": [i for i, _ in pairs]}
    except BadRequest as err:
        return {"ok": False, "usage": True, "error": str(err)}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {"ok": False, "error": "malformed request"}


def resolve(target: Any, plan: Plan) -> list[tuple[str, str]]:
    """``NODE.SOCKET`` (each instance of the node) or ``INSTANCE.SOCKET`` as (instance,
    socket) pairs; :class:`BadRequest`, with the nearest names, if the plan has no such."""
    if not isinstance(target, str) or "." not in target:
        raise BadRequest(f"expected NODE.SOCKET, got {target!r}")
    owner, socket = target.rsplit(".", 1)
    if owner in plan.instances:
        instances = [owner]
    else:
        instances = [name for name, inst in plan.instances.items() if inst.node == owner]
    if instances and all(socket in {s.name for s in plan.instances[i].sockets} for i in instances):
        return [(i, socket) for i in instances]
    of_nodes = sorted({f"{i.node}.{s.name}" for i in plan.instances.values() for s in i.sockets})
    of_instances = sorted({f"{n}.{s.name}" for n, i in plan.instances.items() for s in i.sockets} - set(of_nodes))
    near = (difflib.get_close_matches(target, of_nodes, n=3, cutoff=0.75)
            or difflib.get_close_matches(target, of_instances, n=3, cutoff=0.75))
    known = of_nodes
    what = f"no socket {socket!r} on {owner}" if instances else f"no node {owner!r}"
    hint = f"; did you mean {' or '.join(near)}?" if near else f"; its sockets: {', '.join(known)}"
    raise BadRequest(f"{what} in {plan.topology}{hint}")


def reachable(pairs: list[tuple[str, str]], plan: Plan, nodes: dict[str, NodeState],
              procs: dict[str, ProcState], bound: dict[str, str]) -> list[dict[str, Any]]:
    """Each socket's type, its node's state, whether it runs elsewhere, and the endpoints
    it binds as bound (with transport and CURVE), its injection endpoint (``inject``:
    :mod:`topo.plan.inject`) once its process reported it bound: what ``topo send`` needs
    to dial it as a peer would."""
    out = []
    for instance, name in pairs:
        inst = plan.instances[instance]
        sock = next(s for s in inst.sockets if s.name == name)
        injected = bound.get(inject_key(instance, name)) if sock.inject else None
        out.append({
            "instance": instance, "socket": name, "type": sock.type.value,
            "state": STATE_WORDS.get(nodes[instance].state, nodes[instance].state) if instance in nodes else "?",
            "remote": procs[inst.process].remote, "host": inst.host,
            "binds": [{"address": bound.get(k, plan.endpoints[k].address),
                       "transport": plan.endpoints[k].transport.value, "secure": plan.endpoints[k].secure}
                      for k in sock.binds]
            + [{"address": a, "transport": a.split("://", 1)[0], "secure": False} for a in sock.external_binds]
            + ([{"address": injected, "transport": "ipc", "secure": False, "inject": True}] if injected else []),
        })
    return out


def listing(plan: Plan, nodes: dict[str, NodeState], procs: dict[str, ProcState],
            bound: dict[str, str]) -> list[dict[str, Any]]:
    """Every declared socket of every instance: what ``topo sockets`` shows."""
    out = []
    for name, inst in plan.instances.items():
        state = nodes[name].state if name in nodes else "?"
        for sock in inst.sockets:
            keys = (*sock.binds, *sock.connects)
            out.append({
                "instance": name, "node": inst.node, "socket": sock.name, "type": sock.type.value,
                "process": inst.process, "host": inst.host, "remote": procs[inst.process].remote is not None,
                "state": STATE_WORDS.get(state, state),
                "transports": sorted({plan.endpoints[k].transport.value for k in keys}),
                "binds": [bound.get(k, plan.endpoints[k].address) for k in sock.binds],
                "connects": [bound.get(k, plan.endpoints[k].address) for k in sock.connects],
                "peers": sorted({f"{p.instance}.{p.socket}" for p in sock.peers}),
                "external": [*sock.external_binds, *sock.external_connects],
            })
    return out
