"""What a process is started with: plain data, pickled into the child.

Apart from :mod:`topo.process.runtime` so that the side that starts processes can build a
:class:`Boot` and spawn a child without importing zmq and the runtime first (the entry
point multiprocessing names is :func:`topo.process.entry.main`, light too). ``topo up`` spawns its processes as soon as the plan exists, while it
still has zmq, psutil and the supervisor to import (:mod:`topo.supervisor.prestart`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from topo.process.control import COMMANDS, EVENTS
from topo.plan.share import ProcessShare

if TYPE_CHECKING:
    from topo.process.curve import HostKeys


class Recording(NamedTuple):
    """The sockets of a run recorded from their first message (``topo up --record``):
    each gets a tap before its node's function is called (:mod:`topo.process.tapping`),
    whose copies go to the recorder at ``endpoint`` and are never dropped while it keeps
    up (the node waits for room instead, up to ``stall`` seconds without progress)."""

    endpoint: str
    #: instance → the names of its sockets recorded (instances of other processes too)
    sockets: Mapping[str, tuple[str, ...]]
    stall: float = 5.0
    #: Where a process asks the reader of its copies (the recorder, or its host's agent)
    #: whether its last copies are in (:mod:`topo.process.recordack`; "": it does not ask).
    ack: str = ""


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
    #: ``topo up --record``: taps on from each node's first instruction (None: no recording).
    record: Recording | None = None


class PassFds:
    """File descriptors a ``spawn`` child receives at the same numbers (the write ends of
    its output pipes, :mod:`topo.supervisor.pipes`). Pickled only while multiprocessing
    starts the child: ``DupFd`` then adds them to the descriptors the child keeps."""

    def __init__(self, fds: tuple[int, ...]) -> None:
        self.fds = fds

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing import reduction

        return (_received, (tuple(reduction.DupFd(fd) for fd in self.fds),))


def _received(dups: tuple[Any, ...]) -> PassFds:
    return PassFds(tuple(d.detach() for d in dups))


def control_addresses(sockets: str) -> tuple[str, str]:
    """The events PULL and commands ROUTER that a supervisor (or an agent) binds in its
    run directory's socket folder ``sockets``: known before they are bound, so a process
    can be started before them."""
    return f"ipc://{sockets}/{EVENTS}", f"ipc://{sockets}/{COMMANDS}"
