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
    FAILED = "failed"        # instance, error, traceback: raised or could not start
    BYE = "bye"              # process: every node ended and the process is about to exit
    # supervisor → process
    CONNECT = "connect"      # endpoints {key: address}: every bind of the run
    STOP = "stop"            # reason
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
        data = json.loads(frames[1])
        if not isinstance(data, dict):
            raise ValueError("message data is not an object")
        return cls(Kind(frames[0].decode()), data)

    def split(self) -> list[Message]:
        """A report for several nodes (``instances``) as one message per node."""
        rest = {k: v for k, v in self.data.items() if k != "instances"}
        return [Message(self.kind, {**rest, "instance": name}) for name in self.data.get("instances", ())]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]
