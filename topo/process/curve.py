"""CURVE for every tcp link: keys per run, options per endpoint, and ZAP.

A tcp endpoint is reachable by every user of the machine (127.0.0.1 included) and, on a
host's address, by every machine of its network; so every tcp link is CURVE unless the
file says ``curve: false`` (:mod:`topo.plan.planner` marks its endpoint ``secure``), on one
host as across hosts. Every host of a run gets its own key pair, made by the supervisor when the run starts and
handed to each agent on its standard input (never on a command line). A socket that binds
an endpoint some peer reaches from another host is a CURVE server with its host's key; a
socket that dials one is a CURVE client with its host's key and the binding host's public
key. CURVE alone lets any client with any key in, so every process that serves CURVE runs
a ZAP handler that admits only the public keys of the run's hosts: a stranger completes no
handshake, receives nothing and can inject nothing.

libzmq copies a socket's options when it binds or connects, so one socket can serve CURVE
on its tcp endpoint and plain ipc to a neighbour on the same host: the options are set
just before the secure bind or connect and cleared just after (checked in the tests).

No ZAP domain is ever set. libzmq's CURVE server asks the context's ZAP handler about
every client whenever a handler is bound, domain or not (ZAP_ENFORCE_DOMAIN off, its
default and the only choice outside libzmq's draft API), so the handler alone decides who
gets in. Its NULL mechanism, though, asks ZAP exactly when the endpoint has a domain; and
a domain cannot be cleared again (libzmq refuses an empty one). Set for the CURVE bind,
it would stay on the socket and send its later plain ipc peers to the handler, which
refuses them: a sink with workers here and elsewhere never got ready.
"""

from __future__ import annotations

import struct
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

import zmq
import zmq.utils.z85

from topo.errors import UsageError
from topo.file.model import DEFAULT_MAX_MESSAGE

#: libzmq looks for a context's ZAP handler at this inproc address (RFC 27).
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


class HostKeys(NamedTuple):
    """What one host knows: its own key pair and every host's public key (Z85 text)."""

    host: str
    public: str
    secret: str
    peers: Mapping[str, str]

    def admits(self, public_raw: bytes) -> str | None:
        """The host name owning this raw 32-byte public key, or None for a stranger."""
        text = zmq.utils.z85.encode(public_raw).decode() if len(public_raw) == 32 else ""
        return next((name for name, key in self.peers.items() if key == text), None)


def make_keys(hosts: Iterable[str]) -> dict[str, HostKeys]:
    """A key pair per host, new for each run (:attr:`topo.plan.planner.Plan.key_hosts`)."""
    if not zmq.has("curve"):
        raise UsageError("this libzmq was built without CURVE, so tcp links cannot be encrypted: "
                         "set `security: {curve: false}` in the file to run them plain (on one host only)")
    pairs = {name: tuple(k.decode() for k in zmq.curve_keypair()) for name in hosts}
    peers = {name: pair[0] for name, pair in pairs.items()}
    return {name: HostKeys(name, pub, sec, peers) for name, (pub, sec) in pairs.items()}


def with_hosts(keys: Mapping[str, HostKeys] | None, hosts: Iterable[str]) -> dict[str, HostKeys]:
    """``keys`` with a new pair for each of ``hosts`` that has none (``topo apply`` brought a
    host into the run), every host's peers then naming them all. The pairs already made
    stay: the processes running with them go on as they are."""
    if not zmq.has("curve"):
        raise UsageError("this libzmq was built without CURVE: a host cannot be added")
    pairs = {name: (k.public, k.secret) for name, k in (keys or {}).items()}
    for name in hosts:
        if name not in pairs:
            pairs[name] = tuple(k.decode() for k in zmq.curve_keypair())  # type: ignore[assignment]
    peers = {name: pair[0] for name, pair in pairs.items()}
    return {name: HostKeys(name, pub, sec, peers) for name, (pub, sec) in pairs.items()}


def serve(sock: zmq.Socket[Any], keys: HostKeys) -> None:
    """The next binds are CURVE servers with this host's key. Their clients are checked by
    the process's :class:`ZapHandler`, which must be bound before (no ZAP domain: see
    the module's docstring)."""
    sock.curve_secretkey = keys.secret.encode()
    sock.curve_publickey = keys.public.encode()
    sock.curve_server = True


def dial(sock: zmq.Socket[Any], keys: HostKeys, server_host: str) -> None:
    """The next connects are CURVE clients of a server on ``server_host``."""
    sock.curve_serverkey = keys.peers[server_host].encode()
    sock.curve_publickey = keys.public.encode()
    sock.curve_secretkey = keys.secret.encode()


def plain(sock: zmq.Socket[Any]) -> None:
    """Back to no security for the next binds and connects (libzmq: CURVE_SERVER=0
    selects the NULL mechanism, for clients too)."""
    sock.curve_server = False


#: What a CURVE server accepts before and after authentication, unless the file's
#: ``security.max_message`` or the socket's own ``maxmsgsize`` say otherwise: libzmq reads a
#: whole frame, a handshake's included, before CURVE can refuse its sender, so a stranger's
#: one 100 MB frame cost the node 100 MB for as long as the handshake may take. libzmq
#: compares a frame's announced size with it, nothing more.
SERVED_MAX_MESSAGE = DEFAULT_MAX_MESSAGE
#: And that long at most (ms) for a handshake, instead of libzmq's 30 s.
SERVED_HANDSHAKE_MS = 5000


def bounded(sock: zmq.Socket[Any], max_message: int) -> None:
    """The next binds (and their connections) take frames of ``max_message`` bytes at most
    and handshakes of :data:`SERVED_HANDSHAKE_MS`; a ``maxmsgsize`` the socket already has
    (the file's) wins."""
    if sock.getsockopt(zmq.MAXMSGSIZE) == -1:
        sock.setsockopt(zmq.MAXMSGSIZE, max_message)
    sock.setsockopt(zmq.HANDSHAKE_IVL, SERVED_HANDSHAKE_MS)


@contextmanager
def secured(sock: zmq.Socket[Any], keys: HostKeys, server_host: str | None = None,
            max_message: int = SERVED_MAX_MESSAGE) -> Iterator[None]:
    """The binds (``server_host`` None) or connects to ``server_host`` made inside are
    CURVE; the socket's later ones are plain again, whatever happened inside. A bind is
    bounded too, to ``max_message`` bytes (:func:`bounded`): libzmq copies a socket's
    options when it binds, so the bound applies to this endpoint only."""
    saved = (sock.getsockopt(zmq.MAXMSGSIZE), sock.getsockopt(zmq.HANDSHAKE_IVL))
    if server_host is None:
        serve(sock, keys)
        bounded(sock, max_message or SERVED_MAX_MESSAGE)
    else:
        dial(sock, keys, server_host)
    try:
        yield
    finally:
        plain(sock)
        sock.setsockopt(zmq.MAXMSGSIZE, saved[0])
        sock.setsockopt(zmq.HANDSHAKE_IVL, saved[1])


#: Hosts a run may have, at most, as a command adding keys says them.
MAX_PEERS = 4096


def _is_key(name: Any, key: Any) -> bool:
    """A host's name and a CURVE public key in Z85 text (40 characters, 32 bytes)."""
    if not isinstance(name, str) or not 0 < len(name) <= 128 or not isinstance(key, str) or len(key) != 40:
        return False
    try:
        return len(zmq.utils.z85.decode(key.encode("ascii"))) == 32
    except (ValueError, KeyError, IndexError, struct.error):  # (out of its alphabet, or of range)
        return False


class ZapHandler(threading.Thread):
    """Answers libzmq's authentication requests for one Context: the run's hosts only.

    Only CURVE handshakes are asked about (no socket has a ZAP domain); anything else is
    refused all the same, should some future socket set one.

    Ends by itself when its Context is terminated (that is how a process stops), so it
    never holds ``ctx.term()`` up.
    """

    def __init__(self, ctx: zmq.Context[Any], keys: HostKeys) -> None:
        super().__init__(name="topo:zap", daemon=True)
        self.keys = keys
        self.refused: list[str] = []
        self._sock = ctx.socket(zmq.REP)
        self._sock.linger = 0
        self._sock.bind(ZAP_ENDPOINT)  # bound before any CURVE server can need it

    def run(self) -> None:
        sock = self._sock
        try:
            while True:
                request = sock.recv_multipart()
                sock.send_multipart(self._answer(request))
        except zmq.ZMQError:  # ETERM: the process is stopping
            pass
        finally:
            sock.close(linger=0)

    def admit(self, peers: Any) -> list[str]:
        """``topo apply`` brought hosts into the run: their public keys are admitted from
        now on, in place; restarting a process for that would cost its state and its
        connections. Only hosts not known yet are added: a known host's key never changes
        within a run (:func:`with_hosts` keeps every pair). What is malformed is dropped
        (the command came over a channel a node's own code could write to). Returns the
        hosts added."""
        if not isinstance(peers, dict) or len(peers) > MAX_PEERS:
            return []
        known = dict(self.keys.peers)
        added = [name for name, key in peers.items() if name not in known and _is_key(name, key)]
        if added:
            known.update((name, peers[name]) for name in added)
            self.keys = self.keys._replace(peers=known)  # one assignment: the ZAP thread reads either
        return added

    def _answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6:
            return [b"1.0", b"", b"500", b"malformed request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism, *credentials = request
        host = self.keys.admits(credentials[0]) if mechanism == b"CURVE" and credentials else None
        if host is None:
            self.refused.append(address.decode(errors="replace"))
            return [version, request_id, b"400", b"not a key of this run", b"", b""]
        return [version, request_id, b"200", b"OK", host.encode(), b""]
