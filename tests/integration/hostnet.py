"""Fakes several hosts on this machine, for the cross-host tests.

Each "host" is a Linux network namespace with its own address, joined to the root namespace
(where the supervisor runs) by a veth pair plugged into a bridge: one L2 segment, so no
routing, no IP forwarding, and nothing outside the machine is reached. A host's command prefix
(``NetHost.launch()`` or, through sshd, ``Sshd.launch()``) is what the agent is started with.
Names carry the pid and a counter, so pytest-xdist workers and concurrent tests don't collide.
"""

from __future__ import annotations

import fcntl
import ipaddress
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil
import pytest

from described import describe


def _skip_reason() -> str | None:
    """Cheap checks only (run at import, i.e. at collection): the real test is creating one."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


NETNS_SKIP_REASON: str | None = _skip_reason()
requires_netns = pytest.mark.skipif(NETNS_SKIP_REASON is not None, reason=NETNS_SKIP_REASON or "")

SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")  # the hosts' /24 is picked in it
_counter = itertools.count()
_BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def _run(*cmd: str) -> str:
    """Runs a command; a failure raises with its stderr, which says what went wrong."""
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


_ip = partial(_run, "ip")


@dataclass
class NetHost:
    """One fake host: a network namespace whose ``eth0`` has ``address``."""

    name: str
    address: str

    def launch(self) -> list[str]:
        """Command prefix that runs a command on this host (same filesystem, own network)."""
        return ["ip", "netns", "exec", self.name]


@dataclass
class Network:
    """The fake hosts, and the bridge address of the local host (the root namespace).
    ``bridge`` and ``veths`` name the root-namespace interfaces, for checking cleanup."""

    local_address: str
    hosts: list[NetHost]
    bridge: str = ""
    veths: list[str] = field(default_factory=list)


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /24 of SUPERNET that no interface on this machine has an address in."""
    used = [ipaddress.ip_interface(word).network for line in _ip("-o", "-4", "addr").splitlines()
            for prev, word in itertools.pairwise(line.split()) if prev == "inet"]
    subnets = list(SUPERNET.subnets(new_prefix=24))
    for _ in range(64):
        net = random.choice(subnets)
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /24 in {SUPERNET}: namespaces left behind by a crash?")


def _kill_namespace_processes(ns: str, timeout: float = 10.0) -> None:
    """SIGKILLs whatever still runs in ``ns`` and waits until it is gone: deleting a namespace
    with processes inside only unmounts its name, the processes keep running."""
    deadline = time.monotonic() + timeout
    while pids := [int(p) for p in _ip("netns", "pids", ns).split()]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in namespace {ns} survive SIGKILL")
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _forward_rule(bridge: str) -> list[str] | None:
    """With br_netfilter loaded and bridge-nf-call-iptables=1, frames between two bridge ports
    go through iptables FORWARD, whose policy is often DROP (Docker sets it). An ACCEPT for this
    bridge only lets them through; the sysctl itself is left alone, other bridges share it."""
    if shutil.which("iptables") is None or not _BRIDGE_NF.exists():
        return None
    if _BRIDGE_NF.read_text().strip() != "1":
        return None
    return ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]


@contextmanager
def host_network(n_hosts: int) -> Iterator[Network]:
    """A bridge with an address in the root namespace plus ``n_hosts`` namespaces on it.

    Everything is removed on exit, even if the body raised: processes left in the namespaces
    are killed first. Cleanup is best effort step by step; what failed is raised at the end.
    """
    if not 1 <= n_hosts <= 250:
        raise ValueError(f"n_hosts must be in 1..250, not {n_hosts}")
    tag = f"{os.getpid() & 0xFFFFF:05x}{next(_counter) & 0xFF:02x}{secrets.token_hex(1)}"
    bridge = f"tb{tag}"  # at most 15 characters, the kernel's limit for interface names
    namespaces: list[str] = []
    net = Network(local_address="", hosts=[], bridge=bridge)
    bridge_made = False  # what teardown must undo
    rule_added: list[str] | None = None
    try:
        for i in range(n_hosts):  # first, as it is what fails where namespaces are not allowed
            try:
                _ip("netns", "add", f"topo-{tag}-{i}")
            except RuntimeError as exc:
                if i == 0:
                    pytest.skip(f"cannot create a network namespace: {exc}")
                raise
            namespaces.append(f"topo-{tag}-{i}")
        # one process at a time picks and takes a /24, so xdist workers can't take the same
        with open(os.path.join(tempfile.gettempdir(), "topo-hostnet.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            subnet = _free_subnet()
            _ip("link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
            bridge_made = True
            net.local_address = str(subnet[1])
            _ip("addr", "add", f"{subnet[1]}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        if rule := _forward_rule(bridge):
            _run("iptables", "-w", "-I", *rule)
            rule_added = rule
        for i, ns in enumerate(namespaces):
            veth, address = f"tv{tag}{i:02x}", str(subnet[2 + i])
            # the peer is born in the namespace: no name to clash in the root one meanwhile
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            net.veths.append(veth)
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "set", veth, "master", bridge, "up")
            net.hosts.append(NetHost(name=ns, address=address))
        yield net
    finally:
        # Killing first: a namespace with processes in it outlives its deletion. Deleting a
        # veth removes both ends at once; left to the namespace's deletion, it goes later.
        steps: list[Callable[[], object]] = [
            partial(_kill_namespace_processes, ns) for ns in namespaces]
        steps += [partial(_ip, "link", "del", veth) for veth in net.veths]
        steps += [partial(_ip, "netns", "del", ns) for ns in namespaces]
        if rule_added:
            steps.append(partial(_run, "iptables", "-w", "-D", *rule_added))
        if bridge_made:
            steps.append(partial(_ip, "link", "del", bridge))
        errors: list[str] = []
        for step in steps:  # best effort: one failure doesn't keep the rest from running
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - all reported below
                errors.append(str(exc))
        if errors:
            raise RuntimeError("host_network teardown: " + "; ".join(errors))


@dataclass
class Sshd:
    """An sshd inside a fake host, accepting root with the client key in its workdir."""

    address: str
    port: int
    key: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def launch(self) -> list[str]:
        """ssh command prefix for this host; never prompts, never records its host key."""
        return ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", f"root@{self.address}"]


def _sshd_config(host: NetHost, port: int, workdir: Path) -> str:
    """Private everything: keys, pid file and authorized_keys live in ``workdir``; StrictModes
    off because pytest's tmp dirs aren't owned the way sshd wants; no PAM, which a minimal
    container lacks; many concurrent connections, since tests open several at once."""
    return "\n".join([
        f"ListenAddress {host.address}", f"Port {port}", f"HostKey {workdir / 'host_key'}",
        f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no", "UseDNS no", "PrintMotd no", "PrintLastLog no", "X11Forwarding no",
        "MaxStartups 100", "MaxSessions 100", "LogLevel INFO", "",
    ])


@contextmanager
def sshd_in_namespace(host: NetHost, workdir: Path, port: int = 2222,
                      timeout: float = 15.0) -> Iterator[Sshd]:
    """Runs sshd in ``host``'s namespace until exit; ready once it accepts TCP connections."""
    sshd_bin = "/usr/sbin/sshd"  # sshd insists on being started by its absolute path
    if not os.access(sshd_bin, os.X_OK):
        pytest.skip("openssh-server is not installed (.ci/run installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"topo-{name}",
                        "-f", str(workdir / name)], check=True, stdin=subprocess.DEVNULL)
    (workdir / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
    config = workdir / "sshd_config"
    config.write_text(_sshd_config(host, port, workdir))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = workdir / "sshd.log"  # a file, not a pipe: nobody reads it while tests run
    with open(log, "wb") as err:
        proc = subprocess.Popen([*host.launch(), sshd_bin, "-D", "-e", "-f", str(config)],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
    sshd = Sshd(host.address, port, workdir / "client_key", proc, log)
    try:
        # Ours is listening once it logs so (a connect alone could reach another sshd on the
        # same address and port); and reachable once a connect from here succeeds.
        listening = f"Server listening on {host.address} port {port}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
            if listening in log.read_text():
                with suppress(OSError), socket.create_connection((host.address, port), 1):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd not accepting on {host.address}:{port} "
                                   f"after {timeout}s:\n{log.read_text()}")
            time.sleep(0.02)
        yield sshd
    finally:
        _kill_tree(proc)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILLs sshd and the sessions it forked (anything that escaped the tree, e.g. by
    daemonising, is still in the namespace: host_network's teardown kills it)."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with suppress(psutil.NoSuchProcess):
            member.kill()
    proc.wait(timeout=10)
    psutil.wait_procs(family, timeout=10)


def hosts_block(net: Network, launch: dict[str, list[str]] | None = None) -> str:
    """The ``hosts:`` of a file: ``local`` is this namespace, ``h1``... the namespaces."""
    lines = ["hosts:", f"  local: {{address: {net.local_address}}}"]
    for i, host in enumerate(net.hosts, 1):
        prefix = (launch or {}).get(f"h{i}", host.launch())
        lines.append(f"  h{i}: {{address: {host.address}, launch: {json.dumps(prefix)}, "
                     f"python: {json.dumps(sys.executable)}}}")
    return "\n".join(lines)


def hosts_emptied(net: Network, timeout: float) -> None:
    """Waits (within ``timeout``) until no process is left inside the fake hosts; on
    timeout, says which are left, with their command lines."""
    deadline = time.monotonic() + timeout
    while True:
        left = namespace_pids(net)
        if not left:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # polling a condition with a deadline, not waiting blindly
    described = [describe(pid) for pid in left]
    raise AssertionError(f"after {timeout}s, processes left on the hosts: " + "; ".join(described))


def namespace_pids(net: Network) -> list[int]:
    """Every process inside the fake hosts: none may outlive a run."""
    pids: list[int] = []
    for host in net.hosts:
        out = subprocess.run(["ip", "netns", "pids", host.name], capture_output=True, text=True, check=False)
        pids += [int(p) for p in out.stdout.split()]
    return pids
