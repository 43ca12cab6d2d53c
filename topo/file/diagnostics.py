"""What a check found, made ready to show: severities, ``--strict``, source excerpts.

A file's problems are errors (it cannot be run) or warnings (it can, but probably not as
its author meant). Warnings travel with the checked topology
(:attr:`topo.file.model.Topology.warnings`) so that every command prints them and goes
on; under ``--strict`` (or ``TOPO_STRICT=1``), as a CI job wants, they are errors. Every
problem located in the file gets the line it points at, so that the commands can show it
with a caret under the column, as a compiler does.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Iterable, Mapping

from topo.errors import ERROR, WARNING, InvalidTopology, Pos, Problem, TopoError
from topo.file.loader import read_bounded
from topo.file.model import Topology
from topo.file.yamlerrors import source_lines

#: The environment variable that makes every command strict (``--strict`` wins when given).
STRICT_ENV = "TOPO_STRICT"
_TRUE = frozenset({"1", "true", "yes", "on"})


def strict_default() -> bool:
    """``TOPO_STRICT`` set to 1 (true, yes, on): warnings fail the file."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in _TRUE


def warning(pos: Pos, message: str) -> Problem:
    return Problem(pos, message, WARNING)


def promoted(problem: Problem) -> Problem:
    """A warning as ``--strict`` shows it: an error that says why it is one."""
    if not problem.is_warning:
        return problem
    return replace(problem, severity=ERROR, message=f"{problem.message} [warning, an error with --strict]")


def with_excerpts(problems: Iterable[Problem], texts: Mapping[str, str]) -> list[Problem]:
    """Each problem located in one of the files read (``texts``: each file's text as read)
    with the line it points at; the others as they are."""
    problems = list(problems)
    if not any(p.excerpt is None and p.pos.file in texts for p in problems):
        return problems
    lines: dict[str, list[str]] = {}
    out = []
    for p in problems:
        text = texts.get(p.pos.file) if p.excerpt is None else None
        if text is not None:
            of_file = lines.setdefault(p.pos.file, source_lines(text))
            if 1 <= p.pos.line <= len(of_file):
                p = replace(p, excerpt=of_file[p.pos.line - 1])
        out.append(p)
    return out


def settle(topology: Topology | None, problems: list[Problem], texts: Mapping[str, str],
           strict: bool, lenient: bool = False) -> Topology:
    """The topology with its warnings, or :class:`InvalidTopology` with every problem
    (warnings included, promoted when ``strict``) when there is an error. ``lenient``:
    the errors a file has while it is edited (:attr:`Problem.lenient`) are warnings."""
    if lenient and not strict:  # (--strict wins: both say what CI says)
        problems = [replace(p, severity=WARNING, message=p.message + " [an error without --lenient]")
                    if p.lenient and not p.is_warning else p for p in problems]
    if strict:
        problems = [promoted(p) for p in problems]
    problems = with_excerpts(problems, texts)
    if topology is None or any(not p.is_warning for p in problems):
        raise InvalidTopology(problems)
    return replace(topology, warnings=tuple(sorted(set(problems))))


def read_text(data: bytes) -> str:
    """The file's text for excerpts, whatever its bytes (a non-UTF-8 file shows U+FFFD)."""
    return data.decode("utf-8", "replace")


def excerpts_from_files(problems: list[Problem], paths: Iterable[str]) -> list[Problem]:
    """:func:`with_excerpts` for problems found after the files were read (their ``run:``
    references): the files are read again, and one that cannot be leaves them bare."""
    texts = {}
    for path in paths:
        try:
            texts[path] = read_text(read_bounded(path))
        except TopoError:
            pass
    return with_excerpts(problems, texts)
