"""What a process is started with, and its entry point as multiprocessing names it.

Apart from :mod:`topo.process.runtime` so that the side that starts processes can build a
:class:`Boot` and spawn a child without importing zmq and the runtime first: multiprocessing
pickles the entry point by reference, which needs its module imported in the parent, and
this one is light. ``topo up`` spawns its processes as soon as the plan exists, while it
still has zmq, psutil and the supervisor to import (:mod:`topo.supervisor.prestart`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

from topo.process.control import COMMANDS, EVENTS
from topo.plan.share import ProcessShare

if TYPE_CHECKING:
    from topo.process.curve import HostKeys


class Boot(NamedTuple):
    """Everything a process needs, pickled by multiprocessing into the child: plain data
    only, so that unpickling it costs the child no import beyond :mod:`topo.plan.share`."""

    share: ProcessShare
    events: str
    commands: str
    run_dir: str
    #: Wall-clock time (``time.time()``) by which every node must be ready: the same
    #: instant for every process however long each took to start.
    ready_by: float
    grace: float
    parent_pid: int
    sys_path: tuple[str, ...] = ()
    #: Which start of this process this is (0 first); every event carries it, so the
    #: supervisor can tell a replaced process's late words from the new one's.
    generation: int = 0
    #: Addresses bound before a restart, bound again so peers reconnect by themselves.
    fixed: Mapping[str, str] = {}  # (read only: one shared default is safe)
    #: Instances that have ended for good: their links are not waited for.
    absent: frozenset[str] = frozenset()
    restarts: Mapping[str, int] = {}
    #: This host's CURVE keys, for endpoints that cross hosts (None on a one-host run).
    keys: HostKeys | None = None


def control_addresses(sockets: str) -> tuple[str, str]:
    """The events PULL and commands ROUTER that a supervisor (or an agent) binds in its
    run directory's socket folder ``sockets``: known before they are bound, so a process
    can be started before them."""
    return f"ipc://{sockets}/{EVENTS}", f"ipc://{sockets}/{COMMANDS}"


def main(boot: Boot) -> None:
    """The child's entry point: its first steps (:mod:`topo.process.prelude`: the node modules'
    imports started), then :func:`topo.process.runtime.main`, zmq and all. Imported in the child
    only, both."""
    from topo.process.prelude import begin

    prelude = begin(boot)
    from topo.process.runtime import main as run

    run(boot, prelude)
