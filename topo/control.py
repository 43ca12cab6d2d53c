"""The control channel: typed messages between the supervisor and each process's runtime.

Children never touch the run's state; they send events and obey commands, and the
supervisor is the one place that decides. Messages are JSON so a runtime on another host
(behind the same channel over tcp) needs nothing but this module to speak it.

Wiring: the supervisor binds a PULL (events, from every process) and a ROUTER
(commands, to one process by its name). A process connects a PUSH, fed by one outbox
thread so any thread may send, and a DEALER whose identity is the process name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


#: The supervisor's own ipc sockets in the run directory: events, commands, control.
EVENTS, COMMANDS, CONTROL = "ev", "cmd", "ctl"


class Kind(str, Enum):
    # process → supervisor
    HELLO = "hello"          # process, pid: the runtime is up and can take commands
    BOUND = "bound"          # instance, endpoints {key: address}: binds done
    READY = "ready"          # instance: gate passed, node function called now
    NOT_READY = "not_ready"  # instance, waiting [text]: the gate's deadline passed
    OUTPUT = "output"        # instance, line, err
    EXITED = "exited"        # instance: the node function returned
    STOPPED = "stopped"      # instance: ended because the topology stopped
    FAILED = "failed"        # instance, error, traceback: raised or could not start
    BYE = "bye"              # process: every node ended and the process is about to exit
    # supervisor → process
    CONNECT = "connect"      # endpoints {key: address}: every bind of the run
    STOP = "stop"            # reason


@dataclass(frozen=True)
class Message:
    kind: Kind
    data: dict[str, Any] = field(default_factory=dict)

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

    def __getitem__(self, key: str) -> Any:
        return self.data[key]
