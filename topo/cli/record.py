"""``topo record``: a recording's contents (``--info FILE``), and recording a run.

Recording a running run (``topo record RUN [NODE.SOCKET ...] -o FILE.mcap``) needs the
live copies of what its sockets carry, which this version does not take yet: the command
says so and exits 2. ``--info`` reads a recording, a cut-off one included
(:mod:`topo.observe.recorded`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from topo.errors import UsageError

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
    raise UsageError("topo record: recording a running topology is not available in this version "
                     "(it comes with the live tap of a run's sockets); a recording made with "
                     "topo.observe.recording.Recorder can be read with --info FILE and replayed "
                     "with run: topo.nodes:replay")


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
