"""The links ``topo apply`` makes or drops on running sockets: asked of their processes,
answered, and the process restarted where its node did not take the change.

The difference (:func:`topo.plan.diff.diff`) says which running socket connects or
disconnects in place. Each such socket is sent one ``link`` command with all its changes
(:mod:`topo.process.relink` makes them in the thread that owns the socket), and only
once every endpoint it connects to is bound: a peer the apply starts binds first, as at
``topo up``, so the connect finds it (and what a PUSH deals to it waits in the pipe until
the connection is up).

The change is made at the socket's next use by its node. Nothing waits for that, except
where a gate would: a SUB connecting in place to a publisher the apply starts (or
restarts), whose gate waits for the SUB's subscriptions so that its first message
reaches it. Such a request is *awaited*: the apply's reply waits for it, and a SUB whose
node does not use it within :data:`WITHIN` seconds is answered ``done: false`` and its
process restarted with the new plan's share instead (which has the link from its
start); the output says so. Any other connector is left out of its new peer's gate
(:func:`gate_skips`: it is one of the gate's absent peers): a sender connecting in place
deals to the new peer from its next message on, queued in the pipe until the
connection is up; a receiver connecting in place takes messages from its handshake on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from topo.plan.diff import Action, LinkChange, PlanDiff, ProcessChange
from topo.plan.planner import Plan
from topo.process.control import Kind, Message

if TYPE_CHECKING:
    from topo.supervisor.transitions import Transitions

#: How long a running node has to use its socket before its process is restarted instead.
WITHIN = 2.0


@dataclass
class Request:
    """The changes of one running socket, as sent and as answered."""

    ident: str
    process: str
    instance: str
    socket: str
    #: (verb, endpoint key).
    ops: list[tuple[str, str]]
    #: The links it makes or drops (``A -> B``).
    links: list[str] = field(default_factory=list)
    #: The processes at the other end of the links it connects, which the apply starts or
    #: restarts (their gates would wait for this socket).
    peers: list[str] = field(default_factory=list)
    #: A gate waits for it (a SUB connecting to a publisher that starts): the reply too.
    awaited: bool = False
    sent: bool = False
    done: bool | None = None
    why: str = ""


def requests(d: PlanDiff, old: Plan, new: Plan, tag: str) -> list[Request]:
    """One request per running socket the difference changes in place."""
    moving = {p.name for p in d.processes if p.kind in ("+", "↻")}
    out: dict[str, Request] = {}
    for ln in d.links:
        for act in ln.actions:
            if not act.in_place:
                continue
            plan = new if act.verb == "connect" else old
            key = _key(plan, ln)
            inst, _, sock = act.socket.rpartition(".")
            req = out.get(act.socket)
            if req is None:
                req = out[act.socket] = Request(f"{tag}:{len(out)}", plan.instances[inst].process, inst, sock, [])
            req.ops.append((act.verb, key))
            req.links.append(f"{ln.src} -> {ln.dst}")
            peer = (ln.dst if act.socket == ln.src else ln.src).rpartition(".")[0]
            if act.verb == "connect" and peer in new.instances and new.instances[peer].process in moving:
                req.peers.append(new.instances[peer].process)
                kind = next(s.type for s in new.instances[inst].sockets if s.name == sock)
                req.awaited = req.awaited or kind in ("SUB", "XSUB")
    return list(out.values())


def gate_skips(reqs: list[Request], process: str) -> set[str]:
    """The running instances whose in-place connects ``process``'s gates must not wait for
    (they connect at their socket's next use, however late that is)."""
    return {r.instance for r in reqs if not r.awaited and process in r.peers}


def _key(plan: Plan, ln: LinkChange) -> str:
    for link in plan.links:
        if link.src_instance == ln.src and link.dst_instance == ln.dst:
            return f"{link.bind_instance}/{link.transport.value}"
    raise KeyError(f"no link {ln.src} -> {ln.dst}")


def send_due(sup: Transitions, reqs: list[Request], removed_keys: dict[str, str]) -> None:
    """Each request not sent yet whose endpoints are known is sent (``removed_keys``: the
    addresses of endpoints the apply removed, for a disconnect)."""
    for req in reqs:
        if req.sent or req.done is not None:
            continue
        proc = sup.procs.get(req.process)
        if proc is None or proc.ended or proc.pid is None:
            req.done, req.why = False, "its process is not running"
            continue
        if not all(verb == "disconnect" or key in sup.bound for verb, key in req.ops):
            continue
        ops = [[verb, key, sup.bound.get(key) or removed_keys.get(key, "")] for verb, key in req.ops]
        data: dict[str, Any] = {"id": req.ident, "instance": req.instance, "socket": req.socket, "ops": ops}
        if req.awaited:
            data["within"] = WITHIN
        sup.processes.send(proc, Message(Kind.LINK, data))
        req.sent = True


def answered(reqs: list[Request], m: Message) -> Request | None:
    """The request a ``linked`` answers (None for one of no apply under way)."""
    for req in reqs:
        if req.ident == m["id"] and req.done is None and req.sent:
            req.done, req.why = bool(m["done"]), str(m.data.get("why", ""))
            return req
    return None


def fell_back(d: PlanDiff, req: Request, host: str) -> PlanDiff:
    """``d`` as carried out when ``req``'s socket was not changed in place: its process
    restarted for those links (``↻ process P (link A -> B: why)``)."""
    why = tuple(f"link {link}: not in place, {req.why}" for link in req.links)
    socket = f"{req.instance}.{req.socket}"
    links = tuple(replace(ln, actions=tuple(Action(a.socket, a.verb, False) if a.socket == socket else a
                                            for a in ln.actions)) for ln in d.links)
    processes = list(d.processes)
    for i, p in enumerate(processes):
        if p.name == req.process and p.kind == "↻":
            processes[i] = replace(p, why=(*p.why, *why))
            break
    else:
        processes.append(ProcessChange("↻", req.process, host, why))
    return replace(d, links=links, processes=tuple(processes),
                   untouched=tuple(p for p in d.untouched if p != req.process))


def summary(reqs: list[Request]) -> dict[str, Any]:
    """For ``--json``: each socket changed in place, or restarted instead."""
    return {"in_place": [f"{r.instance}.{r.socket}" for r in reqs if r.done],
            "restarted_instead": [{"socket": f"{r.instance}.{r.socket}", "process": r.process, "why": r.why}
                                  for r in reqs if r.done is False]}
