"""A YAML syntax error said as a compiler would: the line of the mistake, and what it is.

PyYAML reports where its scanner or parser gave up, which is often the line *after* the
mistake (a key without ``:`` is read as text running on into the next line, where the
next ``:`` is refused), in the words of the YAML grammar ("while parsing a block mapping
did not find expected key"). This module looks at the text around that place, finds the
common mistakes of a hand-written file (tab indentation, a key indented deeper or less
than its siblings, a missing ``:``, a quote or bracket never closed, a ``-`` item inside a
mapping) and says each plainly, on its own line and column. What it does not recognise
keeps PyYAML's words. The same words on every PyYAML (the C and the pure-Python parsers
phrase their errors differently): only the marks and the text are read.
"""

from __future__ import annotations

import re

import yaml

from topo.errors import Pos, Problem

#: ``key:`` at the start of a line, ending in ``:`` then a space or the end (``- `` first
#: in a list); group 1 the indentation, group 2 the key.
_KEY = re.compile(r"""^(\s*)(?:-\s+)?("[^"]*"|'[^']*'|[^\s#'"\[\]{}:,-][^#:]*?|-[^\s#:][^#:]*?)\s*:(?:\s|$)""")
_RESERVED = {"@": "`@`", "`": "a backquote", "%": "`%`"}
_ALIAS = re.compile(r"[^\s,\[\]{}]+")
#: What YAML was reading (its words) when a value began with an indicator character.
_INDICATORS = {"a block scalar": "a block of text on the lines below",
               "an anchor": "an anchor (`&name`)", "an alias": "an alias (`*name`)"}
_LONGEST_KEY = 1000
#: What YAML counts as a line break, both PyYAMLs alike: marks count lines by these.
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _key(text: str) -> re.Match[str] | None:
    """``_KEY`` on the line's start: a key is short, and a hostile line may not be."""
    return _KEY.match(text[:_LONGEST_KEY])


def source_lines(text: str) -> list[str]:
    """The text's lines as YAML counts them, so that a mark's line indexes this list."""
    return _BREAK.split(text)


def explain(err: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """The error as one located problem, the line it points at as its excerpt."""
    lines = source_lines(text)
    pm = err.problem_mark or err.context_mark
    line, col = (pm.line, pm.column) if pm is not None else (0, 0)
    found = _explain(err, lines, line, col)
    if found is None:
        what = " ".join(p for p in (err.context, err.problem) if p)
        found = line, col, f"YAML syntax error: {what}"
    at, column, message = found
    excerpt = lines[at] if 0 <= at < len(lines) else None
    return Problem(Pos(file, at + 1, column + 1), message, excerpt=excerpt)


def _explain(err: yaml.MarkedYAMLError, lines: list[str], line: int, col: int) -> tuple[int, int, str] | None:
    """(0-based line, 0-based column, message) of the mistake, or None: not recognised."""
    context, problem = err.context or "", err.problem or ""
    cm = err.context_mark
    tab = _tab_indent(lines, line)
    if tab is not None:
        return tab[0], tab[1], "a tab is not allowed for indentation: indent with spaces"
    if "quoted scalar" in context and "end of stream" in problem and cm is not None:
        quote = _char(lines, cm.line, cm.column)
        return cm.line, cm.column, f"this quote is never closed: add the closing {quote} where the value ends"
    unclosed = _open_quote(lines, cm.line if cm is not None else 0, line)
    if unclosed is not None:
        q = _char(lines, *unclosed)
        return unclosed[0], unclosed[1], f"this quote is not closed on its line: add the closing {q} where the value ends"
    if "flow" in context and cm is not None:
        opener = _char(lines, cm.line, cm.column)
        closer = {"{": "}", "[": "]"}.get(opener, "")
        if line > cm.line or "end" in problem:
            return cm.line, cm.column, f"this `{opener}` is never closed: add `{closer}` after its last item"
        return line, col, f"`,` or `{closer}` expected here: items inside `{opener}...{closer}` are separated by commas"
    if "simple key" in context and "':'" in problem and cm is not None:
        return _missing_colon(lines, cm.line)
    if "undefined alias" in problem and err.problem_mark is not None:
        found = _ALIAS.match(lines[line], col + 1) if line < len(lines) else None
        name = found.group(0) if found else ""
        return line, col, f"`*{name}` refers to no anchor: write `&{name}` on a value before it"
    indicator = _INDICATORS.get(context.replace("while scanning ", ""))
    if indicator is not None and cm is not None:
        char = _char(lines, cm.line, cm.column)
        return cm.line, cm.column, f"`{char}` here starts {indicator}: quote a value that starts with `{char}`"
    if "cannot start any token" in problem:
        char = _char(lines, line, col)
        if char == "\t":
            return line, col, "a tab is not allowed here: use spaces"
        if char in _RESERVED:
            return line, col, f"a value cannot start with {_RESERVED[char]} (YAML reserves it): quote the value"
    if "mapping values are not allowed" in problem:
        return _mapping_value(lines, line, col)
    if "block collection" in context:
        message = "a `key: value` in the middle of a list: every item of a list starts with `- `"
        first = lines[cm.line] if cm is not None and cm.line < len(lines) else ""
        if cm is not None and cm.line < line < len(lines) and _key(first[cm.column + 1:].lstrip(" ")) \
                and _key(lines[line]):
            # `- run: ...` then `sockets: ...`: a `-` too many, as likely as one missing
            message += f", or remove the `-` on line {cm.line + 1} if this is a mapping"
        return line, col, message
    if "block mapping" in context:
        return _in_block_mapping(lines, line, col, cm.column if cm is not None else None)
    return None


def _tab_indent(lines: list[str], line: int) -> tuple[int, int] | None:
    """A tab in the indentation of the error's line or the one before it."""
    for at in (line - 1, line):
        if 0 <= at < len(lines):
            text = lines[at]
            indent = text[:len(text) - len(text.lstrip(" \t"))]
            if "\t" in indent and text.strip():
                return at, indent.index("\t")
    return None


def _open_quote(lines: list[str], first: int, last: int) -> tuple[int, int] | None:
    """The first value from line ``first`` to ``last`` that opens a quote it does not close
    on its line (a quoted value may go on over lines in YAML; a topology's never does)."""
    for at in range(max(0, first), min(last, len(lines) - 1) + 1):
        text = lines[at]
        m = _key(text)
        start = m.end() if m else len(text) - len(text.lstrip(" -"))
        rest = text[start:].lstrip()
        if not rest or rest[0] not in "\"'":
            continue
        col = len(text) - len(rest)
        body = rest[1:].replace("\\\\", "").replace('\\"', "") if rest[0] == '"' else rest[1:].replace("''", "")
        if rest[0] not in body:
            return at, col
    return None


def _missing_colon(lines: list[str], at: int) -> tuple[int, int, str]:
    text = lines[at] if 0 <= at < len(lines) else ""
    stripped = text.lstrip(" ")
    if stripped.startswith("- "):
        stripped = stripped[2:].lstrip(" ")
    word = stripped.split()[0] if stripped.split() else ""
    col = len(text) - len(stripped) + len(word)
    return at, col, f"missing `:` after `{word}`"


def _mapping_value(lines: list[str], line: int, col: int) -> tuple[int, int, str] | None:
    """``mapping values are not allowed``: PyYAML met a ``: `` it cannot take."""
    text = lines[line] if line < len(lines) else ""
    m = _key(text)
    if m is not None and m.end() <= col and text[m.end():].strip()[:1] not in ("{", "[", "'", '"', "&", "*", "!"):
        key = m.group(2)
        return line, col, f"a value that contains `: ` must be quoted: write `{key}: \"{text[m.end():].strip()}\"`"
    indent = len(text) - len(text.lstrip(" "))
    before = _previous(lines, line)
    if before is None:
        return None
    prev = lines[before]
    prev_indent = len(prev) - len(prev.lstrip(" "))
    pm = _key(prev)
    if pm is None and not prev.lstrip(" ").startswith("- ") and prev_indent <= indent:
        return _missing_colon(lines, before)
    if pm is not None and prev[pm.end():].strip() and indent > prev_indent:
        key = pm.group(2)
        return line, indent, f"this key is indented deeper than the one before (`{key}`, column {prev_indent + 1}): line it up with `{key}`, or give `{key}:` no value of its own to nest it"
    return None


def _in_block_mapping(lines: list[str], line: int, col: int, keys_col: int | None) -> tuple[int, int, str] | None:
    """The parser wanted the next key of a mapping and found something else."""
    text = lines[line] if line < len(lines) else ""
    char = _char(lines, line, col)
    rest = text[col:]
    if rest.startswith("- ") or rest.rstrip() == "-":
        return line, col, "a `-` list item in the middle of a mapping: a mapping holds `key: value` lines; put a list under a key of its own"
    if char in ("]", "}"):
        return line, col, f"this `{char}` closes nothing: remove it"
    indent = len(text) - len(text.lstrip(" "))
    before = _previous(lines, line)
    if not _key(text):
        if col == indent and text.strip():
            return line, col, "a line of a mapping must be `key: value` (a `:` missing? a comment without its `#`?)"
        return None
    if keys_col is None or before is None:
        return None
    prev = lines[before]
    prev_indent = len(prev) - len(prev.lstrip(" "))
    pm = _key(prev)
    if indent > prev_indent and pm is not None and prev[pm.end():].strip():
        key = pm.group(2)  # a deeper key after a comment line: the same mistake as above
        return line, indent, f"this key is indented deeper than the one before (`{key}`, column {prev_indent + 1}): line it up with `{key}`, or give `{key}:` no value of its own to nest it"
    if indent <= keys_col or indent >= prev_indent:
        return None
    owner = _key_at(lines, line, keys_col)
    outer = f"`{owner}` (column {keys_col + 1})" if owner else f"the keys at column {keys_col + 1}"
    return line, indent, f"this key is indented less than the one before (column {prev_indent + 1}) but more than {outer}: line it up with one of them"


def _key_at(lines: list[str], line: int, col: int) -> str | None:
    """The nearest key above ``line`` written at column ``col``."""
    for at in range(min(line, len(lines)) - 1, -1, -1):
        m = _key(lines[at])
        if m is not None and len(m.group(1)) == col:
            return m.group(2)
    return None


def _previous(lines: list[str], line: int) -> int | None:
    """The line before ``line`` that holds something (not blank, not only a comment)."""
    for at in range(min(line, len(lines)) - 1, -1, -1):
        if lines[at].strip() and not lines[at].lstrip().startswith("#"):
            return at
    return None


def _char(lines: list[str], line: int, col: int) -> str:
    return lines[line][col] if 0 <= line < len(lines) and 0 <= col < len(lines[line]) else ""
