"""The control channel: typed messages between the supervisor and each process's runtime.

Children never touch the run's state; they send events and obey commands, and the
supervisor is the one place that decides. Messages are JSON so a runtime on another host
(behind the same channel over tcp) needs nothing but this module to speak it.

Wiring: the supervisor binds a PULL (events, from every process) and a ROUTER
(commands, to one process by its name). A process connects a PUSH, fed by one outbox
thread so any thread may send, and a DEALER whose identity is the process name.

Across hosts (:mod:`topo.hosts.agent`), each remote host's agent binds the same PULL and ROUTER
for its own processes and relays both ways over one DEALER to a tcp ROUTER of the
supervisor, CURVE-encrypted; the supervisor addresses ``[host, target, kind, data]``,
where the target is a process name or ``""`` for the agent itself. Both ends beat: a side
that hears nothing for :data:`SILENCE` seconds takes the other for gone.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any


#: The supervisor's own ipc sockets in the run directory: events, commands, control.
EVENTS, COMMANDS, CONTROL = "ev", "cmd", "ctl"

#: Supervisor and agents each send something at least this often (seconds) ...
BEAT = 1.0
#: ... and take the other for gone after this long without a word.
SILENCE = 5.0


class Kind(str, Enum):
    # process → supervisor
    HELLO = "hello"          # process, pid: the runtime is up and can take commands
    BOUND = "bound"          # instance (or instances [names]), endpoints {key: address}: binds done
    IMPORTING = "importing"  # instances [names]: every peer there, the node's code still importing
    READY = "ready"          # instance (or instances [names]): gate passed, node function called now
    NOT_READY = "not_ready"  # instance, waiting [text]: the gate's deadline passed
    OUTPUT = "output"        # instance, line, err
    EXITED = "exited"        # instance: the node function returned
    STOPPED = "stopped"      # instance: ended because the topology stopped
    FAILED = "failed"        # instance, error, traceback; code, missing: its code cannot be imported
    BYE = "bye"              # process: every node ended and the process is about to exit
    EXEC_LINKED = "exec_linked"  # instance, socket, count, conns: connections from exec senders made (after the gate)
    EXEC_NOTICE = "exec_notice"  # process, instance, gen, notice {...}: an sd_notify datagram of a program (agent →)
    # supervisor → process
    CONNECT = "connect"      # endpoints {key: address}: every bind of the run
    EXEC_GO = "exec_go"      # process, instance, gen, go, conns: a program's go given (true) or its pipe ended (→ agent)
    STOP = "stop"            # reason
    TAP = "tap"              # tap, instance, socket, endpoint, directions: copies of a socket's
                             # messages to endpoint (topo.process.tapping); again: the lease renewed
    UNTAP = "untap"          # tap: no more copies
    LINK = "link"            # id, instance, socket, ops [[verb, key, address]], within: a running
                             # socket connects or disconnects in place (topo.process.relink)
    KEYS = "keys"            # peers {host: public key}: the hosts a CURVE server admits from now
                             # on (topo apply brought a host in; topo.process.curve.ZapHandler.admit)
    RELEASE = "release"      # id, instance, socket, address, within: a bound PUSH replaced by a
                             # new socket, the old one closed once delivered (topo.process.handover)
    REBIND = "rebind"        # id: the new socket binds address (the removed peers have gone); a
                             # release not taken yet is withdrawn
    RETIRE = "retire"        # id, instance, socket, address: a removed node drains what address
                             # dealt it, disconnects, and returns
    # process → supervisor, the answer to a link (and to a release or a retire)
    LINKED = "linked"        # id, instance, socket, done, why
    # agent → supervisor (the agent also relays its processes' events as they are)
    AGENT = "agent"          # host, pid, version: the agent is up and takes commands
    SPAWNED = "spawned"      # process, gen, pid
    ENDED = "ended"          # process, gen, exitcode: after the process's last event
    BEAT = "beat"            # stats {process: {pid, cpu, rss}}: sent every BEAT seconds
    # supervisor → agent (frames: target "" for the agent itself, or a process name)
    START = "start"          # process, gen, fixed, absent, restarts, ready_in
    SIGNAL = "signal"        # process, signal (number)
    PING = "ping"            # nothing: the supervisor is alive
    SHUTDOWN = "shutdown"    # every process has ended: clean up and exit
    PLAN = "plan"            # share: the host's share of the plan from now on (topo apply)


_STR, _INT, _BOOL, _LIST, _DICT = str, int, bool, list, dict
#: Per kind: the fields a message must have and those it may have, with their types. A
#: message off a socket is checked against it before anything reads it: a peer (a node's
#: own code on the same channel, an agent on a compromised host) may send anything.
_FIELDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hello": ({"process": _STR}, {"pid": _INT}),
    "bound": ({"endpoints": _DICT}, {}),
    "importing": ({}, {}),
    "ready": ({}, {}),
    "not_ready": ({"instance": _STR, "waiting": _LIST}, {}),
    "output": ({"instance": _STR, "line": _STR, "err": _BOOL}, {}),
    "exited": ({"instance": _STR}, {}),
    "stopped": ({"instance": _STR}, {"started": _BOOL}),
    "failed": ({"instance": _STR, "error": _STR},
               {"traceback": (_STR, type(None)), "started": _BOOL, "code": _BOOL, "missing": _STR}),
    "bye": ({"process": _STR}, {"clean": _BOOL, "stuck": _LIST}),
    "exec_linked": ({"instance": _STR, "socket": _STR, "count": _INT}, {"conns": _LIST}),
    "exec_notice": ({"process": _STR, "instance": _STR, "gen": _INT, "notice": _DICT}, {}),
    "exec_go": ({"process": _STR, "instance": _STR, "gen": _INT, "go": _BOOL}, {"conns": _LIST}),
    "connect": ({"endpoints": _DICT}, {}),
    "stop": ({}, {"reason": _STR}),
    "tap": ({"tap": _STR, "instance": _STR, "socket": _STR, "endpoint": _STR, "directions": _LIST}, {}),
    "untap": ({"tap": _STR}, {}),
    "link": ({"id": _STR, "instance": _STR, "socket": _STR, "ops": _LIST}, {"within": (int, float)}),
    "keys": ({"peers": _DICT}, {}),
    "release": ({"id": _STR, "instance": _STR, "socket": _STR, "address": _STR}, {"within": (int, float)}),
    "rebind": ({"id": _STR}, {}),
    "retire": ({"id": _STR, "instance": _STR, "socket": _STR, "address": _STR}, {}),
    "linked": ({"id": _STR, "instance": _STR, "socket": _STR, "done": _BOOL}, {"why": _STR}),
    "agent": ({"host": _STR}, {"pid": _INT, "version": _STR}),
    "spawned": ({"process": _STR, "gen": _INT, "pid": _INT}, {}),
    "ended": ({"process": _STR, "gen": _INT}, {"exitcode": (_INT, type(None))}),
    "beat": ({"stats": _DICT}, {}),
    "start": ({"process": _STR}, {}),
    "signal": ({"process": _STR, "signal": _INT}, {}),
    "ping": ({}, {}),
    "shutdown": ({}, {}),
    "plan": ({"share": _STR}, {}),
}
#: Kinds about one node or several: ``instance`` or ``instances``, names either way.
_ABOUT_NODES = frozenset({"bound", "importing", "ready"})


#: At most this many connections in one report (``conns``, :mod:`topo.supervisor.goheld`).
MAX_CONNS = 4096


def is_conn(value: object) -> bool:
    """Whether a value off the wire is one tcp connection: [address, port, address, port]."""
    return (isinstance(value, list) and len(value) == 4 and all(isinstance(value[i], str) for i in (0, 2))
            and all(type(value[i]) is int and 0 < value[i] < 65536 for i in (1, 3)))


def _is(value: Any, kind_of: Any) -> bool:
    """isinstance, except that JSON's true and false are not numbers here."""
    return isinstance(value, kind_of) and not (isinstance(value, bool) and kind_of is _INT)


def check(kind: Kind, data: dict[str, Any]) -> None:
    """Raises ValueError unless ``data`` has the fields of ``kind`` with their types."""
    required, optional = _FIELDS[kind.value]
    for name, kind_of in required.items():
        if name not in data or not _is(data[name], kind_of):
            raise ValueError(f"{kind.value}: field {name!r} missing or not {getattr(kind_of, '__name__', kind_of)}")
    for name, kind_of in (*optional.items(), ("gen", _INT)):
        if name in data and not _is(data[name], kind_of):
            raise ValueError(f"{kind.value}: field {name!r} is not {getattr(kind_of, '__name__', kind_of)}")
    if kind.value in _ABOUT_NODES:
        names = data.get("instances", [data.get("instance")])
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{kind.value}: no node names")
    if "directions" in data and not (
            data["directions"] and all(d in ("in", "out") for d in data["directions"])):
        raise ValueError(f"{kind.value}: 'directions' is not a list of in and out")
    if kind.value == "tap" and not (data["endpoint"].startswith("ipc://") and len(data["tap"]) <= 64):
        raise ValueError("tap: copies go to an ipc endpoint, under a short id")
    for name in ("waiting", "stuck"):
        if name in data and not all(isinstance(v, str) for v in data[name]):
            raise ValueError(f"{kind.value}: {name!r} holds something other than text")
    if "conns" in data and not (len(data["conns"]) <= MAX_CONNS and all(is_conn(c) for c in data["conns"])):
        raise ValueError(f"{kind.value}: 'conns' is not a list of [address, port, address, port]")
    for name in ("endpoints",):
        if name in data and not all(isinstance(k, str) and isinstance(v, str) for k, v in data[name].items()):
            raise ValueError(f"{kind.value}: {name!r} maps something other than text to text")


class Message:
    """One message: a kind and a JSON object. A plain class, not a dataclass: every node
    process imports this module, and compiling a dataclass costs each one a millisecond."""

    __slots__ = ("kind", "data")

    def __init__(self, kind: Kind, data: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.data: dict[str, Any] = {} if data is None else data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.kind, self.data) == (other.kind, other.data)

    __hash__ = None  # type: ignore[assignment]  # mutable data: not hashable

    def __repr__(self) -> str:
        return f"Message({self.kind!r}, {self.data!r})"

    def encode(self) -> list[bytes]:
        return [self.kind.value.encode(), json.dumps(self.data, separators=(",", ":")).encode()]

    @classmethod
    def decode(cls, frames: list[bytes]) -> Message:
        """Raises ValueError on anything that is not a message (the channel may be reached
        by a stray process; a bad frame is dropped, never trusted)."""
        if len(frames) != 2:
            raise ValueError(f"expected 2 frames, got {len(frames)}")
        try:
            kind = Kind(frames[0].decode())
            data = json.loads(frames[1])
        except RecursionError:  # `[[[[...` a hundred thousand deep
            raise ValueError("message data nested too deep") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"message is not UTF-8: {err}") from None
        if not isinstance(data, dict):
            raise ValueError("message data is not an object")
        check(kind, data)
        return cls(kind, data)

    def split(self) -> list[Message]:
        """A report for several nodes (``instances``) as one message per node."""
        rest = {k: v for k, v in self.data.items() if k != "instances"}
        return [Message(self.kind, {**rest, "instance": name}) for name in self.data.get("instances", ())]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]
