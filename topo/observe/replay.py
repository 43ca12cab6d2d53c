"""The node ``topo.nodes:replay``: a recorded channel sent again on a socket, at the recorded
pace, faster, or as fast as it goes.

It stands in for the node that was recorded, so the rest of a topology can be run again
on exactly what it received. Its arguments (``args:``)::

    file      the recording (relative paths: to the node process's working directory,
              where ``topo up`` runs)                                          required
    channel   the topic to replay, INSTANCE/SOCKET/DIRECTION (``source/out/out``) required
    rate      1.0 the recorded pace; 2.0 twice as fast; 0 or "max" as fast as
              the socket takes them                                            default 1.0
    loop      true: start again after the last message, until the run stops   default false
    socket    which sending socket (PUB, XPUB, PUSH, DEALER, PAIR) of the node;
              needed only when it has several                                  optional

The pace is kept from the replay's own start: a message goes out at its recorded offset
from the first one, divided by ``rate``, so a slow send is caught up rather than added
up. Each loop starts at once after the last message of the one before. A recording cut
off (its recorder was killed) is replayed up to where it ends, with a warning.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from topo.errors import TopoError

if TYPE_CHECKING:
    from topo.observe.recorded import Recording
    from topo.process.node import Node

#: The arguments replay understands.
KEYS = ("file", "channel", "rate", "loop", "socket")
#: The socket types replay can send on: those that send without waiting for a reply.
SENDING = ("PUB", "XPUB", "PUSH", "DEALER", "PAIR")
_TYPE_NAMES = ("PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB")


class ReplayError(TopoError):
    """The replay node's arguments, file or sockets are not what it needs."""


@dataclass(frozen=True)
class ReplayArgs:
    file: str
    channel: str
    #: 0: as fast as possible
    rate: float
    loop: bool
    socket: str | None


def parse_args(args: Mapping[str, Any]) -> ReplayArgs:
    """``args:`` checked: every mistake said at once, unknown keys with a guess."""
    problems = []
    for key in args:
        if key not in KEYS:
            problems.append(f"unknown argument {key!r}{_near(str(key), KEYS)}")
    file, channel = args.get("file"), args.get("channel")
    for name, value in (("file", file), ("channel", channel)):
        if value is None:
            problems.append(f"args.{name} is missing")
        elif not isinstance(value, str) or not value:
            problems.append(f"args.{name} must be a non-empty string, not {value!r}")
    rate = args.get("rate", 1.0)
    if rate == "max":
        rate = 0.0
    elif isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate >= 0 or rate == float("inf"):
        problems.append(f"args.rate must be a number >= 0 (1.0 the recorded pace) or \"max\", not {rate!r}")
        rate = 1.0
    loop = args.get("loop", False)
    if not isinstance(loop, bool):
        problems.append(f"args.loop must be true or false, not {loop!r}")
    socket = args.get("socket")
    if socket is not None and (not isinstance(socket, str) or not socket):
        problems.append(f"args.socket must be a socket name, not {socket!r}")
    if problems:
        raise ReplayError("; ".join(problems))
    assert isinstance(file, str) and isinstance(channel, str)
    return ReplayArgs(file, channel, float(rate), bool(loop), socket)


def pick_socket(types: Mapping[str, str], wanted: str | None) -> str:
    """The socket to send on, from the node's sockets and their types."""
    if wanted is not None:
        if wanted not in types:
            raise ReplayError(f"args.socket: the node has no socket {wanted!r}{_near(wanted, types)}")
        if types[wanted] not in SENDING:
            raise ReplayError(f"args.socket: {wanted!r} is a {types[wanted]} socket; replay sends on "
                              f"{', '.join(SENDING)}")
        return wanted
    sending = sorted(name for name, kind in types.items() if kind in SENDING)
    if not sending:
        raise ReplayError(f"the node has no socket to send on ({', '.join(SENDING)}); it has "
                          + (", ".join(f"{n} ({k})" for n, k in sorted(types.items())) or "none"))
    if len(sending) > 1:
        raise ReplayError(f"the node sends on {', '.join(sending)}: say which with args.socket")
    return sending[0]


def replay(node: Node) -> None:
    """Sends the recorded messages of ``args.channel`` on the node's sending socket."""
    import zmq

    from topo.observe.recorded import Recording

    spec = parse_args(node.args)
    names = {getattr(zmq, t): t for t in _TYPE_NAMES}
    types = {name: names.get(sock.socket_type, "?") for name, sock in node.sockets.items()}
    sock = node.sockets[pick_socket(types, spec.socket)]
    total = 0
    warned = False
    began = time.monotonic()
    while node.running:
        with Recording(spec.file) as recording:
            sent = _one_pass(node, sock, recording, spec)
            topics = _topics(recording)
            if not sent and spec.channel not in topics:
                cut = f" (it is cut off: {recording.ended})" if recording.ended else ""
                raise ReplayError(f"{spec.file} has no channel {spec.channel!r}{_near(spec.channel, topics)}; "
                                  f"it has {', '.join(sorted(topics)) or 'none'}{cut}")
            if recording.ended is not None and not warned:
                warned = True
                node.log.warning("%s: %s; replayed the %d message(s) before it", spec.file, recording.ended, sent)
        total += sent
        if not spec.loop:
            break
        if not sent:
            raise ReplayError(f"{spec.file}: channel {spec.channel!r} has no message to loop over")
    node.log.info("replayed %d message(s) of %s from %s in %.3fs", total, spec.channel, spec.file,
                  time.monotonic() - began)


def _one_pass(node: Node, sock: Any, recording: Recording, spec: ReplayArgs) -> int:
    """One pass over the channel; the count sent."""
    start = time.monotonic()
    first: int | None = None
    sent = 0
    for message in recording.messages({spec.channel}):
        if first is None:
            first = message.time_ns
        if spec.rate:
            delay = start + (message.time_ns - first) / 1e9 / spec.rate - time.monotonic()
            if delay > 0 and not node.sleep(delay):
                break
        if not node.running:
            break
        sock.send_multipart(message.frames)
        sent += 1
    return sent


def _topics(recording: Recording) -> list[str]:
    return [channel.topic for channel in recording.channels.values()]


def _near(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
