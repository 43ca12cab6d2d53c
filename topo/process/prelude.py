"""A node process's first steps, before it imports zmq and its runtime.

The process exists to run its nodes, and a node's module can be the slowest thing in it
to load. So the first steps are only what must come before that import: the parent-death
signal and SIGINT/SIGHUP handling, ``sys.path`` and the process's ``env`` (a node module sees
them), glibc's malloc settings (before anything allocates much), and the output capture
(what the import prints is the node's, prefixed). Then every node module's import starts
in the background (:mod:`topo.process.nodecode`), and only then does the process import zmq and
its runtime, bind, connect and gate, while the import goes on. None of this imports zmq.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
from typing import NamedTuple

from topo.process.boot import Boot
from topo.process.capture import Capture
from topo.process.control import Kind, Message
from topo.process.memory import pin_malloc_thresholds
from topo.process.nodecode import NodeCode, start_imports

PR_SET_PDEATHSIG = 1


class Prelude(NamedTuple):
    """What the first steps leave for the runtime."""

    #: Events for the supervisor, queued until the runtime's outbox thread sends them.
    outbox: queue.SimpleQueue[Message | None]
    capture: Capture
    #: Each node's code, by instance name, its module's import under way.
    code: dict[str, NodeCode]


def begin(boot: Boot) -> Prelude:
    _die_with_parent(boot.parent_pid)
    # Ctrl-C, and the SIGHUP of a closed terminal, reach the whole process group; the
    # supervisor decides. A handler, not SIG_IGN: an ignored signal would be inherited by
    # programs a node starts, a handler is not. Both were blocked since the first
    # instruction (topo.supervisor.spawn.start); one that came meanwhile lands here.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGHUP})
    for entry in reversed(boot.sys_path):  # first in boot.sys_path ends up first
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    os.environ.update(boot.share.env)
    pin_malloc_thresholds()  # before any node thread allocates: see topo.process.memory
    outbox: queue.SimpleQueue[Message | None] = queue.SimpleQueue()

    def emit(name: str, line: str, err: bool) -> None:
        outbox.put(Message(Kind.OUTPUT, {"instance": name, "line": line, "err": err}))

    capture = Capture(emit, default_name=next(iter(boot.share.instances)))
    capture.install()
    capture.capture_fds()
    return Prelude(outbox, capture, start_imports(boot.share.instances.values(), capture))


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM when the supervisor dies, even by SIGKILL, so nothing is orphaned (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
