"""What a node's thread and the wiring thread may use of their process.

:class:`topo.process.runtime.ProcessRuntime` creates both and hands itself over; they see it
through this Protocol instead, so neither imports the runtime that imports them, and the
list below is the whole of what they may touch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import zmq

    from topo.plan.share import ProcessShare
    from topo.process.boot import Boot
    from topo.process.capture import Capture
    from topo.process.control import Message
    from topo.process.delivery import Deliveries
    from topo.process.gate import InprocBoard
    from topo.process.nodecode import NodeCode
    from topo.process.tapping import Tapping


class ProcessContext(Protocol):
    boot: Boot
    #: The process's share of the plan.
    plan: ProcessShare
    #: ``time.monotonic()`` by which every node must be ready.
    deadline: float
    linger_ms: int
    stopping: threading.Event
    deliveries: Deliveries
    #: Set once the supervisor has sent the addresses to connect to.
    table_ready: threading.Event
    addresses: dict[str, str]
    board: InprocBoard
    ctx: zmq.Context[Any]
    code: dict[str, NodeCode]
    capture: Capture
    #: The process's taps (``topo echo``, ``topo up --record``).
    tapping: Tapping

    def local_address(self, key: str) -> str: ...

    def run_path(self, address: str) -> str: ...

    def send(self, message: Message) -> None: ...

    def runner_done(self) -> None: ...
