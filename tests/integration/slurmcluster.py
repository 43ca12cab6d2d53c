"""A real Slurm cluster of a few nodes on this machine, for the tests of ``hosts: {from: slurm}``.

One ``munged`` (its key, socket, pid and log in a private directory), one ``slurmctld`` in
the root namespace on the bridge's address, and one ``slurmd -N NODE`` per network
namespace of :func:`hostnet.host_network`, each with its own spool, pid and log file
(``%n`` in slurm.conf). The daemons run in the foreground as our children, so each is
ended by its own pid; whatever a job left in a node's namespace (slurmstepd, agents, node
processes) is killed with the namespace.

Two things this setup needs that a real cluster does not: slurmd enters its namespace by
``nsenter --net`` rather than ``ip netns exec``, which mounts a sysfs of its own and so
hides ``/sys/fs/cgroup`` (slurmd 22.05 refuses to start without it, whatever plugins are
configured); and all nodes share this machine's files, so one munged serves them all
through its socket file. Process tracking is ``proctrack/linuxproc`` (by parent pid: topo's
processes lead process groups of their own, which ``proctrack/pgid`` would lose).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hostnet import NETNS_SKIP_REASON, NetHost, host_network

DAEMONS = ("munged", "slurmctld", "slurmd", "srun", "salloc", "sbatch", "scontrol", "sinfo", "nsenter")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def _skip_reason() -> str | None:
    if NETNS_SKIP_REASON is not None:
        return NETNS_SKIP_REASON
    missing = [name for name in DAEMONS if _which(name) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing; .ci/run installs slurm-wlm and munge)"
    return None


SLURM_SKIP_REASON = _skip_reason()
requires_slurm = pytest.mark.skipif(SLURM_SKIP_REASON is not None, reason=SLURM_SKIP_REASON or "")


@dataclass
class SlurmNode:
    name: str
    host: NetHost

    @property
    def address(self) -> str:
        return self.host.address


@dataclass
class Cluster:
    """The running cluster: ``env`` is what a client (salloc, sbatch, topo) needs."""

    dir: Path
    conf: Path
    controller_address: str
    nodes: list[SlurmNode]
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def run(self, *cmd: str, timeout: float = 20) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def states(self) -> dict[str, str]:
        """Each node's state as sinfo says it (idle, alloc, drain, down...)."""
        out = self.run("sinfo", "-h", "-N", "-o", "%N %t")
        return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)

    def wait_states(self, wanted: set[str], timeout: float, what: str) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for name, proc in self.daemons.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       f"{self.logs()}")
            with suppress(RuntimeError, subprocess.TimeoutExpired):
                states = self.states()
                if len(states) == len(self.nodes) and all(s.rstrip("*~#") in wanted for s in states.values()):
                    return states
            time.sleep(0.05)  # polling sinfo with a deadline
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}; sinfo says {states}\n{self.logs()}")

    def jobs(self) -> list[str]:
        return self.run("squeue", "-h", "-o", "%i").split()

    def wait_no_jobs(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (jobs := self.jobs()) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling squeue with a deadline
        if jobs:
            raise AssertionError(f"jobs {jobs} still in the queue after {timeout}s")

    def logs(self) -> str:
        parts = []
        for log in sorted(self.dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _conf(d: Path, controller: str, ctl_port: int, d_port: int, nodes: list[SlurmNode]) -> str:
    names = ",".join(n.name for n in nodes)
    lines = [
        "ClusterName=topotest",
        f"SlurmctldHost={socket.gethostname()}({controller})",
        "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={ctl_port}", f"SlurmdPort={d_port}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={d / 'munge.sock'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/linear", "SchedulerType=sched/builtin",
        "MpiDefault=none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
        f"StateSaveLocation={d / 'state'}",
        f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmctldLogFile={d / 'slurmctld.log'}",
        f"SlurmdSpoolDir={d / 'spool'}/%n", f"SlurmdPidFile={d / 'slurmd-%n.pid'}",
        f"SlurmdLogFile={d / 'slurmd-%n.log'}",
        # the node's real CPU count may differ from the one written: no drain for it
        "SlurmdParameters=config_overrides", "ReturnToService=2",
        # scancel: SIGTERM, then SIGKILL 2 s later (default 30 s)
        "KillWait=2", "InactiveLimit=0", "SlurmdTimeout=10", "MessageTimeout=5",
        *(f"NodeName={n.name} NodeAddr={n.address} CPUs=2 State=UNKNOWN" for n in nodes),
        f"PartitionName=all Nodes={names} Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def _end(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextmanager
def slurm_cluster(n_nodes: int = 3, timeout: float = 30.0) -> Iterator[Cluster]:
    """A cluster of ``n_nodes`` idle nodes ``n1``..; everything removed on exit, even when
    the body (or the start) failed."""
    if SLURM_SKIP_REASON is not None:
        pytest.skip(SLURM_SKIP_REASON)
    with ExitStack() as stack:
        # short: munged's socket path must fit a sockaddr_un (108 bytes)
        d = Path(tempfile.mkdtemp(prefix="topo-slurm-"))
        stack.callback(shutil.rmtree, d, True)
        net = stack.enter_context(host_network(n_nodes))
        nodes = [SlurmNode(f"n{i + 1}", h) for i, h in enumerate(net.hosts)]
        for sub in ("state", "spool"):
            (d / sub).mkdir()
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        conf = d / "slurm.conf"
        conf.write_text(_conf(d, net.local_address, _free_port(net.local_address), _free_port("127.0.0.1"), nodes))
        cluster = Cluster(d, conf, net.local_address, nodes)

        def stop_all() -> None:
            for proc in reversed(cluster.daemons.values()):
                _end(proc)

        # runs before host_network's teardown, which kills what jobs left in the namespaces
        stack.callback(stop_all)

        def start(name: str, *cmd: str) -> None:
            with open(d / f"{name}.out", "wb") as out:
                cluster.daemons[name] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                                         env=cluster.env, start_new_session=True)

        start("munged", "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={d / 'munge.sock'}",
              f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'munged.log'}", f"--seed-file={d / 'munged.seed'}")
        start("slurmctld", "slurmctld", "-D", "-i", "-f", str(conf))
        for node in nodes:
            start(f"slurmd-{node.name}", "nsenter", f"--net=/run/netns/{node.host.name}",
                  "slurmd", "-D", "-f", str(conf), "-N", node.name)
        cluster.wait_states({"idle"}, timeout, "every node idle")
        yield cluster
