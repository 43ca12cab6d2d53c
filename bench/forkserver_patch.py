"""The forkserver experiment of ``python bench/launch.py --profile`` (not topo as shipped).

Preloaded once by a multiprocessing forkserver, so that every process of a run is a fork
of a process that has already imported zmq and topo's runtime, instead of a new
interpreter importing them again. Children of a forkserver have the forkserver, not the
supervisor, as parent: the two checks topo's runtime makes of its parent's pid look at the
forkserver instead (it exits when the supervisor dies, so PR_SET_PDEATHSIG still reaches
the children). Nothing here opens a socket or starts a thread: forking stays safe.
"""

from __future__ import annotations

import os

import zmq  # noqa: F401

import bench.nodes  # noqa: F401
import topo.process.runner
import topo.process.runtime

FORKSERVER = os.getpid()
_die_with_parent = topo.process.runtime._die_with_parent


def _die_with_forkserver(parent_pid: int) -> None:
    _die_with_parent(FORKSERVER)


topo.process.runtime._die_with_parent = _die_with_forkserver
topo.process.runtime.ProcessRuntime.orphaned = property(lambda self: os.getppid() != FORKSERVER)  # type: ignore[assignment]

