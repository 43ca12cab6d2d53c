"""A program's go, written on its own host once the program has read what its tcp
receivers sent it.

A Python receiver reports an exec sender's connection once nothing it sent on it is
unread (``SIOCOUTQ`` 0, :mod:`topo.process.execlinks`). On a unix socket that means the
program's ZeroMQ I/O thread has read it, the subscription of a SUB included; on tcp it
only means the program's *host* acknowledged it: the bytes may still wait in the
receive queue of the program's socket, and a PUB given its go then can send before it
has the subscription: its first message is lost to that receiver. A busy host (the
program's I/O thread a few milliseconds without the CPU) is enough.

So a receiver's report names each tcp connection (the program's address and port, its
own), and whoever writes the go on the program's host (the supervisor for its own
programs, an agent for its host's: :mod:`topo.hosts.programs`) asks the kernel how many
bytes each still holds unread on the program's side (``sock_diag``, one exact lookup per
connection, ~20 µs): the go is written once none does, looked at again every
:data:`RECHECK` seconds from the writer's loop, and written all the same after
:data:`READ_WITHIN` (said, with how many bytes were still unread: a program that reads
its socket only after its go, on one thread, must still get it). A connection the kernel
does not know here (another host's, closed since, or behind a NAT) holds nothing back.
A go without tcp connections is written at once, as before.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

#: How often a held go looks again (seconds), and for how long at most it is held.
RECHECK, READ_WITHIN = 0.001, 1.0

#: One connection as a receiver reports it: [program address, program port, receiver
#: address, receiver port].
Conn = list[Any]

_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, _NLMSG_ERROR = 4, 20, 1, 2
_NOCOOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_RQUEUE_AT = _HEADER.size + 4 + 48 + 4  # struct inet_diag_msg: family..retrans, id, expires


def _lookups(conn: Conn) -> list[bytes]:
    """Exact ``SOCK_DIAG_BY_FAMILY`` lookups of the program's end of ``conn`` (its address
    as the source: the socket's own view), to try in turn; none for an address that is
    none. An IPv4 address as an IPv6 receiver sees it (``::ffff:a.b.c.d``) may be either
    an IPv4 socket's or an IPv6 one's: both are asked."""
    out = []
    for a, b in ((conn[0], conn[2]), (_unmapped(conn[0]), _unmapped(conn[2]))):
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                src, dst = socket.inet_pton(family, a), socket.inet_pton(family, b)
            except (OSError, ValueError):
                continue
            body = (struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
                    + struct.pack(">HH", conn[1], conn[3]) + src.ljust(16, b"\0") + dst.ljust(16, b"\0")
                    + struct.pack("=III", 0, _NOCOOKIE, _NOCOOKIE))
            out.append(_HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + body)
    return list(dict.fromkeys(out))


def _unmapped(address: str) -> str:
    return address[7:] if address.lower().startswith("::ffff:") and "." in address else address


def unread(conns: Iterable[Conn]) -> int:
    """Bytes that reached this host on these connections and that the program at their
    first end has not read; 0 for a connection this host does not know (or where the
    kernel will not say: no ``sock_diag``)."""
    lookups = [ls for ls in map(_lookups, conns) if ls]
    if not lookups:
        return 0
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
    except OSError:
        return 0
    total = 0
    with nl:
        nl.settimeout(1.0)  # the kernel answers at once; a bound all the same
        for tries in lookups:
            for req in tries:
                try:
                    nl.send(req)
                    answer = nl.recv(4096)
                except OSError:
                    return total
                if len(answer) >= _RQUEUE_AT + 4 and _HEADER.unpack_from(answer)[1] != _NLMSG_ERROR:
                    total += struct.unpack_from("=I", answer, _RQUEUE_AT)[0]
                    break  # found: the other ways to ask are not it
    return total


@dataclass
class _Held:
    fd: int
    conns: list[Conn]
    until: float


@dataclass
class GoWriter:
    """The go bytes of one host's programs: each written at once, or held while its
    program has not read what its tcp receivers sent. ``say``: where a go written unread
    is told."""

    say: Callable[[str], None]
    _held: dict[str, _Held] = field(default_factory=dict)

    def give(self, instance: str, fd: int, conns: list[Conn]) -> None:
        """The go is decided: written to ``fd`` (the pipe's write end, still the caller's)
        now, or by :meth:`look` once the program has read what waits for it on ``conns``
        (the receivers' reports, checked: :func:`topo.process.control.is_conn`)."""
        if unread(conns):
            self._held[instance] = _Held(fd, conns, time.monotonic() + READ_WITHIN)
        else:
            _write(fd)

    def look(self, now: float) -> None:
        """Each held go whose program has read everything (or whose time is up) written."""
        for instance, held in list(self._held.items()):
            left = unread(held.conns)
            if left and now < held.until:
                continue
            del self._held[instance]
            if left:
                self.say(f"{instance}: its go given with {left} byte(s) from its tcp receivers still "
                         f"unread by it after {READ_WITHIN:g}s (its first message may miss a subscriber)")
            _write(held.fd)

    def next_deadline(self) -> float | None:
        return time.monotonic() + RECHECK if self._held else None

    def forget(self, instance: str) -> None:
        """The instance's pipe is about to be closed (its end, a restart, the run's stop)."""
        self._held.pop(instance, None)


def _write(fd: int) -> None:
    try:
        os.write(fd, b"1")
    except OSError:
        pass  # the program has closed its read end: it does not want the go
