"""Starting an exec node's program: its wiring, its environment, the program itself.

A program is spawned directly, never through multiprocessing, and the fast way: Python's
``subprocess`` takes ``vfork`` when it runs no Python code in the child, so starting a
program costs what starting it bare costs (nothing runs between ``fork`` and ``exec``
but the process group and the descriptors). What a Python node does in its first
steps is done around it:

- its own process group (``setpgid`` in the child): what it forks is ended with it, by
  the supervisor when it is seen to end (:meth:`topo.supervisor.watch.Started.reap`),
  and by the run's keeper if the supervisor dies (:mod:`topo.supervisor.keeper`, which
  stands in for ``PR_SET_PDEATHSIG``);
- its output: fds 1 and 2 are the write ends of the pipes the supervisor reads
  (:mod:`topo.supervisor.pipes`), prefixed and logged as a Python node's; stdin is
  ``/dev/null``; it inherits no other descriptor;
- its environment: the supervisor's (as it was when the run began: :class:`Starts`
  keeps it, encoded once, with where each program was found), the node's ``env:``, then
  topo's variables (:func:`topo.plan.execenv.exec_env`); its arguments with their
  placeholders expanded;
- its working directory: the topology file's, where its relative program path, and
  every relative path its arguments name, are written from;
- watched by its pidfd (:class:`topo.supervisor.watch.Started`).

Its endpoints are final before it starts: those it connects to are bound already (the
supervisor starts it only then), ipc paths are in the run's directory, and a
``tcp://ADDR:*`` it must bind gets a port picked here (:func:`pick_port`; a restart
binds the same one again).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any, Mapping

from topo.file.execnodes import resolve_program
from topo.plan.execenv import exec_env, expand_args, wiring
from topo.plan.planner import Plan, share_of
from topo.plan.share import RUN_DIR
from topo.supervisor.keeper import Keeper
from topo.supervisor.pipes import open_program_pipes
from topo.supervisor.watch import Started


class Starts:
    """What every program start of a run shares, made once rather than at each start:
    the supervisor's environment, encoded (copying and encoding ``os.environ`` was most of
    what a start cost beside ``fork``/``exec``), and where each program was found on each
    ``PATH`` (a program found once is not looked for again; one that is gone since fails
    at its ``exec``, saying so)."""

    def __init__(self) -> None:
        self.environ: dict[bytes, bytes] = dict(os.environb)
        self._found: dict[tuple[str, str, str], str] = {}

    def env(self, *layers: Mapping[str, str]) -> dict[bytes, bytes]:
        """The supervisor's environment with ``layers`` over it, in order."""
        env = dict(self.environ)
        for layer in layers:
            env.update((os.fsencode(k), os.fsencode(v)) for k, v in layer.items())
        return env

    def resolve(self, program: str, topology_file: str, path: str) -> str | None:
        key = (program, topology_file, path)
        found = self._found.get(key)
        if found is None:
            found = resolve_program(program, topology_file, path)
            if found is not None:
                self._found[key] = found
        return found


class ProgramError(Exception):
    """The program could not be started (gone, not executable, refused by ``exec``)."""


class Program:
    """A started program as :class:`topo.supervisor.watch.Started` sees a process: the
    parts of multiprocessing's ``Process`` it uses, over a ``Popen``."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self._never: tuple[int, int] | None = None

    @property
    def sentinel(self) -> int:
        """Without pidfds only: a descriptor never readable (the owner asks
        :meth:`Started.has_exited` every :data:`topo.supervisor.watch.POLL_EXITS` s)."""
        if self._never is None:
            self._never = os.pipe()
        return self._never[0]

    @property
    def exitcode(self) -> int | None:
        return self.popen.returncode

    def is_alive(self) -> bool:
        """Reaps it once it has exited (as multiprocessing's does)."""
        alive = self.popen.poll() is None
        if not alive and self._never is not None:
            for fd in self._never:
                os.close(fd)
            self._never = None
        return alive


def pick_port(address: str) -> str:
    """``tcp://HOST:*`` with a port that is free now: bound to port 0 and let go. Another
    program could take it in the moment before the program binds it (the kernel hands
    out ports in order, so it is unlikely): the program's bind then fails, and it ends
    as a failure its restart policy handles."""
    host = address[len("tcp://"):].rpartition(":")[0]
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((bare if bare != "*" else "", 0))
        port = s.getsockname()[1]
    return f"tcp://{host}:{port}"


def addresses(plan: Plan, instance: str, run_dir: str, bound: Mapping[str, str]) -> dict[str, str]:
    """The final address of every endpoint the instance binds or connects to: as bound
    before (a restart binds the same again), else its ipc path in ``run_dir`` or a port
    picked for its ``:*``; those it connects to must be in ``bound`` (KeyError otherwise:
    the caller starts it too soon)."""
    out: dict[str, str] = {}
    for sock in plan.instances[instance].sockets:
        for key in sock.binds:
            if key in bound:
                out[key] = bound[key]
                continue
            address = plan.endpoints[key].address.replace(RUN_DIR, run_dir)
            out[key] = pick_port(address) if address.startswith("tcp://") and address.endswith(":*") else address
        for key in sock.connects:
            out[key] = bound[key]
    return out


def start(plan: Plan, process: str, run_dir: str, bound: Mapping[str, str],
          keeper: Keeper, extra_env: Mapping[str, str] | None = None,
          pass_fds: tuple[int, ...] = (), starts: Starts | None = None) -> tuple[Started, dict[str, str]]:
    """The program of exec process ``process`` started; returns it, watched, with the
    endpoints it binds (key → address). Raises :class:`ProgramError` when it cannot be.
    ``starts``: the run's (a new one, with the environment as it is now, if not given)."""
    share = share_of(plan, process)
    (name,) = share.instances
    inst = plan.instances[name]
    where = addresses(plan, name, run_dir, bound)
    starts = starts or Starts()
    # NOTIFY_SOCKET, WATCHDOG_USEC, TOPO_GO_FD in extra_env (topo.supervisor.execsignals)
    env = starts.env(share.env, exec_env(plan.topology, share.instances[name], where), extra_env or {})
    program = inst.exec[0]
    found = starts.resolve(program, plan.file, os.fsdecode(env.get(b"PATH", os.defpath.encode())))
    if found is None:
        where_looked = "relative to the topology file's directory" if "/" in program else "on PATH"
        raise ProgramError(f"program {program!r} not found ({where_looked})")
    argv = [program, *expand_args(inst.exec[1:], wiring(share.instances[name], where))]
    output, (out_w, err_w) = open_program_pipes(name)  # (no records pipe: its lines are its fds 1 and 2)
    group: dict[str, Any] = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    try:
        popen = subprocess.Popen(argv, executable=found, env=env, cwd=os.path.dirname(os.path.abspath(plan.file)),
                                 stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, close_fds=True,
                                 pass_fds=pass_fds, **group)
    except OSError as err:
        for fd in output.fds:
            os.close(fd)
        raise ProgramError(f"program {program!r} could not be started: {err.strerror or err}") from None
    finally:
        os.close(out_w)
        os.close(err_w)
    keeper.add(popen.pid)
    binds = {k: where[k] for s in inst.sockets for k in s.binds}
    return Started(Program(popen, f"topo:{process}"), output), binds
