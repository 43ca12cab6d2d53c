"""A node process's first steps, before it imports zmq and its runtime.

The process exists to run its nodes, and a node's module can be the slowest thing in it
to load. So the first steps are only what must come before that import: the parent-death
signal, a process group of its own and no descriptor handed on (:mod:`topo.process.family`),
SIGINT/SIGHUP handling, ``sys.path`` and the process's ``env`` (a node module sees them),
glibc's malloc settings (before anything allocates much), and the output capture (what the
import prints is the node's, prefixed). Then every node module's import starts
in the background (:mod:`topo.process.nodecode`), and only then does the process import zmq and
its runtime, bind, connect and gate, while the import goes on. None of this imports zmq.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NamedTuple

from topo.process import family
from topo.process.boot import Boot, PassFds
from topo.process.capture import Capture
from topo.process.control import Kind, Message
from topo.process.memory import pin_malloc_thresholds
from topo.process.nodecode import NodeCode, start_imports
from topo.process.outbox import Outbox
from topo.process.records import write_line

PR_SET_PDEATHSIG = 1


class Prelude(NamedTuple):
    """What the first steps leave for the runtime."""

    #: Events for the supervisor, queued until the runtime's outbox thread sends them;
    #: output within a bound (a printing node waits), see :mod:`topo.process.outbox`.
    outbox: Outbox
    capture: Capture
    #: Each node's code, by instance name, its module's import under way.
    code: dict[str, NodeCode]


def begin(boot: Boot, output: PassFds | None = None) -> Prelude:
    """``output``: the write ends of the pipes (records, fd 1, fd 2) that the process that
    started this one reads (:mod:`topo.process.records`); without them (topo itself always
    hands them, the supervisor and the agents alike) output goes to the supervisor as
    events, and fds 1/2 are read by a thread."""
    _die_with_parent(boot.parent_pid)
    # a group of its own, so that what its nodes start can be ended with it however it
    # ends, and no inherited descriptor (multiprocessing's sentinel) handed on: family
    family.lead_own_group()
    family.keep_inherited_fds()
    # Ctrl-C, and the SIGHUP of a closed terminal, reach the supervisor's process group,
    # which this process leaves just now; the supervisor decides. A handler, not SIG_IGN:
    # an ignored signal would be inherited by programs a node starts, a handler is not.
    # Both were blocked since the first instruction (topo.supervisor.spawn.start); one
    # that came meanwhile lands here.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGHUP})
    for entry in reversed(boot.sys_path):  # first in boot.sys_path ends up first
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    os.environ.update(boot.share.env)
    pin_malloc_thresholds()  # before any node thread allocates: see topo.process.memory
    outbox = Outbox()
    default = next(iter(boot.share.instances))
    if output is not None:
        records, out, err = output.fds
        os.set_inheritable(records, False)  # the node's lines are its own, not a subprocess's
        capture = Capture(lambda name, line, is_err: write_line(records, name, line, is_err), default)
        capture.install()
        capture.redirect_fds(out, err)
    else:
        def emit(name: str, line: str, err: bool) -> None:
            outbox.put_output(Message(Kind.OUTPUT, {"instance": name, "line": line, "err": err}), len(line))

        capture = Capture(emit, default_name=default)
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
