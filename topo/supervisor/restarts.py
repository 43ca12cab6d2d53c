"""Restart policy: whether a node that ended is started again, after how long, and when
to give up on one that keeps failing. Pure: the supervisor passes in the clock.

Backoff starts at :data:`FIRST_DELAY` and doubles with each restart counted in the node's
window, up to :data:`MAX_DELAY`; more than ``max_restarts`` restarts within
``restart_window`` seconds is flapping, and topo gives up (the node fails, and with it the
run, saying so with the node's last error).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from topo.file.model import Restart

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


@dataclass(frozen=True)
class Decision:
    restart: bool
    delay: float = 0.0
    #: Set when a restart was wanted but the node is flapping.
    gave_up: str | None = None


@dataclass
class History:
    """When one node instance was restarted, within its window."""

    max_restarts: int
    window: float
    times: deque[float] = field(default_factory=deque)
    total: int = 0

    def decide(self, policy: Restart, failed: bool, now: float) -> Decision:
        if policy is Restart.NO or (policy is Restart.ON_FAILURE and not failed):
            return Decision(False)
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.max_restarts:
            return Decision(False, gave_up=(
                f"restarted {len(self.times)} time(s) within {self.window:g}s "
                f"(max_restarts: {self.max_restarts}); giving up"))
        delay = min(FIRST_DELAY * 2 ** len(self.times), MAX_DELAY)
        self.times.append(now)
        self.total += 1
        return Decision(True, delay)
