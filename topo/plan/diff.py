"""The difference between a running plan and the plan of an edited file: what ``topo
apply`` would do, decided before anything is touched.

Pure (no zmq, no process): it compares two sets of facts (:mod:`topo.plan.facts`) and
says, per instance, what changed and whether that needs its process restarted; per link,
whether it appears, goes or changes and which live socket would act on it in place; per
process, whether it is started, stopped, restarted or left alone. The rules:

- a process restarts as a whole when a node of it changed in a way its running code
  cannot take in (``run``, ``args``, ``env``, its process or host, a socket's type,
  subscriptions, options or external endpoints), when it gains or loses a node, or when
  its own ``env`` or its host's address, launch or python changed;
- ``restart:``, ``on_exit``, ``max_restarts`` and ``restart_window`` are the supervisor's
  business: applied in place, nothing restarted; so is ``replicas`` for the instances that
  stay (instances are added or removed; the ones kept go on as they are);
- a link added or removed is connected or disconnected on the live socket (libzmq allows
  connect, disconnect, bind and unbind on a socket in use) unless the socket's process
  restarts or starts anyway, when the new process simply has it; a link whose transport,
  binding end or security changed is removed and made again;
- a replicated node is named ``NODE.I``, a single one ``NODE``: going from one replica to
  several (or back) renames the instance, so the old one is removed and new ones added.

Links are compared by their ends, never by address (see :mod:`topo.plan.facts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from topo.errors import UsageError
from topo.plan.facts import endpoint_of, facts_of
from topo.plan.hostdiff import curve_admits, host_notes
from topo.plan.planner import Plan

#: Instance fields that the running code cannot take in: their change restarts its process.
RESTARTS = ("run", "exec", "ready", "args", "env", "process", "host")
#: Instance fields the supervisor applies in place.
IN_PLACE = ("restart", "on_exit", "max_restarts", "restart_window", "replicas")
#: Socket fields whose change restarts the socket's process.
SOCKET_FIELDS = ("type", "subscribe", "options", "external")
#: How a field's change is worded (``~ worker (restart policy)``).
WORDS = {"restart": "restart policy", "restart_window": "restart_window"}


@dataclass(frozen=True)
class Change:
    """One field of an instance that differs: ``what`` as shown, old and new values."""

    what: str
    restart: bool
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class InstanceChange:
    name: str
    node: str
    changes: tuple[Change, ...]
    #: How many instances its node has now (to say "every instance" once).
    replicas: int = 1

    @property
    def restarts(self) -> bool:
        return any(c.restart for c in self.changes)


@dataclass(frozen=True)
class Action:
    """What one live socket does about a link change: ``verb`` connect, disconnect, bind or
    unbind; ``in_place`` on the running socket, else by its process's (re)start or stop."""

    socket: str
    verb: str
    in_place: bool


@dataclass(frozen=True)
class LinkChange:
    """``kind``: ``+`` added, ``-`` removed, ``~`` changed (its ``why``)."""

    kind: str
    src: str
    dst: str
    transport: str
    why: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class ProcessChange:
    """``kind``: ``+`` started, ``-`` stopped, ``↻`` restarted (``why``)."""

    kind: str
    name: str
    host: str
    why: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[InstanceChange, ...] = ()
    unchanged: tuple[str, ...] = ()
    links: tuple[LinkChange, ...] = ()
    processes: tuple[ProcessChange, ...] = ()
    #: Processes left running as they are (their nodes may have in-place changes).
    untouched: tuple[str, ...] = ()
    endpoints_added: tuple[str, ...] = ()
    endpoints_removed: tuple[str, ...] = ()
    #: Changes of the whole run that restart nothing (``python_path``).
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.links or self.processes or self.notes)

    def restarted(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.processes if p.kind == "↻")


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    return diff(facts_of(old), facts_of(new))


def diff(old: Mapping[str, Any], new: Mapping[str, Any], *, link_restarts: bool = False) -> PlanDiff:
    """What changes from the running ``old`` facts to ``new`` (both :func:`facts_of`'s).

    ``link_restarts``: what ``topo apply`` does for a link that a live socket would have
    to bind or unbind, or connect or disconnect where that cannot be done in place
    (:func:`not_in_place`): it restarts that socket's process instead (``↻ process P
    (link A -> B: why)``). The other actions stay in place: the socket's own thread
    connects or disconnects it (:mod:`topo.process.relink`)."""
    if old["topology"] != new["topology"]:
        raise UsageError(f"the file is topology {new['topology']!r}, the run is {old['topology']!r}: "
                         "apply edits a run's own topology")
    oi, ni = old["instances"], new["instances"]
    added = tuple(n for n in ni if n not in oi)
    removed = tuple(n for n in oi if n not in ni)
    changed, unchanged = [], []
    for name in (n for n in ni if n in oi):
        changes = _instance_changes(oi[name], ni[name])
        if changes:
            changed.append(InstanceChange(name, ni[name]["node"], changes, ni[name]["replicas"]))
        else:
            unchanged.append(name)
    processes = _processes(old, new, added, removed, changed)
    moving = {p.name for p in processes}
    links = _links(old, new, moving)
    if link_restarts:
        processes = (*processes, *_link_restarts(old, new, links))
        moving = {p.name for p in processes}
        links = _links(old, new, moving)
    old_eps = {endpoint_of(ln) for ln in old["links"].values()}
    new_eps = {endpoint_of(ln) for ln in new["links"].values()}
    notes = host_notes(old, new) + curve_admits(old, new, moving)
    if list(old["python_path"]) != list(new["python_path"]):
        notes.append("python_path changed: processes started from now on get the new one")
    return PlanDiff(
        added=added, removed=removed, changed=tuple(changed), unchanged=tuple(unchanged), links=links,
        processes=processes, untouched=tuple(p for p in new["processes"] if p in old["processes"] and p not in moving),
        endpoints_added=tuple(sorted(new_eps - old_eps)), endpoints_removed=tuple(sorted(old_eps - new_eps)),
        notes=tuple(notes),
    )


def _instance_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    out = [Change(f, True, *_values(f, old[f], new[f])) for f in RESTARTS if old[f] != new[f]]
    out += [Change(WORDS.get(f, f), False, old[f], new[f]) for f in IN_PLACE if old[f] != new[f]]
    os_, ns = old["sockets"], new["sockets"]
    for sock in ns:
        if sock not in os_:
            out.append(Change(f"socket {sock} added", True))
            continue
        for f in SOCKET_FIELDS:
            if os_[sock][f] != ns[sock][f]:
                out.append(Change(f"socket {sock} {f}", True, *_values(f, os_[sock][f], ns[sock][f])))
    out += [Change(f"socket {sock} removed", True) for sock in os_ if sock not in ns]
    return tuple(out)


def grouped(changed: Sequence[InstanceChange], words: Callable[[tuple[Change, ...]], str]
            ) -> list[tuple[list[InstanceChange], str]]:
    """Changes of consecutive instances of one node that ``words`` says alike, together:
    twenty replicas whose ``args`` changed are one line, not twenty."""
    out: list[tuple[list[InstanceChange], str]] = []
    for ch in changed:
        text = words(ch.changes)
        if out and out[-1][0][0].node == ch.node and out[-1][1] == text:
            out[-1][0].append(ch)
        else:
            out.append(([ch], text))
    return out


def who(group: list[InstanceChange]) -> str:
    """The node's name for every instance of it (as ``topo restart NODE`` means them all),
    else the instances' names."""
    if len(group) > 1 and len(group) == group[0].replicas:
        return group[0].node
    return ", ".join(ch.name for ch in group)


def _values(what: str, old: Any, new: Any) -> tuple[Any, Any]:
    """Old and new values as shown: ``args`` and ``options`` back from their canonical text."""
    if what in ("args", "options"):
        return json.loads(old), json.loads(new)
    return old, new


def _processes(old: Mapping[str, Any], new: Mapping[str, Any], added: tuple[str, ...],
               removed: tuple[str, ...], changed: list[InstanceChange]) -> tuple[ProcessChange, ...]:
    op, np_ = old["processes"], new["processes"]
    why: dict[str, list[str]] = {name: [] for name in np_ if name in op}

    def because(process: str, reason: str) -> None:
        if process in why and reason not in why[process]:
            why[process].append(reason)

    env_told: set[str] = set()  # processes whose env change a node's own env explains
    for ch in changed:
        if any(c.what == "env" for c in ch.changes):
            env_told.add(new["instances"][ch.name]["process"])
    restarting = [c for c in changed if c.restarts]
    for group, words in grouped(restarting, lambda cs: ", ".join(c.what for c in cs if c.restart)):
        for process in dict.fromkeys(p for ch in group for p in (new["instances"][ch.name]["process"],
                                                                  old["instances"][ch.name]["process"])):
            because(process, f"{who(group)}: {words}")
    for name in added:
        because(new["instances"][name]["process"], f"{name} added")
    for name in removed:
        because(old["instances"][name]["process"], f"{name} removed")
    for name in why:
        if op[name]["env"] != np_[name]["env"] and name not in env_told:
            because(name, "env")
        if op[name]["host"] != np_[name]["host"]:
            because(name, f"host {op[name]['host']} → {np_[name]['host']}")
        host = np_[name]["host"]
        if host in old["hosts"] and old["hosts"][host] != new["hosts"].get(host):
            because(name, f"host {host} changed")
    out = [ProcessChange("↻", name, np_[name]["host"], tuple(reasons)) for name, reasons in why.items() if reasons]
    out += [ProcessChange("+", name, p["host"]) for name, p in np_.items() if name not in op]
    out += [ProcessChange("-", name, p["host"]) for name, p in op.items() if name not in np_]
    return tuple(out)


def _links(old: Mapping[str, Any], new: Mapping[str, Any], moving: set[str]) -> tuple[LinkChange, ...]:
    """Each link added, removed or changed, and who acts on it: a socket whose process is
    started, stopped or restarted anyway gets its links from that; the others act in place."""
    ol, nl = old["links"], new["links"]
    old_eps = {endpoint_of(ln) for ln in ol.values()}
    new_eps = {endpoint_of(ln) for ln in nl.values()}

    def in_place(facts: Mapping[str, Any], socket: str) -> bool:
        return facts["instances"][socket.rpartition(".")[0]]["process"] not in moving

    def made(ln: Mapping[str, Any]) -> list[Action]:
        dialer = ln["to"] if ln["binds"] == ln["from"] else ln["from"]
        acts = [Action(dialer, "connect", in_place(new, dialer))]
        if endpoint_of(ln) not in old_eps:
            acts.insert(0, Action(ln["binds"], "bind", in_place(new, ln["binds"])))
        return acts

    def unmade(ln: Mapping[str, Any]) -> list[Action]:
        dialer = ln["to"] if ln["binds"] == ln["from"] else ln["from"]
        acts = [Action(dialer, "disconnect", dialer.rpartition(".")[0] in new["instances"] and in_place(old, dialer))]
        if endpoint_of(ln) not in new_eps:
            binder = ln["binds"]
            acts.append(Action(binder, "unbind", binder.rpartition(".")[0] in new["instances"] and in_place(old, binder)))
        return acts

    out = []
    for key, ln in nl.items():
        was = ol.get(key)
        if was is None:
            out.append(LinkChange("+", ln["from"], ln["to"], ln["transport"], actions=tuple(made(ln))))
            continue
        why = [f"{f} {was[f]} → {ln[f]}" for f in ("transport", "binds", "secure", "max_message")
               if was[f] != ln[f] and not (f == "max_message" and was["secure"] != ln["secure"])]
        if why:
            out.append(LinkChange("~", ln["from"], ln["to"], ln["transport"], tuple(why),
                                  tuple([*unmade(was), *made(ln)])))
    for key, was in ol.items():
        if key not in nl:
            out.append(LinkChange("-", was["from"], was["to"], was["transport"], actions=tuple(unmade(was))))
    return tuple(out)


def not_in_place(facts: Mapping[str, Any], link: Mapping[str, Any], act: Action) -> str:
    """Why ``act`` cannot be done on the running socket (:mod:`topo.process.relink`), or
    "" when it can: a connect or disconnect of an ipc or tcp link without CURVE, by a
    socket other than a PUB (whose gate would wait for the new subscriber's subscriptions:
    a PUB connected in place would send before they arrive)."""
    if act.verb not in ("connect", "disconnect"):
        return f"{act.socket} would {act.verb}"
    if link["transport"] not in ("ipc", "tcp"):
        return f"{link['transport']} link"
    if link["secure"]:
        return "CURVE link"
    inst, _, sock = act.socket.rpartition(".")
    kind = facts["instances"][inst]["sockets"][sock]["type"]
    if act.verb == "connect" and kind in ("PUB", "XPUB"):
        return f"{act.socket} is a {kind}"
    return ""


def _link_restarts(old: Mapping[str, Any], new: Mapping[str, Any],
                   links: tuple[LinkChange, ...]) -> tuple[ProcessChange, ...]:
    """The processes whose live socket a link change would touch in a way that cannot be
    done in place (:func:`not_in_place`), each restarted with the links that make it (its
    new process simply has them)."""
    why: dict[str, list[str]] = {}
    for ln in links:
        key = f"{ln.src} -> {ln.dst}"
        for act in ln.actions:
            if not act.in_place:
                continue
            inst = act.socket.rpartition(".")[0]
            made = act.verb in ("connect", "bind")
            facts = new if made else old
            problem = not_in_place(facts, facts["links"][key], act)
            if not problem:
                continue
            facts = new if inst in new["instances"] else old
            reason = f"link {ln.src} -> {ln.dst}: {problem}"
            reasons = why.setdefault(facts["instances"][inst]["process"], [])
            if reason not in reasons:
                reasons.append(reason)
    return tuple(ProcessChange("↻", name, new["processes"][name]["host"], tuple(reasons))
                 for name, reasons in why.items())
