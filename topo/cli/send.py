"""``topo send``: one message into a receiving socket of a running node, as a peer would
send it, and the reply where the socket is a service.

The injector dials the node's socket at an endpoint it binds (the run's supervisor says
which, from the plan and what was really bound: the ``target`` request of
:mod:`topo.supervisor.observing`) with a socket of the complementary type: a PUB for a
SUB, a PUSH for a PULL, a REQ for a REP, a DEALER for a ROUTER. A socket that binds
nothing plain (it connects to its peers, or binds only inproc or CURVE tcp) is dialled at
its injection endpoint, an ipc file its process bound for this alone
(:mod:`topo.plan.inject`). The node's process is not asked to do anything: its code
receives the message from its own socket as from any linked peer, through a connection
like theirs, and its delivery to its other peers is unchanged (one more pipe on a PULL or
ROUTER is what a new peer is).

Refused: a PAIR (it takes one peer, its own), a DEALER (it would deal some of what it
sends to the injector), and a node not running (while its gate waits, the injector's
connection would count as a peer's). A node on another host is reached through the run's
supervisor and that host's agent, which dials the socket there (:mod:`topo.cli.sendremote`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import click

from topo.errors import TopoError, UsageError
#: The injector's types, and the node types that answer (:mod:`topo.process.inject`).
from topo.process.inject import ANSWERING, INJECTORS

if TYPE_CHECKING:
    from topo.cli.client import Run

#: What ``--file`` reads at most: a message is held whole in memory on both sides.
MAX_FILE = 64 * 1024 * 1024
SENDING = frozenset({"PUB", "XPUB", "PUSH", "REQ"})


@dataclass(frozen=True)
class Target:
    """One socket to send to: its name, type and the endpoint the injector dials."""
    name: str
    type: str
    address: str
    #: A node on another host: the supervisor's endpoint that passes the message to the
    #: host's agent, which dials ``address`` there.
    relay: str = ""
    #: ``address`` is a CURVE endpoint (a remote node's: its agent has the keys).
    secure: bool = False


def frames_of(texts: Sequence[str], json_text: str | None, file: str | None) -> list[bytes]:
    """The message: each FRAME as UTF-8 (bytes the shell gave that are not, as given),
    then ``--json``'s text (checked to be JSON), then ``--file``'s bytes."""
    frames = [os.fsencode(t) for t in texts]
    if json_text is not None:
        try:
            json.loads(json_text)
        except (ValueError, RecursionError) as err:
            raise UsageError(f"--json: not JSON: {err}") from None
        frames.append(json_text.encode("utf-8", "surrogateescape"))
    if file is not None:
        frames.append(read_bounded(file))
    if not frames:
        raise UsageError("nothing to send: give FRAME..., --json TEXT or --file PATH")
    return frames


def read_bounded(path: str, limit: int = MAX_FILE) -> bytes:
    """The file's bytes, refused (exit 2) past ``limit`` or unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise UsageError(f"--file {path}: {err.strerror or err}") from None
    if len(data) > limit:
        raise UsageError(f"--file {path}: larger than {limit / 2**20:g} MiB, the most topo send sends")
    return data


def target_of(run: Run, name: str) -> Target:
    """The one socket ``name`` designates, checked to be one the injector can reach."""
    reply = _ask(run, {"cmd": "target", "target": name})
    entries: list[dict[str, Any]] = reply["sockets"]
    if len(entries) > 1:
        names = ", ".join(f"{e['instance']}.{e['socket']}" for e in entries)
        raise UsageError(f"{name} is {len(entries)} sockets (one per instance): name one of {names}")
    entry = entries[0]
    full, kind = f"{entry['instance']}.{entry['socket']}", str(entry["type"])
    if kind in SENDING:
        raise UsageError(f"{full} is a {kind}: it only sends; topo send injects into a receiving "
                         f"socket ({', '.join(sorted(INJECTORS))})")
    if kind == "DEALER":  # what it sends is dealt among its peers: the injector would take a share
        raise UsageError(f"{full} is a DEALER: it deals what it sends among its peers, and topo send, "
                         "as one more peer, would take a share; topo send injects into a PULL, REP, "
                         "ROUTER, SUB or XSUB")
    if kind not in INJECTORS:
        raise UsageError(f"{full} is a {kind}: libzmq gives it one peer, its own, so no other can "
                         "send to it; topo send injects into a PULL, REP, ROUTER, SUB or XSUB")
    state = entry.get("state", "running")  # (a supervisor that predates it says none)
    if state != "running":
        # also while its gate waits: the injector's connection would count as a peer's
        raise TopoError(f"{entry['instance']} is not running ({state}): topo send sends to running nodes only")
    binds = entry["binds"]
    if entry.get("remote"):
        from topo.cli.sendremote import remote_endpoint

        relay, bind = remote_endpoint(full, entry)
        return Target(full, kind, str(bind["address"]), relay, bool(bind["secure"]))
    # a plain endpoint it binds anyway, else its injection endpoint (topo.plan.inject)
    usable = sorted((b for b in binds if b["transport"] == "ipc" or (b["transport"] == "tcp" and not b["secure"])),
                    key=lambda b: (bool(b.get("inject")), b["transport"] != "ipc"))
    if not usable:
        raise UsageError(f"{full} has no endpoint topo send can dial: its process reported none "
                         "(a run started by a topo without injection endpoints?)")
    return Target(full, kind, dialable(str(usable[0]["address"])))


def _ask(run: Run, payload: dict[str, Any]) -> dict[str, Any]:
    """A request to the run's supervisor (:func:`topo.cli.client.request`: its refusals of
    names are usage errors), saying so when the run predates ``topo send``."""
    from topo.cli.client import request

    try:
        return request(run, payload)
    except TopoError as err:
        if not isinstance(err, UsageError) and str(err).endswith(": malformed request"):
            raise TopoError(f"run {run.identity} was started by a topo without topo send") from None
        raise


def dialable(address: str) -> str:
    """A bound address as a peer on this machine dials it (a wildcard host: loopback)."""
    for wildcard, loopback in (("tcp://*:", "tcp://127.0.0.1:"), ("tcp://0.0.0.0:", "tcp://127.0.0.1:"),
                               ("tcp://[::]:", "tcp://[::1]:")):
        if address.startswith(wildcard):
            return loopback + address[len(wildcard):]
    return address


def send(target: Target, frames: list[bytes], timeout: float) -> list[bytes] | None:
    """Sends ``frames`` to ``target`` and returns the reply (None: none within ``timeout``,
    or a socket that does not answer). A peer that cannot be reached within ``timeout`` is
    a :class:`TopoError`; nothing here waits longer than ``timeout`` plus the linger. A
    node on another host is reached through its agent (:mod:`topo.cli.sendremote`)."""
    if target.relay:
        from topo.cli.sendremote import send_remote

        return send_remote(target.name, target.type, target.address, target.secure, target.relay, frames,
                           timeout)
    from topo.process.inject import deliver

    return deliver(target.type, target.address, target.name, frames, timeout)


@click.command(name="send", short_help="Inject one message into a receiving socket; print the reply.")
@click.argument("args", nargs=-1, metavar="[RUN] NODE.SOCKET [FRAME]...")
@click.option("--json", "json_text", metavar="TEXT", help="One more frame: TEXT, checked to be JSON.")
@click.option("--file", "file", metavar="PATH", help="One more frame: the file's bytes (64 MiB at most).")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True), default=5.0, show_default=True,
              metavar="SECONDS", help="How long to wait to reach the socket, and for its reply.")
@click.option("--format", "fmt", default="auto", show_default=True, help="The reply's: auto, text, hex, json or msgpack.")
def send_command(args: tuple[str, ...], json_text: str | None, file: str | None, timeout: float,
                 fmt: str) -> None:
    """Send one message, FRAME... (then --json's, then --file's frame), to the receiving
    NODE.SOCKET of the running RUN (the only one if not named), as a linked peer would:
    the node receives it from its own socket. For a REP, and a ROUTER that answers,
    print the reply, each frame after its index (shown safely, as topo echo does).

    A FRAME that starts with "-" goes after "--": topo send sink.in -- -1.

    Exit status: 0 sent (and answered, for a REP); 1 the socket could not be reached, a
    REP did not answer, or a SUB would drop the message (nothing sent), within --timeout, or
    the node is not running; 2 a wrong command line, no such run or socket, a socket that
    only sends, a PAIR or DEALER, or a node on another host.
    """
    from topo.cli.client import one_run
    from topo.cli.frames import check_format, show

    check_format(fmt)
    if not args:
        raise UsageError("expected [RUN] NODE.SOCKET [FRAME]...")
    # NODE.SOCKET has a dot and RUN (TOPOLOGY or TOPOLOGY/RUN_ID) none: the first dotted
    # word is the socket, so RUN may be left out
    named = len(args) > 1 and "." not in args[0]
    run = one_run(args[0] if named else None)
    name, texts = (args[1], args[2:]) if named else (args[0], args[1:])
    message = frames_of(texts, json_text, file)
    if run.info.get("starting") or not run.info.get("control"):
        raise TopoError(f"run {run.identity} is still starting; try again in a moment")
    target = target_of(run, name)
    reply = send(target, message, timeout)
    size = sum(len(f) for f in message)
    click.echo(f"topo: sent {len(message)} frame(s), {size} bytes, to {target.name} ({target.type})", err=True)
    if reply is not None:
        click.echo("  ".join(f"[{i}] {show(f, fmt)}" for i, f in enumerate(reply)) if reply else "(no frames)")
    elif target.type == "REP":
        raise TopoError(f"no reply from {target.name} within {timeout:g}s")
    elif target.type in ANSWERING:
        click.echo(f"topo: no reply within {timeout:g}s", err=True)
