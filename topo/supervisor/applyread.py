"""``topo apply``'s file read, checked and planned by a thread, not by the supervisor's loop.

Reading and planning the 200-node benchmark topology takes about 0.1 s; done in the loop,
that is 0.1 s in which no event is read, no deadline kept and no output shown. So a
request starts a :class:`Reading`: a thread of its own reads the files (through
:func:`topo.supervisor.applying.read`, the same loader and checks as ``topo up``) and hands
the plan, or the error, to the loop (:meth:`Supervisor.call_soon`), as ``topo up
--watch``'s watcher does (:mod:`topo.supervisor.watching`). The loop stays the one place
that changes the run.

The thread is given the running plan as it is when the request comes (a :class:`Plan` is
never changed in place, and no other apply can begin while this one reads). A reading
not over within :data:`DEADLINE` seconds (a file on a hung network mount) is answered
as refused, with nothing changed; if the thread ever ends, its late result is dropped.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from topo.errors import TopoError

if TYPE_CHECKING:
    from topo.plan.planner import Plan

#: The longest a request's files may take to be read and planned (seconds).
DEADLINE = 30.0

#: What the loop is handed: the plan, or the reply that refuses the request.
Outcome = tuple["Plan | None", "dict[str, Any] | None"]


class Reading:
    """One request's files being read by a thread; :attr:`deadline` is the loop's to keep."""

    def __init__(self, call_soon: Callable[[Callable[[], None]], None], request: dict[str, Any], running: Plan,
                 reader: Callable[[dict[str, Any], Plan], Plan], then: Callable[[Reading, Outcome], None],
                 deadline: float = DEADLINE) -> None:
        """``call_soon``: the supervisor's (work handed to its loop); ``reader``:
        :func:`topo.supervisor.applying.read` (passed in: that module starts this one)."""
        self.call_soon = call_soon
        self.reader = reader
        self.request = request
        self.running = running
        self.then = then
        self.asked = time.monotonic()
        self.deadline = self.asked + deadline
        self.over = False  # answered (read, refused, or late): a later result is dropped
        self._thread = threading.Thread(target=self._read, name="topo-apply-read", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        outcome: Outcome
        try:
            outcome = (self.reader(self.request, self.running), None)
        except TopoError as err:
            outcome = (None, {"ok": False, "usage": True, "error": err.format_message()})
        except Exception as err:  # noqa: BLE001 - a request must never end the run it edits
            outcome = (None, {"ok": False, "usage": True,
                              "error": f"cannot read the file: {type(err).__name__}: {err}"})
        self.call_soon(lambda: self._hand_over(outcome))

    def _hand_over(self, outcome: Outcome) -> None:  # in the loop's thread
        if not self.over:
            self.over = True
            self.then(self, outcome)

    def late(self, now: float) -> dict[str, Any] | None:
        """In the loop's thread: the refusal once the deadline has passed (then over)."""
        if self.over or now < self.deadline:
            return None
        self.over = True
        return {"ok": False, "usage": True, "error": f"reading the file took longer than {DEADLINE:g}s "
                "(awaited: the file read, checked and planned); nothing was changed"}
