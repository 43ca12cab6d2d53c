"""The fake hosts the cross-host tests run on: reachable, isolated by name, and fully removed."""

from __future__ import annotations

import select
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
from conftest import wait_until
from hostnet import host_network, requires_netns, sshd_in_namespace

pytestmark = requires_netns

# Accepts connections forever and answers each with its own address; prints its port first.
SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], 0))
print(srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    conn.sendall(b"pong from " + sys.argv[1].encode())
    conn.close()
"""
CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    print(s.recv(100).decode())
"""


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; killed and reaped however the test ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes its pipes


def start_server(procs: list[subprocess.Popen[str]], prefix: list[str], address: str,
                 timeout: float = 10.0) -> int:
    """Starts SERVER under ``prefix`` and returns its port once it listens."""
    proc = subprocess.Popen([*prefix, sys.executable, "-c", SERVER, address], text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    procs.append(proc)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.strip():
        proc.kill()
        raise AssertionError(f"server on {address} not listening: {proc.communicate()[1]}")
    return int(line)


def ask(prefix: list[str], address: str, port: int) -> str:
    """What SERVER at address:port answers, asked from the host ``prefix`` runs on."""
    if not prefix:  # the root namespace, i.e. the local host
        with socket.create_connection((address, port), timeout=5) as s:
            return s.recv(100).decode()
    done = subprocess.run([*prefix, sys.executable, "-c", CLIENT, address, str(port)],
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_host_reaches_every_other_and_the_local_host(
        procs: list[subprocess.Popen[str]]) -> None:
    # Namespace to namespace crosses the bridge (bridge netfilter, if on, sees it); namespace
    # to root ends at the bridge's own address. Neither needs ip_forward.
    with host_network(2) as net:
        places: list[tuple[list[str], str]] = [([], net.local_address)]
        places += [(h.launch(), h.address) for h in net.hosts]
        for server_prefix, server_address in places:
            port = start_server(procs, server_prefix, server_address)
            for client_prefix, _ in places:
                if client_prefix is not server_prefix:
                    reply = ask(client_prefix, server_address, port)
                    assert reply == f"pong from {server_address}"


def test_networks_side_by_side_have_distinct_names_and_subnets() -> None:
    with host_network(1) as one, host_network(1) as two:
        assert one.bridge != two.bridge
        assert one.hosts[0].name != two.hosts[0].name
        assert one.local_address.rsplit(".", 1)[0] != two.local_address.rsplit(".", 1)[0]
        assert one.hosts[0].address.startswith(one.local_address.rsplit(".", 1)[0] + ".")
        assert all(len(name) <= 15 for name in [one.bridge, *one.veths, two.bridge, *two.veths])


class BodyFailed(Exception):
    pass


@pytest.mark.parametrize("body_raises", [False, True])
def test_teardown_leaves_no_namespace_link_or_process(body_raises: bool) -> None:
    leftover: subprocess.Popen[str] | None = None
    try:
        expect: AbstractContextManager[object] = (
            pytest.raises(BodyFailed) if body_raises else nullcontext())
        with expect, host_network(2) as net:
            names = [h.name for h in net.hosts]
            links = [net.bridge, *net.veths]
            # as an agent would: a process nobody stops, in its own session
            leftover = subprocess.Popen([*net.hosts[1].launch(), "sleep", "600"],
                                        start_new_session=True, text=True)
            wait_until(lambda: bool(subprocess.run(["ip", "netns", "pids", names[1]],
                                                   capture_output=True, text=True).stdout.strip()),
                       10, "the leftover process to run in its namespace")
            if body_raises:
                raise BodyFailed
        assert leftover.wait(timeout=10) == -9
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not [n for n in names if n in netns.split()]
        ip_link = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert not [link for link in links if f" {link}:" in ip_link or f" {link}@" in ip_link]
    finally:
        if leftover is not None and leftover.poll() is None:
            leftover.kill()
            leftover.wait(timeout=10)


def test_ssh_runs_a_command_on_the_host(tmp_path: Path) -> None:
    with host_network(1) as net, sshd_in_namespace(net.hosts[0], tmp_path / "sshd") as sshd:
        # ssh joins its arguments into one string for the remote shell: quote them as one
        remote = shlex.join([sys.executable, "-c", "print(42)"])
        done = subprocess.run([*sshd.launch(), remote], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
        # and it ran on that host: its network is the namespace's
        done = subprocess.run([*sshd.launch(), "ip -o -4 addr show dev eth0"],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        assert f"inet {net.hosts[0].address}/24" in done.stdout, done.stderr
