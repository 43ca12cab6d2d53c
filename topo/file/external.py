"""Endpoints outside the topology (a socket's ``external:``): their form, and their clashes.

topo picks every endpoint of a link itself; an external one is the user's, written for
peers topo does not start (a client, a broker that already runs). So it is checked here
as outside input: a transport that can reach outside the process (tcp, ipc), a fixed port
or path (an outsider cannot learn one the kernel picks), and no two binds of one port or
one socket file on a host (the second would fail at run time, or, for ipc, silently take
the file over: libzmq unlinks what is there before it binds).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from typing import NamedTuple

from topo.errors import Problem
from topo.file.model import ExternalEndpoint, NodeSpec, SocketSpec, Topology

#: A socket path's limit (``sockaddr_un``: 108 bytes with the NUL).
MAX_IPC_PATH = 107
#: The transports a file may name that are not for external endpoints, with the reason.
_OTHER_TRANSPORTS = {
    "inproc": "inproc:// reaches only sockets of the same process, which topo wires itself: "
              "it cannot be outside the topology (write a link instead)",
}
_WILDCARDS = frozenset({"*", "0.0.0.0", "::", "[::]"})


class Parsed(NamedTuple):
    """An endpoint's parts: ``transport`` "tcp" (``host``, ``port``) or "ipc" (``path``)."""

    transport: str
    host: str
    port: int
    path: str


def parse(address: str, binds: bool) -> Parsed | str:
    """The endpoint's parts, or what is wrong with it, in words."""
    if address != address.strip() or any(c.isspace() for c in address):
        return "an endpoint has no spaces"
    scheme, sep, rest = address.partition("://")
    if not sep:
        return "an endpoint is TRANSPORT://ADDRESS, such as tcp://0.0.0.0:5555 or ipc:///tmp/app.sock"
    if scheme in _OTHER_TRANSPORTS:
        return _OTHER_TRANSPORTS[scheme]
    if scheme == "ipc":
        return _ipc(rest, binds)
    if scheme == "tcp":
        return _tcp(rest, binds)
    return f"transport {scheme!r} is not for external endpoints: tcp:// or ipc://"


def _ipc(path: str, binds: bool) -> Parsed | str:
    if not path:
        return "ipc:// needs a path: ipc:///tmp/app.sock"
    if path == "*":
        return "ipc://* makes a name nobody outside can know: write the path"
    if len(path.encode()) > MAX_IPC_PATH:
        return f"the path has {len(path.encode())} bytes, more than the {MAX_IPC_PATH} a socket path may have"
    return Parsed("ipc", "", 0, path)


def _tcp(rest: str, binds: bool) -> Parsed | str:
    if ";" in rest:
        return "a source address (SOURCE;HOST:PORT) is not supported here"
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        return "tcp:// needs a host and a port: tcp://HOST:PORT" + (" (tcp://*:PORT binds every interface)" if binds else "")
    if not port:
        return "the port is empty: tcp://HOST:PORT"
    if port in ("*", "0"):
        return ("an external endpoint needs a fixed port: peers outside cannot learn one the kernel picks"
                if binds else "a connect needs the port to dial")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"port {port!r} is not a number from 1 to 65535"
    if host == "*":
        if not binds:
            return "tcp://*:PORT binds every interface; a connect needs the host to dial"
    elif host.startswith("["):
        if not host.endswith("]") or not _ip(host[1:-1], 6):
            return f"{host!r} is not an IPv6 address in brackets, such as [::1]"
    elif not _ip(host, 4) and not _host_name(host):
        return f"{host!r} is not an IP address, a host name or *" if binds else f"{host!r} is not an IP address or a host name"
    return Parsed("tcp", host, int(port), "")


def _ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _host_name(text: str) -> bool:
    """A host name (RFC 1123 labels), or an interface name such as eth0 (libzmq binds those)."""
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def check(t: Topology, problems: list[Problem]) -> None:
    """Each external endpoint's form, then the binds that clash on a host."""
    binds: dict[str, list[tuple[str, ExternalEndpoint, Parsed]]] = defaultdict(list)
    for node in t.nodes.values():
        host = node.host or t.default_host
        for sock in node.sockets.values():
            if f"{node.name}.{sock.name}" in t.broken:
                continue
            for ep in _checked(node, sock, problems):
                parsed = parse(ep.address, ep.binds)
                assert not isinstance(parsed, str)
                if ep.binds:
                    binds[host].append((f"{node.name}.{sock.name}", ep, parsed))
    for host, found in binds.items():
        _clashes(host, found, problems)


def _checked(node: NodeSpec, sock: SocketSpec, problems: list[Problem]) -> list[ExternalEndpoint]:
    """The socket's external endpoints that are well formed and written once; the others
    reported."""
    good: list[ExternalEndpoint] = []
    seen: set[tuple[str, bool]] = set()
    for ep in sock.external:
        what = f"{node.name}.{sock.name}: external {'bind' if ep.binds else 'connect'} {ep.address!r}"
        parsed = parse(ep.address, ep.binds)
        if isinstance(parsed, str):
            problems.append(Problem(ep.pos, f"{what}: {parsed}"))
            continue
        if (ep.address, ep.binds) in seen:
            problems.append(Problem(ep.pos, f"{what} is written twice"))
            continue
        seen.add((ep.address, ep.binds))
        if ep.binds and node.replicas > 1:
            problems.append(Problem(ep.pos, f"{what}: node {node.name!r} has {node.replicas} replicas, and each "
                                            "would bind it on the same host: an external endpoint is bound by "
                                            "one socket (give the node one replica, or bind it in a node of its own)"))
            continue
        good.append(ep)
    return good


def _clashes(host: str, found: list[tuple[str, ExternalEndpoint, Parsed]], problems: list[Problem]) -> None:
    """Two binds of one tcp port (on the same address, or one of them on every address),
    or of one socket file, on one host: the second is reported, naming the first."""
    for i, (ref, ep, parsed) in enumerate(found):
        for other_ref, other, theirs in found[:i]:
            if parsed.transport != theirs.transport:
                continue
            if parsed.transport == "ipc":
                clash = parsed.path == theirs.path
            else:
                clash = parsed.port == theirs.port and (
                    parsed.host == theirs.host or parsed.host in _WILDCARDS or theirs.host in _WILDCARDS)
            if clash:
                problems.append(Problem(ep.pos, f"{ref}: external bind {ep.address!r} clashes with {other_ref}'s "
                                                f"{other.address!r} (line {other.pos.line}): both on host {host!r}, "
                                                "and one endpoint is bound by one socket"))
                break
