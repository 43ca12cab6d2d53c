"""The Slurm allocation topo runs in, asked of Slurm: the hosts of ``hosts: {from: slurm}``.

:mod:`topo.file.allocation` places nodes on an allocation's nodes without starting any
process; this module is what it is handed (by the command line, :func:`install`) to learn
them: the job and its node list from the environment Slurm gives every program of an
allocation (``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST``), the names expanded by
``scontrol show hostnames`` (or, without scontrol, by the same rule in Python), each
node's address from Slurm's own ``NodeAddr`` (``scontrol show node``: the address Slurm
reaches its slurmd at), and the node ``topo up`` runs on from ``SLURMD_NODENAME`` (set in
a batch script and in job steps) or this machine's name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Mapping

from topo.errors import UsageError
from topo.file import allocation
from topo.file.allocation import Allocation, SlurmNode
from topo.file.model import AllocationSpec

#: Bound on each scontrol call: it asks slurmctld, which may be busy but must answer.
SCONTROL_TIMEOUT = 20.0
#: Run on each node by :func:`on_interface`: its name and its IPv4 address on the interface
#: ``sys.argv[1]`` (SIOCGIFADDR), ``-`` for none. No import of topo: it starts in milliseconds.
READ_ADDRESS = """\
import fcntl, os, socket, struct, sys
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        a = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", sys.argv[1][:15].encode()))[20:24])
except OSError:
    a = "-"
print(os.environ.get("SLURMD_NODENAME") or socket.gethostname(), a, flush=True)
"""


def install() -> None:
    """Makes files with ``hosts: {from: slurm}`` take their hosts from the allocation."""
    allocation.use(discover)


def discover(spec: AllocationSpec, environ: Mapping[str, str] | None = None) -> Allocation | None:
    """The allocation of the environment (None outside one)."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not job or not nodelist:
        return None
    names = hostnames(nodelist)
    python = spec.python or sys.executable
    addresses = on_interface(job, names, spec.interface, python) if spec.interface else node_addresses(names)
    here = env.get("SLURMD_NODENAME") or ""
    if here not in names:
        short = socket.gethostname().split(".")[0]
        here = short if short in names else ""
    nodes = tuple(SlurmNode(n, addresses.get(n, n)) for n in names)
    # outside the allocation: the address the kernel would send to the first node from
    local_address = addresses.get(here) if here else _route_to(nodes[0].address)
    return Allocation(job, nodes, here or None, local_address or nodes[0].address, sys.executable)


def on_interface(job: str, names: list[str], interface: str, python: str) -> dict[str, str]:
    """Each node's IPv4 address on ``interface``, read there: one job step over every node,
    a few lines of Python of the standard library alone (:data:`READ_ADDRESS`)."""
    cmd = ["srun", f"--jobid={job}", f"--nodes={len(names)}", f"--ntasks={len(names)}", "--ntasks-per-node=1",
           "--overlap", "--quiet", python, "-I", "-S", "-c", READ_ADDRESS, interface]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=SCONTROL_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("hosts: {from: slurm, interface: ...} reads each node's address there with srun, "
                         "which is not installed here") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{' '.join(cmd)}: no answer within {SCONTROL_TIMEOUT:g}s") from None
    found = dict(line.split()[:2] for line in done.stdout.splitlines() if len(line.split()) >= 2)
    missing = [n for n in names if n not in found or found[n] == "-"]
    if done.returncode != 0 or missing:
        raise UsageError(f"no IPv4 address on interface {interface!r} on node(s) {', '.join(missing) or '?'} "
                         f"({' '.join(cmd[:7])} ... exited with {done.returncode}: {done.stderr.strip()[-300:]})")
    return found


def hostnames(nodelist: str) -> list[str]:
    """``scontrol show hostnames``: Slurm's own expansion; the same rule in Python without it."""
    try:
        out = _scontrol("show", "hostnames", nodelist)
    except FileNotFoundError:
        try:
            return allocation.expand_nodelist(nodelist)
        except ValueError as err:
            raise UsageError(f"SLURM_JOB_NODELIST={nodelist!r} is not a Slurm host list: {err}") from None
    names = out.split()
    if not names:
        raise UsageError(f"scontrol show hostnames {nodelist} named no node")
    return names


def node_addresses(names: list[str]) -> dict[str, str]:
    """Each node's NodeAddr, as an IP address where this machine can resolve it."""
    try:
        out = _scontrol("-o", "show", "node", ",".join(names))
    except FileNotFoundError:
        out = ""  # no scontrol: the names are the addresses
    found: dict[str, str] = {}
    for line in out.splitlines():
        fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
        name, addr = fields.get("NodeName"), fields.get("NodeAddr")
        if name and addr:
            found[name] = _resolved(addr)
    return {n: found.get(n) or _resolved(n) for n in names}


def _resolved(address: str) -> str:
    try:
        infos = socket.getaddrinfo(address, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return address  # left to libzmq on each host
    return str(infos[0][4][0]) if infos else address


def _route_to(address: str) -> str:
    """This machine's address on the way to ``address`` (a UDP socket's connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((address, 9))
            return str(s.getsockname()[0])
    except OSError:
        return ""


def _scontrol(*args: str) -> str:
    try:
        done = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=SCONTROL_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"scontrol {' '.join(args)}: no answer within {SCONTROL_TIMEOUT:g}s "
                         "(is slurmctld reachable from here?)") from None
    if done.returncode != 0:
        raise UsageError(f"scontrol {' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout

