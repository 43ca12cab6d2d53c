"""What the supervisor shows and keeps of the nodes' output: prefixes, colours, log files.

Formatting only, in the manner of honcho's Printer: nothing here knows about processes or
sockets, every class writes to what it is given, so a test needs no more than a
``StringIO`` and a temporary directory.

Log file format (one file per node instance, ``<directory>/<name>.log``)::

    2024-05-01T12:00:00.123456Z out a line the node printed
    2024-05-01T12:00:00.123457Z err a line it wrote to stderr

The stamp is UTC wall time in microseconds, made strictly increasing by the one
:class:`LogFiles` that writes a run's directory. It is fixed-width, so comparing stamps as
strings orders the lines, and ``topo logs`` can merge all nodes' files back into the order
the supervisor received the lines, while the files stay readable with ``cat``.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

#: Prefix colours, cycled in the order names are added (honcho's palette): stable for a
#: name within a run, and neighbours in the node list never share a colour.
COLORS = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")
#: topo's own messages: bold, uncoloured, so they never pass for a node's.
SYSTEM_STYLE = "1"
SYSTEM_NAME = "topo"

_RESET = "\x1b[0m"
#: A lone surrogate is a valid Python str that no UTF-8 encoder takes (``json.loads``
#: makes one from ``"\\ud800"``, ``os.fsdecode`` from undecodable bytes): a node's line
#: holding one must show, and be logged, with a replacement character, not crash the run.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: What a terminal obeys rather than shows: C0 controls but tab, DEL, and C1 controls.
#: A node's ``\r`` or escape sequence could otherwise rewrite topo's own lines.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so any UTF-8 stream takes it."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)  # (most lines: no search)


def _caret(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"^{chr(code ^ 0x40)}" if code < 0x80 else f"<{code:02x}>"


def visible(text: str) -> str:
    """Control characters as ``cat -v`` shows them (``^M``, ``^[``): shown, not obeyed."""
    return _CONTROL.sub(_caret, text)


def _wants_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """The conventions users expect: colour on terminals only, and NO_COLOR / TERM=dumb win."""
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or exotic streams
        return False


class Printer:
    """Shows lines as ``name | text`` with the prefixes of all names aligned.

    Every line is written with one ``write`` call under a lock and flushed at once, so
    lines from the supervisor's threads never interleave and a pipe reader sees them live.
    """

    def __init__(self, stream: TextIO, names: Iterable[str], color: bool | None = None,
                 labels: Mapping[str, str] | None = None, raw: bool | None = None) -> None:
        """``raw``: pass control characters of nodes' lines through (default: only when
        ``stream`` is not a terminal, where they cannot move the cursor)."""
        self._stream = stream
        self._lock = threading.Lock()
        self._color = _wants_color(stream, os.environ) if color is None else color
        self._raw = not _isatty(stream) if raw is None else raw
        self._styles: dict[str, str] = {}
        #: What a name is shown as (``worker.0@edge`` on a run across hosts).
        self._labels = dict(labels or {})
        self._width = len(SYSTEM_NAME)
        for name in names:
            self.add(name)

    @property
    def color(self) -> bool:
        return self._color

    @property
    def width(self) -> int:
        """Width of the name column; grows as longer names (replicas: ``worker.10``) appear."""
        return self._width

    def add(self, name: str) -> None:
        """Registers a name so its colour is fixed and the column is wide enough for it."""
        if name not in self._styles:
            self._styles[name] = COLORS[len(self._styles) % len(COLORS)]
            self._width = max(self._width, len(self._labels.get(name, name)))

    def line(self, name: str, text: str, err: bool = False) -> None:
        """Shows one line of a node's output; stderr lines look the same (``err`` is kept
        for callers and future styling, since many programs log normally on stderr)."""
        self.add(name)
        text = encodable(text)
        self._write(name, self._styles[name], text if self._raw else visible(text))

    def system(self, text: str) -> None:
        """Shows a message of topo itself, under the ``topo`` prefix."""
        self._write(SYSTEM_NAME, SYSTEM_STYLE, encodable(text))

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def system_text(self, text: str) -> str:
        """What :meth:`system` would write, for a writer that adds lines of its own."""
        return self._format(SYSTEM_NAME, SYSTEM_STYLE, encodable(text))

    def _format(self, name: str, style: str, text: str) -> str:
        prefix = f"{self._labels.get(name, name):<{self._width}} |"
        if self._color:
            prefix = f"\x1b[{style}m{prefix}{_RESET}"
        # A text with embedded newlines still gets a prefix on every line it shows.
        return "".join(f"{prefix} {part}\n" if part else f"{prefix}\n" for part in text.split("\n"))

    def _write(self, name: str, style: str, text: str) -> None:
        out = self._format(name, style, text)
        with self._lock:
            try:
                self._stream.write(out)
            except UnicodeEncodeError:  # a terminal that cannot show some character
                enc = getattr(self._stream, "encoding", None) or "ascii"
                self._stream.write(out.encode(enc, "replace").decode(enc))
            self._stream.flush()


_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_STREAMS = {False: "out", True: "err"}


@dataclass(frozen=True)
class LogRecord:
    """One line of a log file, with what ``topo logs`` needs to merge files in order."""

    stamp: str
    name: str
    err: bool
    text: str


class LogFiles:
    """Appends each node's lines to its own file in a run's directory.

    Files are opened on a node's first line (a node that never prints leaves no empty
    file). Each :meth:`write` reaches the file before it returns, so ``topo logs -f`` in
    another terminal sees every line as soon as it is written; inside :meth:`batch` (the
    lines of one turn of the supervisor's loop) they reach it together at the batch's end:
    one system call per line was most of what a flood of output cost the supervisor
    (500,000 lines: 12.6 s, most of it in ``write``). Safe to call from several threads.
    """

    def __init__(self, directory: Path, on_failure: Callable[[str], None] | None = None) -> None:
        self.directory = Path(directory)
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._last_us = 0
        self._second: tuple[int, str] = (-1, "")  # the second of the last stamp, formatted
        #: Told once, when the files cannot be written any more (a full or broken disk).
        self._on_failure = on_failure
        #: Why the log files stopped (None while they work).
        self.failed: str | None = None
        self._batches = 0  # batches open: files are flushed when the last one ends
        self._dirty: set[str] = set()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Lines written inside reach their files at the end (or at the outermost
        batch's end); a line written outside any batch is flushed at once."""
        with self._lock:
            self._batches += 1
        try:
            yield
        finally:
            with self._lock:
                self._batches -= 1
                if not self._batches:
                    self._flush()
            self._tell_failure()

    def _flush(self) -> None:
        """(Holding the lock.)"""
        try:
            for name in self._dirty:
                f = self._files.get(name)
                if f is not None:
                    f.flush()
        except OSError as error:
            self._fail(error)
        self._dirty.clear()

    def _fail(self, error: OSError) -> None:
        """(Holding the lock.) The run matters more than its log: it goes on, shown on the
        terminal only."""
        self.failed = f"{self.directory}: {error.strerror or error}"
        self._close_quietly()

    def _tell_failure(self) -> None:
        if self.failed is not None and self._on_failure is not None:
            report, self._on_failure = self._on_failure, None
            report(f"log files stopped ({self.failed}); the run goes on, its output on the terminal only")

    def write(self, name: str, text: str, err: bool = False) -> None:
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"unsafe log name {name!r}")
        with self._lock:
            if self.failed is not None:
                return
            try:
                f = self._files.get(name)
                if f is None:
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    f = open(  # noqa: SIM115 - kept open until close()
                        self.directory / f"{name}.log", "a", buffering=1 << 16, encoding="utf-8",
                        errors="surrogateescape", newline="\n",
                    )
                    self._files[name] = f
                stream = _STREAMS[err]
                text = encodable(text)  # the bytes a node wrote stay, but no lone surrogate
                # One record per physical line, so a stray newline cannot forge a record.
                f.write("".join(f"{self._stamp()} {stream} {part}\n" for part in text.split("\n")))
                if self._batches:
                    self._dirty.add(name)
                else:
                    f.flush()
            except OSError as error:
                self._fail(error)
        self._tell_failure()

    def _close_quietly(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass  # what the full disk did not take is lost with it
        self._files.clear()

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def _stamp(self) -> str:
        """Wall time, forced strictly increasing so equal stamps never blur the order."""
        self._last_us = max(self._last_us + 1, time.time_ns() // 1000)
        secs, micros = divmod(self._last_us, 1_000_000)
        if secs != self._second[0]:  # (formatted once a second, not once a line)
            self._second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
        return f"{self._second[1]}.{micros:06d}Z"


_RECORD = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (out|err) (.*)", re.DOTALL)


def _parse(name: str, line: str, previous: str) -> LogRecord:
    """A line that is not a record (a file edited by hand) is kept as text, in file order."""
    m = _RECORD.fullmatch(line)
    if m is None:
        return LogRecord(previous, name, False, line)
    return LogRecord(m[1], name, m[2] == "err", m[3])


def log_paths(directory: Path, name: str | None) -> list[tuple[str, Path]]:
    """The files to read; a name no node can have (``../x``) simply has no log."""
    if name is not None:
        if not _SAFE_NAME.fullmatch(name):
            return []
        exact = Path(directory) / f"{name}.log"
        # a replicated node's name stands for all its instances: worker → worker.0, worker.1
        replicas = sorted(p for p in Path(directory).glob(f"{name}.*.log")
                          if p.name[len(name) + 1: -len(".log")].isdigit())
        if exact.exists() or not replicas:
            return [(name, exact)]
        return [(p.name[: -len(".log")], p) for p in replicas]
    try:
        return [(p.name[: -len(".log")], p) for p in sorted(Path(directory).glob("*.log"))]
    except OSError:
        return []


class Tail:
    """Reads the complete lines appended to one file since the last call; a partial last
    line waits for its newline, and a truncated file is read again from the start."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.offset = 0
        self.pending = b""
        self.last_stamp = ""

    def read(self) -> list[LogRecord]:
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:
                    self.offset, self.pending = 0, b""
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.pending = (self.pending + data).split(b"\n")
        records = []
        for raw in lines:
            rec = _parse(self.name, raw.decode("utf-8", "replace"), self.last_stamp)
            self.last_stamp = rec.stamp
            records.append(rec)
        return records


def read_records(directory: Path, name: str | None = None) -> list[LogRecord]:
    """All complete lines of one node, or of every node merged by stamp."""
    records: list[LogRecord] = []
    for node, path in log_paths(directory, name):
        records.extend(Tail(node, path).read())
    return sorted(records, key=lambda r: r.stamp)  # stable: one file keeps its order


def read_log(directory: Path, name: str | None) -> list[tuple[str, str]]:
    """``(name, line)`` for one node, or for all nodes in the order they were written."""
    return [(r.name, r.text) for r in read_records(directory, name)]


def format_duration(seconds: float) -> str:
    """Short and readable at every scale: ``0.42s``, ``3.1s``, ``2m05s``, ``1h02m``."""
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 0.995:
        return f"{seconds:.2f}s"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    if seconds < 3599.5:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h{minutes:02d}m"


def summary_table(rows: list[tuple[str, str, float]]) -> str:
    """The end-of-run table of ``topo up``: node, result, run time, aligned in columns.

    Returned without a trailing newline so the caller can print it whole or line by line
    (e.g. through :meth:`Printer.system`).
    """
    table = [("NODE", "RESULT", "TIME")]
    table += [(node, result, format_duration(secs)) for node, result, secs in rows]
    w_node = max(len(r[0]) for r in table)
    w_result = max(len(r[1]) for r in table)
    w_time = max(len(r[2]) for r in table)
    return "\n".join(
        f"{node:<{w_node}}  {result:<{w_result}}  {secs:>{w_time}}".rstrip()
        for node, result, secs in table
    )
