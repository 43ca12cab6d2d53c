"""``topo echo``, ``topo hz`` and ``topo sockets``: what flows through a running topology,
seen from another terminal without changing the nodes or their delivery.

Each taps sockets of the run through its supervisor (:mod:`topo.supervisor.tapreader`;
the copies are taken in the node's own process: :mod:`topo.process.tapping`). Ctrl-C ends
``echo`` and ``hz`` normally (exit 0); a run that ends ends them too. Bad arguments (no
such run, node or socket, an unknown format) are one line on stderr and exit 2.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Sequence

import click

from topo.errors import TopoError, UsageError

if TYPE_CHECKING:
    from topo.cli.client import Run
    from topo.supervisor.tapreader import TapMessage, TapReader

#: How long a tap may take to be on its socket (its node still starting) before giving up.
ON_TIMEOUT = 30.0


def _run_and_target(args: Sequence[str]) -> tuple[Run, str]:
    """``[RUN] NODE.SOCKET`` as the run (the only one when not named) and the target."""
    from topo.cli.client import one_run

    if len(args) not in (1, 2):
        raise UsageError("expected [RUN] NODE.SOCKET")
    run = one_run(args[0] if len(args) == 2 else None)
    return run, args[-1]


def open_reader(run: Run, targets: Sequence[str], directions: Sequence[str] = ("in", "out")) -> TapReader:
    from topo.supervisor import rundir
    from topo.supervisor.tapreader import TapReader

    if run.info.get("starting") or not run.info.get("control"):
        raise TopoError(f"run {run.identity} is still starting; try again in a moment")
    return TapReader(str(run.info["control"]), str(run.info["sockets"]), targets, directions,
                     alive=lambda: rundir.supervisor_alive(run.info)).open()


def _directions(inbound: bool, outbound: bool) -> list[str]:
    return ["in"] if inbound and not outbound else ["out"] if outbound and not inbound else ["in", "out"]


@click.command(short_help="Print the messages a socket sends or receives, as they happen.")
@click.argument("args", nargs=-1, metavar="[RUN] NODE.SOCKET")
@click.option("--count", "-n", type=click.IntRange(min=1), help="End after N messages.")
@click.option("--format", "fmt", default="auto", show_default=True, help="auto, text, hex, json or msgpack.")
@click.option("--prefix", help="Only messages whose first frame starts with TOPIC.", metavar="TOPIC")
@click.option("--in", "inbound", is_flag=True, help="Only what the socket receives.")
@click.option("--out", "outbound", is_flag=True, help="Only what the socket sends.")
def echo(args: tuple[str, ...], count: int | None, fmt: str, prefix: str | None,
         inbound: bool, outbound: bool) -> None:
    """Print each message NODE.SOCKET sends (out) or receives (in) in the running RUN (the
    only one if not named): time, instance, direction, and every frame after its index.
    NODE.SOCKET names an instance (worker.1.tasks) or every instance of a node
    (worker.tasks). Frames that are not text are shown in hex; control characters are
    escaped. Copies a slow reader could not keep up with are counted, never waited for."""
    from topo.cli.frames import check_format, line

    check_format(fmt)
    run, target = _run_and_target(args)
    reader = open_reader(run, [target], _directions(inbound, outbound))
    wanted = prefix.encode() if prefix is not None else None
    try:
        reader.wait_on(ON_TIMEOUT)
        click.echo(f"tapping {target} of {run.identity} (Ctrl-C ends)", err=True)
        shown = 0
        while count is None or shown < count:
            message = reader.next()
            missed = reader.take_missed()
            if missed:
                click.echo(f"[tap: {missed} message(s) missed]")
            if message is None:
                click.echo(f"run {run.identity} has ended", err=True)
                break
            if wanted is not None and not (message.frames and message.frames[0].startswith(wanted)):
                continue
            click.echo(line(message.label, message.direction, message.time_ns, message.frames, fmt))
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


class Window:
    """Rate and interval statistics of the messages seen in one window, from the times the
    node's process took them (the reader's delays do not change the intervals)."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.size = 0
        #: Copies the tap lost in this window (the node was faster than the reader): they
        #: count in the rate, not in the intervals.
        self.missed = 0

    def add(self, message: TapMessage) -> None:
        self.times.append(message.time_ns)
        self.size += sum(len(f) for f in message.frames)

    def summary(self, seconds: float) -> str:
        count = len(self.times)
        if count < 2:
            return f"{count} message(s) in {seconds:g}s: too few for a rate"
        times = sorted(self.times)
        gaps = [(b - a) / 1e9 for a, b in zip(times, times[1:])]
        mean = sum(gaps) / len(gaps)
        std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
        span = (times[-1] - times[0]) / 1e9
        rate = (len(gaps) + self.missed) / span if span > 0 else float("inf")
        lost = f", {self.missed} missed by the tap" if self.missed else ""
        return (f"rate {rate:.2f} msg/s  min {_ms(min(gaps))}  max {_ms(max(gaps))}  std {_ms(std)}  "
                f"{_bytes(self.size * rate / count)}/s  ({count} msgs{lost})")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}ms"


def _bytes(value: float) -> str:
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1000
    return f"{value:.1f} GB"


@click.command(short_help="Message rate and interval statistics of a socket.")
@click.argument("args", nargs=-1, metavar="[RUN] NODE.SOCKET")
@click.option("--window", type=click.FloatRange(min=0.1), default=1.0, show_default=True, metavar="SECONDS",
              help="Statistics over each window of this many seconds.")
@click.option("--in", "inbound", is_flag=True, help="Only what the socket receives.")
@click.option("--out", "outbound", is_flag=True, help="Only what the socket sends.")
def hz(args: tuple[str, ...], window: float, inbound: bool, outbound: bool) -> None:
    """Rate of NODE.SOCKET's messages (per second, from the intervals between them), the
    shortest and longest interval, their standard deviation and bytes per second, over
    each window. On a terminal one line is rewritten; otherwise one line per window.
    Ctrl-C ends it."""
    run, target = _run_and_target(args)
    reader = open_reader(run, [target], _directions(inbound, outbound))
    live = sys.stdout.isatty()
    try:
        reader.wait_on(ON_TIMEOUT)
        while not reader.gone.is_set():
            current, end = Window(), time.monotonic() + window
            while (left := end - time.monotonic()) > 0:
                message = reader.next(left)
                current.missed += reader.take_missed()
                if message is not None:
                    current.add(message)
                elif reader.gone.is_set():
                    break
            text = current.summary(window)
            if live:
                click.echo(f"\r{text}\x1b[K", nl=False)
            else:
                click.echo(text)
    except KeyboardInterrupt:
        pass
    finally:
        if live:
            click.echo("")
        reader.close()


@click.command(short_help="Every declared socket of a run: type, transports, peers, rates.")
@click.argument("run_name", required=False, metavar="[RUN]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--rate", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Also measure messages/s and bytes/s each way, tapping every socket this long.")
def sockets(run_name: str | None, as_json: bool, rate: float | None) -> None:
    """Every declared socket of RUN (the only one if not named): node instance, type,
    transports, bound and connected endpoints, peers; with --rate, how many messages and
    bytes each socket received (in) and sent (out) per second over that window."""
    import json

    from topo.cli.client import one_run, request

    run = one_run(run_name)
    if run.info.get("starting") or not run.info.get("control"):
        raise TopoError(f"run {run.identity} is still starting; try again in a moment")
    entries: list[dict[str, Any]] = request(run, {"cmd": "sockets"})["sockets"]
    if rate is not None:
        measure(run, entries, rate)
    click.echo(json.dumps(entries, indent=2) if as_json else format_sockets(run.identity, entries))


def measure(run: Run, entries: list[dict[str, Any]], seconds: float) -> None:
    """Adds ``rate`` ({in, out: {msgs, bytes}} per second) to each socket's entry (a
    remote node's too: its copies come through its agent)."""
    reader = open_reader(run, [f"{e['instance']}.{e['socket']}" for e in entries])
    counts: dict[tuple[str, str, str], list[int]] = {}
    try:
        try:
            reader.wait_on(5.0)
        except TopoError:
            pass  # a node not running: its sockets count nothing
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not reader.gone.is_set():
            message = reader.next(left)
            if message is not None:
                entry = counts.setdefault((message.instance, message.socket, message.direction), [0, 0])
                entry[0] += 1
                entry[1] += sum(len(f) for f in message.frames)
    finally:
        reader.close()
    for e in entries:
        e["rate"] = {d: {"msgs": counts.get((e["instance"], e["socket"], d), [0, 0])[0] / seconds,
                         "bytes": counts.get((e["instance"], e["socket"], d), [0, 0])[1] / seconds}
                     for d in ("in", "out")}


def format_sockets(identity: str, entries: list[dict[str, Any]]) -> str:
    rated = any("rate" in e for e in entries)
    head = ["SOCKET", "TYPE", "STATE", "TRANSPORT", "PEERS"]
    if rated:
        head += ["IN msg/s", "IN B/s", "OUT msg/s", "OUT B/s"]
    rows = [head]
    for e in entries:
        row = [f"{e['instance']}.{e['socket']}", e["type"], e["state"], ",".join(e["transports"]) or "-",
               ", ".join(e["peers"]) or "-"]
        if rated:
            r = e.get("rate")
            row += ([f"{r['in']['msgs']:.1f}", f"{r['in']['bytes']:.0f}", f"{r['out']['msgs']:.1f}",
                     f"{r['out']['bytes']:.0f}"] if r else ["-"] * 4)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([identity, *lines])
