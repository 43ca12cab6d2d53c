"""Typed errors and source positions.

Every error the user can cause carries an ``exit_code`` (click's convention: the CLI maps
any :class:`TopoError` to its code in one place) and, where a file is involved, the
position it points at, so messages read ``FILE:LINE:COL: message`` like a compiler's.
A :class:`Problem` is an error (the file cannot be run) or a warning (it can, but likely
not as meant): ``FILE:LINE:COL: warning: message``; ``--strict`` makes warnings errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

#: A problem's severity: an error makes the file invalid, a warning is only shown.
ERROR = "error"
WARNING = "warning"
#: Source lines longer than this are shown as a window around the column.
_EXCERPT_WIDTH = 100


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a file: the form editors and terminals jump to."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a topology file; ordered by position so reports read top-down."""

    pos: Pos
    message: str
    severity: str = ERROR
    #: The source line the position is on, when the reader had it: shown under the
    #: message with a caret at the column (:meth:`render`). Not part of the identity.
    excerpt: str | None = field(default=None, compare=False)
    #: An error that ``--lenient`` shows as a warning (a socket with no link, while a
    #: file is being edited).
    lenient: bool = field(default=False, compare=False)

    @property
    def is_warning(self) -> bool:
        return self.severity == WARNING

    def __str__(self) -> str:
        if self.is_warning:
            return f"{self.pos}: warning: {self.message}"
        return f"{self.pos}: {self.message}"

    def render(self) -> str:
        """The one-line form, then the source line and a caret under the column."""
        if self.excerpt is None:
            return str(self)
        text, col = _window(self.excerpt, self.pos.col)
        number = str(self.pos.line)
        pad = " " * len(number)
        return f"{self}\n  {number} | {text}\n  {pad} | {' ' * (col - 1)}^"


def _window(line: str, col: int) -> tuple[str, int]:
    """The line as shown (tabs expanded, control characters made visible, a long line cut
    around ``col``) and the column of the caret in it."""
    shown = "".join(c if c == "\t" or c.isprintable() else "?" for c in line)
    col = max(1, min(col, len(shown) + 1))
    start = 0
    if len(shown) > _EXCERPT_WIDTH:
        start = max(0, min(col - 1 - _EXCERPT_WIDTH // 2, len(shown) - _EXCERPT_WIDTH))
        shown = ("..." if start else "") + shown[start:start + _EXCERPT_WIDTH] + \
            ("..." if start + _EXCERPT_WIDTH < len(shown) else "")
        col = col - start + (3 if start else 0)
    before = shown[:col - 1].expandtabs(4)
    return shown.expandtabs(4), len(before) + 1


class TopoError(Exception):
    """Base of every error topo reports to a user; never shown as a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def format_message(self) -> str:
        return self.message


class InvalidTopology(TopoError):
    """The file cannot be run; carries every problem found, not just the first, and the
    file's warnings among them (in file order, as they are printed)."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.is_warning]

    def format_message(self) -> str:
        """Every problem compiler-style: located, with its source line where known."""
        return "\n".join(p.render() for p in self.problems)


class UsageError(TopoError):
    """A command was called wrongly (a missing run, an unknown node name)."""

    exit_code = 2


class LaunchError(TopoError):
    """A run could not start or had to be abandoned (not ready by the deadline, a crash)."""

    exit_code = 1
