"""``${VAR}`` in a topology file's values, by docker compose's rules.

A file names what changes from one run to the next (a port, a replica count, a period)
as ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``,
``${VAR?message}``, ``${VAR:+alt}``, ``${VAR+alt}`` or ``$VAR``; ``$$`` is a literal ``$``.
Values come from the environment and from a ``.env`` file next to the topology file, the
environment winning, as in compose.

Substitution works on the values YAML has read, never on keys, and before anything is
typed: a plain scalar is typed again after it (``replicas: ${N}`` with ``N=4`` is the
integer 4), a quoted one stays a string. One thing has to happen on the text first: in a
flow mapping (``{period: ${PERIOD:-0.5}}``) YAML reads ``{``, ``}``, ``,``, ``?`` and
``:`` as its own punctuation, so :func:`mask` swaps the punctuation inside every
``${...}`` for private-use characters of the same length before YAML reads the text
(every line and column stays where it was) and :func:`restore` swaps it back in each
scalar. Nothing here imports zmq or starts a process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import yaml

from topo.errors import Pos, Problem

#: YAML's punctuation inside ``${...}``, each with the private-use character that stands
#: for it while YAML reads the text.
_PUNCTUATION = "{}[],:#?"
_STAND_IN = "".join(chr(0xF8F0 + i) for i in range(len(_PUNCTUATION)))
_MASK = str.maketrans(_PUNCTUATION, _STAND_IN)
_UNMASK = str.maketrans(_STAND_IN, _PUNCTUATION)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)
_ANCHOR = re.compile(r"&\S+\s*")
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*", re.S)
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_HINT = "add it to the environment or to .env next to the file"


@dataclass(frozen=True)
class Ref:
    """A ``$`` reference that went wrong: where it starts in its value, and why."""

    start: int
    error: str


def _scan(text: str) -> Iterator[tuple[int, int, str | None]]:
    """Every reference of ``text`` as (start, end, body): body is the braced text between
    ``${`` and ``}``, the name of a ``$NAME``, or None for an unclosed ``${``. ``$$`` and a
    ``$`` before anything else are no reference (the latter stays a literal ``$``)."""
    i = text.find("$")
    while i >= 0:
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            i = text.find("$", i + 2)
            continue
        if nxt == "{":
            close = text.find("}", i + 2)
            newline = text.find("\n", i + 2)
            if close < 0 or 0 <= newline < close:
                yield i, i + 2, None
                i = text.find("$", i + 2)
                continue
            yield i, close + 1, text[i + 2:close]
            i = text.find("$", close + 1)
            continue
        name = _NAME.match(text, i + 1)
        if name is not None:
            yield i, name.end(), name.group()
            i = text.find("$", name.end())
            continue
        i = text.find("$", i + 1)


def mask(text: str) -> str:
    """``text`` with YAML's punctuation inside each closed ``${...}`` (braces included)
    replaced by stand-ins of one character each, so YAML reads the reference as part of
    a scalar, in a flow mapping too. A text that already holds a stand-in is returned as
    it is, since restoring would change it (such a file reads ``${`` in flow as YAML does)."""
    if any(c in text for c in _STAND_IN):
        return text
    parts: list[str] = []
    last = 0
    for start, end, body in _scan(text):
        if body is not None and text[start + 1] == "{":
            parts.append(text[last:start + 1])
            parts.append(text[start + 1:end].translate(_MASK))
            last = end
    parts.append(text[last:])
    return "".join(parts)


def restore(value: str) -> str:
    """A scalar's text as written: the stand-ins :func:`mask` put in turned back."""
    return value.translate(_UNMASK)


def substitute(value: str, lookup: Callable[[str], str | None]) -> tuple[str, list[Ref]]:
    """``value`` with every reference replaced, and the references that went wrong (their
    offset in ``value`` and why). A wrong reference is replaced by nothing, so that the
    rest of the file can still be checked."""
    out: list[str] = []
    errors: list[Ref] = []
    last = 0
    for start, end, body in _scan(value):
        out.append(value[last:start].replace("$$", "$"))
        last = end
        if body is None:
            errors.append(Ref(start, "`${` without its closing `}` on the same line (write $$ for a literal $)"))
            continue
        if value[start + 1] != "{":
            text, error = _resolve(body, None, None, lookup)
        else:
            m = _BRACED.fullmatch(body)
            if m is None:
                errors.append(Ref(start, f"invalid variable reference `${{{body}}}`: a name, optionally followed "
                                         "by :-, -, :?, ?, :+ or + and a text (write $$ for a literal $)"))
                continue
            text, error = _resolve(m[1], m[2], m[3], lookup)
        if error is not None:
            errors.append(Ref(start, error))
        out.append(text)
    out.append(value[last:].replace("$$", "$"))
    return "".join(out), errors


def _resolve(name: str, op: str | None, arg: str | None, lookup: Callable[[str], str | None]) -> tuple[str, str | None]:
    """One reference's text and, if it cannot have one, the error."""
    value = lookup(name)
    unset_only = op is not None and not op.startswith(":")
    missing = value is None if unset_only else not value
    kind = op[-1] if op else None
    if kind == "-":
        return (arg or "", None) if missing else (value or "", None)
    if kind == "+":
        return ("", None) if missing else (arg or "", None)
    if kind == "?" and missing:
        why = "is not set" if value is None else "is empty"
        return "", f"variable {name} {why}: {arg}" if arg else f"variable {name} {why} ({_HINT})"
    if value is None:
        return "", f"variable {name} is not set ({_HINT})"
    return value, None


def read_dotenv(path: str, problems: list[Problem]) -> dict[str, str]:
    """The variables of a compose ``.env`` file: ``KEY=VALUE`` lines, ``#`` comments, blank
    lines, an optional ``export``; a value may be single-quoted (taken as written) or
    double-quoted (``\\n``, ``\\t``, ``\\"`` and ``\\\\`` escapes); an unquoted value ends
    before `` #``. No file is no variables; a line that is none of these is a problem."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        problems.append(Problem(Pos(path, 1, 1), f"cannot read the file: {getattr(err, 'strerror', None) or err}"))
        return {}
    out: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ENV_LINE.fullmatch(line)
        value = _env_value(m[2]) if m else None
        if m is None or value is None:
            col = len(line) - len(line.lstrip()) + 1
            problems.append(Problem(Pos(path, number, col), "expected KEY=VALUE (a # starts a comment line)"))
            continue
        out[m[1]] = value
    return out


def _env_value(raw: str) -> str | None:
    """A ``.env`` value as compose reads it, or None if its quote is not closed."""
    if raw[:1] == "'":
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 and _comment(raw[end + 1:]) else None
    if raw[:1] == '"':
        out: list[str] = []
        i = 1
        while i < len(raw):
            c = raw[i]
            if c == "\\" and i + 1 < len(raw):
                out.append(_DQ_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
                i += 2
                continue
            if c == '"':
                return "".join(out) if _comment(raw[i + 1:]) else None
            out.append(c)
            i += 1
        return None
    cut = re.search(r"\s#", raw)
    return (raw[:cut.start()] if cut else raw).strip()


def _comment(rest: str) -> bool:
    """Whether what follows a closing quote is nothing or a comment."""
    rest = rest.strip()
    return not rest or rest.startswith("#")


def variables(file: str, problems: list[Problem], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ``${VAR}`` reads for ``file``: its ``.env`` (if the file is on disk) under the
    environment, which wins."""
    env = dict(os.environ if environ is None else environ)
    folder = os.path.dirname(os.path.abspath(file))
    dotenv = read_dotenv(os.path.join(folder, ".env"), problems) if os.path.isfile(file) else {}
    return {**dotenv, **env}


class Interpolator:
    """One pass over a composed tree: keys restored, values substituted and typed again.

    Every node is visited once (an alias reaches the same node again: substituting twice
    would read a ``$$`` twice), without recursion, so any depth the composer built is fine.
    """

    def __init__(self, text: str, file: str, values: Mapping[str, str], problems: list[Problem]) -> None:
        self.file = file
        self.values = values
        self.problems = problems
        self.text = text
        #: Where each line starts in the text, to find a reference from its line and column.
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._refs = [(self._line_col(start), start) for start, _, _ in _scan(text)]
        self._resolver = yaml.resolver.Resolver()
        #: The scalars (by id) that a reference without a value left with no value.
        self.failed: set[int] = set()

    def _line_col(self, index: int) -> tuple[int, int]:
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo, index - self._starts[lo]

    def run(self, root: yaml.Node) -> None:
        seen: set[int] = set()
        todo: list[tuple[yaml.Node, bool]] = [(root, True)]
        while todo:
            node, is_value = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                self.scalar(node, is_value)
            elif isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    todo.append((key, False))
                    todo.append((value, True))
            elif isinstance(node, yaml.SequenceNode):
                todo.extend((item, True) for item in node.value)

    def scalar(self, node: yaml.ScalarNode, is_value: bool) -> None:
        written = restore(node.value)
        if not is_value or "$" not in written:
            node.value = written
            return
        value, errors = substitute(written, self.values.get)
        if errors:
            self.failed.add(id(node))
            where = self._positions(node, written)
            for ref in errors:
                self.problems.append(Problem(where.get(ref.start) or self._pos(node.start_mark), ref.error))
        plain = not node.style
        if plain and not self._tagged(node):
            node.tag = self._resolver.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        node.value = value

    def _pos(self, mark: yaml.Mark) -> Pos:
        return Pos(self.file, mark.line + 1, mark.column + 1)

    def _positions(self, node: yaml.ScalarNode, written: str) -> dict[int, Pos]:
        """Each reference of the value (by offset) at its place in the file, when the
        file's text of the node has as many references as its value; else nothing, and
        the node's own position is used."""
        begin = (node.start_mark.line, node.start_mark.column)
        end = (node.end_mark.line, node.end_mark.column)
        in_file = [(line, col) for (line, col), _ in self._refs if begin <= (line, col) < end]
        in_value = [start for start, _, _ in _scan(written)]
        if len(in_file) != len(in_value):
            return {}
        return {offset: Pos(self.file, line + 1, col + 1) for offset, (line, col) in zip(in_value, in_file)}

    def _tagged(self, node: yaml.ScalarNode) -> bool:
        """Whether the scalar was written with a tag (``!!str ${N}`` stays a string): its
        properties, an anchor then a tag, come first from its start mark."""
        line, col = node.start_mark.line, node.start_mark.column
        if line >= len(self._starts):
            return False
        at = self._starts[line] + col
        anchor = _ANCHOR.match(self.text, at)  # matched in place: no copy of the rest of the text
        return self.text.startswith("!", anchor.end() if anchor else at)
