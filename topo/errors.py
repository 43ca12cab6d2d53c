"""Typed errors and source positions.

Every error the user can cause carries an ``exit_code`` (click's convention: the CLI maps
any :class:`TopoError` to its code in one place) and, where a file is involved, the
position it points at, so messages read ``FILE:LINE:COL: message`` like a compiler's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


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

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}"


class TopoError(Exception):
    """Base of every error topo reports to a user; never shown as a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def format_message(self) -> str:
        return self.message


class InvalidTopology(TopoError):
    """The file cannot be run; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(TopoError):
    """A command was called wrongly (a missing run, an unknown node name)."""

    exit_code = 2


class LaunchError(TopoError):
    """A run could not start or had to be abandoned (not ready by the deadline, a crash)."""

    exit_code = 1
