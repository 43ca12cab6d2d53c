"""``topo record``: recording a running run, and a recording's contents (``--info FILE``).

``topo record RUN [NODE.SOCKET ...] -o FILE.mcap`` taps the sockets (every one of the
run's nodes, on every host, when none is named, :mod:`topo.supervisor.tapreader`) and writes each
copy to an MCAP file (:class:`topo.observe.recording.Recorder`). ``--info`` reads a
recording, a cut-off one included (:mod:`topo.observe.recorded`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Callable

from topo.errors import TopoError, UsageError

if TYPE_CHECKING:
    from topo.observe.recorded import Summary


def check_usage(targets: tuple[str, ...], output: str | None, info: str | None) -> None:
    """The two forms, ``--info FILE`` and ``RUN [NODE.SOCKET ...] -o FILE``, kept apart."""
    if info is not None:
        if targets or output:
            raise UsageError("topo record --info FILE reads a recording: it takes no RUN, "
                             "NODE.SOCKET or -o")
        return
    if not targets:
        raise UsageError("topo record: name a run to record (RUN [NODE.SOCKET ...] -o FILE.mcap), "
                         "or read a recording with --info FILE")
    if not output:
        raise UsageError("topo record RUN: say where the recording goes with -o FILE.mcap")


def record_run(targets: tuple[str, ...], output: str, *, count: int | None, duration: float | None,
               say: Callable[[str], None]) -> int:
    """Records what ``targets`` (RUN, then NODE.SOCKET ...; none: every socket of the run's
    nodes, on every host) carry, both ways, to ``output``, until Ctrl-C, the run's end, ``count``
    messages or ``duration`` seconds. Returns how many messages were recorded. Sockets of
    nodes on other hosts are recorded too: their copies come through their agents.

    What was sent before the taps were on is not in it (``topo up --record`` is what
    records from the first message). Copies the tap lost (a disk slower than the run) are
    counted in the channel of the next message recorded."""
    from topo.cli.client import one_run, request
    from topo.cli.observe import ON_TIMEOUT, open_reader
    from topo.observe.recording import Recorder, topology_text

    run = one_run(targets[0])
    if run.info.get("starting") or not run.info.get("control"):
        raise TopoError(f"run {run.identity} is still starting; try again in a moment")
    wanted = list(targets[1:])
    if not wanted:
        entries = request(run, {"cmd": "sockets"})["sockets"]
        wanted = [f"{e['instance']}.{e['socket']}" for e in entries]
        if not wanted:
            raise UsageError(f"run {run.identity} has no socket to record")
    plan = request(run, {"cmd": "plan"})["plan"]
    recorder = Recorder(output, topology_text(str(run.info.get("file", ""))), json.dumps(plan))
    recorded = 0
    reader = open_reader(run, wanted)
    try:
        try:
            reader.wait_on(ON_TIMEOUT)
        except TopoError as err:
            say(f"{err}; recording the others")
        say(f"recording {len(wanted)} socket(s) of {run.identity} to {output} (Ctrl-C ends it)")
        end = None if duration is None else time.monotonic() + duration
        while (count is None or recorded < count) and not reader.gone.is_set():
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            wait = recorder.next_flush()
            message = reader.next(max(0.0, min(x for x in (left, wait, 1.0) if x is not None)))
            if message is None:
                recorder.idle()
                continue
            recorder.add(message.instance, message.socket, message.direction, message.time_ns,
                         message.frames, missed=reader.take_missed())
            recorded += 1
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        recorder.close()
    say(f"recorded {recorded} message(s) to {output}" + (" (the run ended)" if reader.gone.is_set() else ""))
    return recorded




def info(path: str, as_json: bool) -> str:
    """What ``topo record --info FILE`` prints."""
    from topo.observe.recorded import summarize

    summary = summarize(path)
    if as_json:
        return json.dumps(summary.to_json(), indent=2)
    return format_info(summary)


def format_info(s: Summary) -> str:
    """The recording's topology, state and span, then a row per channel."""
    lines = [f"{s.file}: topology {s.topology or '(unknown: not recorded by topo)'}, "
             f"{s.messages} message(s) on {len(s.channels)} channel(s), {_size(s.size)}"]
    if s.start_ns is not None and s.end_ns is not None:
        lines.append(f"  from {_stamp(s.start_ns)} to {_stamp(s.end_ns)} ({_seconds(s.end_ns - s.start_ns)})")
    lines.append("  complete" if s.complete else f"  incomplete: {s.ended or 'no footer'}")
    rows = [("CHANNEL", "TYPE", "MESSAGES", "BYTES", "FIRST", "LAST", "MISSED")]
    for c in s.channels:
        first = _seconds(c.start_ns - s.start_ns, "+") if c.start_ns is not None and s.start_ns is not None else "-"
        last = _seconds(c.end_ns - s.start_ns, "+") if c.end_ns is not None and s.start_ns is not None else "-"
        kind = c.type or ("?" if c.encoding == "zmq-frames" else c.encoding)
        rows.append((c.topic, kind, str(c.messages), _size(c.bytes), first, last, str(c.missed)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4, 5, 6}
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _stamp(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{rest // 10**6:03d} UTC"


def _seconds(ns: int, sign: str = "") -> str:
    return f"{sign}{ns / 1e9:.3f}s"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
