"""Output lines through a pipe whose read end lives outside the process.

A line printed is in the kernel once ``print`` returns, so it reaches the supervisor even if
the process dies the next instant (``os._exit``, a signal, ``abort()``): nothing of it waits
in a queue or a thread of the dying process. fds 1 and 2 are such pipes too (raw bytes,
shown under the process's first node); the lines :class:`topo.process.capture.Capture`
attributes to a node go through a third one, as records::

    NAME FLAG TEXT\\n        FLAG: o / e (stdout / stderr), O / E (the line goes on in the next record)

Each record is written with one ``write`` of at most ``PIPE_BUF`` bytes, which the kernel
keeps whole even when several writers share the pipe (a forked child); a longer line is
cut into several records and joined again by the reader. The pipe also carries
backpressure: a node printing faster than the supervisor reads waits in ``print``.
"""

from __future__ import annotations

import os
import re
import select

#: The largest write a pipe keeps whole (POSIX: at least 512; Linux 4096).
PIPE_BUF = getattr(select, "PIPE_BUF", 512)
_SURROGATE = re.compile("[\ud800-\udfff]")
_FLAGS = {(False, False): b"o", (True, False): b"e", (False, True): b"O", (True, True): b"E"}


def encode_line(name: str, line: str, err: bool) -> list[bytes]:
    """The records of one line (no newline inside): a lone surrogate becomes U+FFFD."""
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError:
        data = _SURROGATE.sub("\ufffd", line).encode("utf-8")
    head = name.encode("utf-8") + b" "
    room = PIPE_BUF - len(head) - 2
    records = []
    while True:
        piece, data = data[:room], data[room:]
        records.append(head + _FLAGS[err, bool(data)] + piece + b"\n")
        if not data:
            return records


def write_line(fd: int, name: str, line: str, err: bool) -> None:
    """Writes one line's records; blocks while the pipe is full (the reader is behind).
    Raises OSError (BrokenPipeError: the reader is gone)."""
    for record in encode_line(name, line, err):
        view = memoryview(record)
        while view:
            view = view[os.write(fd, view):]


def parse(record: bytes) -> tuple[str, bool, bool, bytes] | None:
    """``(name, err, more, text)`` of a record without its newline; None if malformed."""
    name, sep, rest = record.partition(b" ")
    if not sep or not rest[:1] or rest[:1] not in b"oeOE":
        return None
    flag = rest[:1]
    return name.decode("utf-8", "replace"), flag in b"eE", flag in b"OE", rest[1:]
