"""Message frames made safe to print: whatever a node sends, ``topo echo`` never writes a
control character, an escape sequence or invalid UTF-8 to the user's terminal.

Text is shown as text with every non-printable character escaped (``\\n``, ``\\x1b``,
``\\u202e``: the bidi overrides too); what is not UTF-8, or is mostly control characters
(binary that happens to be valid UTF-8), is shown in hex. ``json`` and
``msgpack`` decode and show the value, compactly, falling back to the safe form with a
note when a frame is not one. msgpack is optional: used if importable, never required.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Sequence

from topo.errors import UsageError

FORMATS = ("auto", "text", "hex", "json", "msgpack")
#: Characters of one frame shown before it is cut (the rest counted).
LIMIT = 2000


def check_format(fmt: str) -> None:
    """A :class:`UsageError` for a format that cannot be shown here."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "msgpack":
        try:
            import msgpack  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            raise UsageError("--format msgpack needs the msgpack package (pip install msgpack)") from None


def escape(text: str) -> str:
    """``text`` with every character that is not printable escaped, as Python would."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _cut(shown: str, limit: int) -> str:
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}...(+{len(shown) - limit} chars)"


def show(data: bytes, fmt: str = "auto", limit: int = LIMIT) -> str:
    """One frame as a printable line fragment."""
    if fmt == "hex":
        return _cut("0x" + data.hex(), limit)
    if fmt == "json":
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            return "(not JSON) " + show(data, "auto", limit)
        return _cut(escape(json.dumps(value, ensure_ascii=False, separators=(",", ":"))), limit)
    if fmt == "msgpack":
        import msgpack

        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - msgpack raises many kinds for bad input
            return "(not msgpack) " + show(data, "auto", limit)
        return _cut(escape(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_plain)), limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if fmt == "text":
            return _cut(escape(data.decode("utf-8", errors="backslashreplace")), limit)
        return _cut("0x" + data.hex(), limit)
    if not text:
        return "''"
    if fmt == "auto" and _binary(text):
        return _cut("0x" + data.hex(), limit)
    return _cut(escape(text), limit)


#: Control characters that text has: whitespace, and the escape of a coloured log line.
_TEXTUAL_CONTROLS = frozenset("\t\n\r\x1b")


def _binary(text: str) -> bool:
    """Whether bytes that happen to be valid UTF-8 are binary all the same: more than a
    quarter of them control characters (a counter packed as ``\\x17\\x15`u`` reads as
    neither text nor its escapes; hex shows what it is)."""
    controls = sum(1 for c in text if (c < " " or "\x7f" <= c < "\xa0") and c not in _TEXTUAL_CONTROLS)
    return controls * 4 > len(text)


def _plain(value: Any) -> Any:
    """What JSON cannot hold (msgpack's bytes, ext types), as text."""
    if isinstance(value, bytes):
        return show(value)
    return repr(value)


def clock(time_ns: int) -> str:
    """A copy's time as the local wall clock, to the microsecond."""
    return datetime.datetime.fromtimestamp(time_ns / 1e9).strftime("%H:%M:%S.%f")


def line(label: str, direction: str, time_ns: int, frames: Sequence[bytes], fmt: str = "auto") -> str:
    """One message as ``topo echo`` prints it: when, whose socket, which way, each frame
    after its index."""
    shown = "  ".join(f"[{i}] {show(frame, fmt)}" for i, frame in enumerate(frames))
    return f"{clock(time_ns)} {label} {direction:<3} {shown}" if frames else f"{clock(time_ns)} {label} {direction:<3} (no frames)"
