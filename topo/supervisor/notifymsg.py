"""One sd_notify datagram read: systemd's notification protocol, as a program speaks it.

A program started by topo (an exec node) tells its state by sending datagrams to the
socket named by ``NOTIFY_SOCKET``, as it would to systemd: newline-separated
``KEY=VALUE`` lines, ``READY=1``, ``STATUS=text``, ``STOPPING=1``, ``WATCHDOG=1``...
(sd_notify(3)). Libraries send them (libsystemd's ``sd_notify``, Go's
``daemon.SdNotify``, Rust's ``sd-notify``, Python's ``sdnotify``), and so does
``systemd-notify``. Any process that can reach the socket may send anything, so a
datagram is checked whole before any of it counts: one that is too big, not UTF-8, holds a
NUL or a line that is not ``KEY=VALUE`` is refused with a reason (:class:`Refused`), and
changes nothing. Keys topo does not act on are accepted and ignored, as systemd does with
keys it does not know. Pure: bytes in, a :class:`Notice` or a refusal out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The largest datagram read (systemd's own bound, ``PIPE_BUF``): a bigger one is refused.
MAX_DATAGRAM = 4096
#: A key as systemd's are written: upper-case letters, digits, ``_``.
_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
#: Shown of a refused datagram's offending line, at most.
_SHOWN = 40


class Refused(ValueError):
    """A datagram that changes nothing, and why (the reason names what was wrong)."""


@dataclass(frozen=True)
class Notice:
    """What one datagram says, for the keys topo acts on (None: not said)."""

    ready: bool = False
    status: str | None = None
    stopping: bool = False
    reloading: bool = False
    #: ``WATCHDOG=1``: the program is alive.
    watchdog: bool = False
    #: ``WATCHDOG=trigger``: the program asks to be taken for hung (systemd fails it).
    watchdog_trigger: bool = False
    #: ``MAINPID=N``: accepted, not acted on (the process topo started stays the one watched).
    mainpid: int | None = None
    #: ``WATCHDOG_USEC=N``: accepted, not acted on (the file's ``watchdog:`` stays the bound).
    watchdog_usec: int | None = None
    #: ``BARRIER=1``: the sender waits until the descriptor it sent is closed (done once
    #: the datagram is handled: every descriptor received is closed).
    barrier: bool = False
    #: Keys present that topo ignores (``FDSTORE``, ``ERRNO``, ``EXTEND_TIMEOUT_USEC``...).
    ignored: tuple[str, ...] = ()


def parse(data: bytes, truncated: bool = False) -> Notice:
    """The :class:`Notice` of one datagram; raises :class:`Refused` if it must be dropped.
    ``truncated``: the datagram was longer than :data:`MAX_DATAGRAM` (``MSG_TRUNC``)."""
    if truncated or len(data) > MAX_DATAGRAM:
        raise Refused(f"over {MAX_DATAGRAM} bytes")
    if not data.strip(b"\n"):
        raise Refused("empty")
    if b"\0" in data:
        raise Refused("holds a NUL byte")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Refused(f"not UTF-8 (byte {err.start})") from None
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        key, eq, value = line.partition("=")
        if not eq or not _KEY.fullmatch(key):
            raise Refused(f"line {shown(line)} is not KEY=VALUE")
        fields[key] = value  # a key said twice: the last one counts
    known = {"READY", "STATUS", "STOPPING", "RELOADING", "WATCHDOG", "MAINPID", "WATCHDOG_USEC", "BARRIER"}
    return Notice(
        ready=fields.get("READY") == "1",
        status=fields.get("STATUS"),
        stopping=fields.get("STOPPING") == "1",
        reloading=fields.get("RELOADING") == "1",
        watchdog=fields.get("WATCHDOG") == "1",
        watchdog_trigger=fields.get("WATCHDOG") == "trigger",
        mainpid=_number(fields, "MAINPID"),
        watchdog_usec=_number(fields, "WATCHDOG_USEC"),
        barrier=fields.get("BARRIER") == "1",
        ignored=tuple(k for k in fields if k not in known),
    )


def _number(fields: dict[str, str], key: str) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        raise Refused(f"{key}={shown(value)} is not a number")
    return int(value)


def shown(text: str, limit: int = _SHOWN) -> str:
    """``text`` quoted for a message or ``topo ps``: control characters escaped (a terminal
    must not obey a program's escape sequences), cut to ``limit`` characters."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return repr(cut)


def printable(text: str, limit: int = 200) -> str:
    """A ``STATUS=`` text as ``topo ps`` shows it: one line, control characters as ``?``,
    at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


def to_wire(notice: Notice) -> dict[str, object]:
    """A notice as JSON, for an agent to relay what its host's program said."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(notice).items() if v not in (None, False, ())}


def from_wire(data: dict[str, object]) -> Notice:
    """The notice an agent relayed; raises :class:`Refused` for anything but a notice's
    fields with their types (an agent on a compromised host may send anything)."""
    kinds = {"ready": bool, "stopping": bool, "reloading": bool, "watchdog": bool, "watchdog_trigger": bool,
             "barrier": bool, "status": str, "mainpid": int, "watchdog_usec": int, "ignored": list}
    fields: dict[str, object] = {}
    for key, value in data.items():
        kind = kinds.get(key)
        if kind is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Refused(f"relayed notice field {shown(key)!r}")
        fields[key] = tuple(str(v) for v in value) if isinstance(value, list) else value
    return Notice(**fields)  # type: ignore[arg-type]
