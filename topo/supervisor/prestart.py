"""``topo up``'s local processes started as soon as the plan exists, before the supervisor.

A node process takes a few hundred milliseconds to be of use (a new interpreter, zmq, the
node's own imports); the supervisor meanwhile still has zmq, psutil and itself to import
and its control sockets to bind. Started first, the processes do their start-up alongside
the supervisor's instead of after it. Nothing is lost by it: a process's control sockets
connect to addresses known in advance (:func:`topo.process.boot.control_addresses`); if the
supervisor has not bound them yet, libzmq retries the connect after the runtime's short
reconnect interval, and the events it sends meanwhile wait in its queue. The supervisor
adopts the processes (:meth:`topo.supervisor.processes.Processes.adopt`) and runs as it would have.

Only for a run on this one host: processes of other hosts are started by their agents.
A run with CURVE links has its keys made here (:attr:`Prestarted.keys`), so that they
exist before the first process that needs them.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from topo.supervisor import spawn
from topo.process.boot import Boot, Recording, control_addresses
from topo.plan.planner import Plan
from topo.supervisor.rundir import RunDir
from topo.plan.planner import share_of

if TYPE_CHECKING:
    from topo.process.curve import HostKeys


class Prestarted(NamedTuple):
    #: ``time.monotonic()`` when the first process was started: the ready timeout counts
    #: from it, for the supervisor as for the processes.
    started: float
    #: process name → its started multiprocessing Process, in the order started
    procs: dict[str, Any]
    #: The run's CURVE keys by host, made here when some link is CURVE (else None).
    keys: dict[str, HostKeys] | None = None

    def kill(self) -> None:
        """For a ``topo up`` that fails before its supervisor runs: nothing outlives it."""
        for proc in self.procs.values():
            spawn.signal_tree(proc.pid, signal.SIGKILL)
            proc.join(5)


def can_prestart(plan: Plan) -> bool:
    return not plan.remote_hosts


def prestart(plan: Plan, rd: RunDir, *, ready_timeout: float, grace: float,
             sys_path: tuple[str, ...], stop: Callable[[], bool] = lambda: False,
             record: Recording | None = None) -> Prestarted | None:
    """Every process of the plan started, in plan order (those with receiving sockets
    first), as the supervisor's first start of each; None if the plan is not one for it.

    ``stop``: whether a stop has been asked (``topo up``'s signal handlers record Ctrl-C,
    SIGTERM, SIGHUP from its first step). Starting a hundred processes takes seconds: once
    it is true no further one is started, and those started are handed to the supervisor,
    which stops them as it stops any run. The handlers never raise, so no interruption
    can come between a process's start and its recording here (a process lost so was
    joined forever by multiprocessing at exit). ``record``: ``topo up --record``'s sockets."""
    if not can_prestart(plan):
        return None
    events, commands = control_addresses(str(rd.sockets))
    keys = None
    if plan.key_hosts:
        from topo.process.curve import make_keys  # (zmq: only for a run that has CURVE)

        keys = make_keys(plan.key_hosts)
    started = time.monotonic()
    ready_by = time.time() + ready_timeout
    procs: dict[str, Any] = {}
    try:
        for proc in plan.processes:
            if stop():
                break
            if any(plan.instances[i].exec for i in proc.instances):
                continue  # a program starts once the nodes it sends to are ready: the supervisor's
            boot = Boot(share_of(plan, proc.name), events, commands, str(rd.sockets), ready_by, grace,
                        os.getpid(), sys_path, keys=keys[plan.local_host] if keys else None, record=record)
            procs[proc.name] = spawn.start(boot)
    except BaseException:
        Prestarted(started, procs).kill()
        raise
    return Prestarted(started, procs, keys)
