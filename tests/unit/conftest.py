"""Helpers shared by the unit tests: write a topology to a file, get its problems or plan.

YAML in tests is written as an indented triple-quoted string and dedented, so the LINE
and COL a test expects are those of the dedented text (line 1 is the first line after
the opening quotes' backslash).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from topo.errors import InvalidTopology, Problem
from topo.file.model import Topology
from topo.plan.planner import Plan, make_plan
from topo.file.validate import load

FILE_NAME = "topo.yaml"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / FILE_NAME
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    """The errors of a file (its warnings are :func:`warnings_of`'s)."""
    try:
        load(str(path), strict=False)
    except InvalidTopology as err:
        assert err.errors, "InvalidTopology raised without an error"
        return err.errors
    return []


def warnings_of(path: Path) -> list[Problem]:
    """The warnings of a file, valid or not, as ``topo check --lenient`` prints them (a
    socket with no link among them)."""
    try:
        return list(load(str(path), strict=False, lenient=True).warnings)
    except InvalidTopology as err:
        return err.warnings


@pytest.fixture
def problems(tmp_path: Path) -> Callable[[str | bytes], list[Problem]]:
    """``problems(yaml_text)``: every error ``topo check`` would print, in order."""

    def check(text: str | bytes) -> list[Problem]:
        path = write(tmp_path, text)
        found = problems_of(path)
        for p in found:
            assert p.pos.file == str(path)
        return found

    return check


@pytest.fixture
def warnings(tmp_path: Path) -> Callable[[str | bytes], list[Problem]]:
    """``warnings(yaml_text)``: every warning ``topo check`` would print, in order."""

    def check(text: str | bytes) -> list[Problem]:
        path = write(tmp_path, text)
        found = warnings_of(path)
        for p in found:
            assert p.pos.file == str(path) and p.is_warning
        return found

    return check


@pytest.fixture
def problem(problems: Callable[[str | bytes], list[Problem]]) -> Callable[[str | bytes], Problem]:
    """``problem(yaml_text)``: the one problem of a file that breaks exactly one rule."""

    def one(text: str | bytes) -> Problem:
        found = problems(text)
        assert len(found) == 1, "expected exactly one problem, got:\n" + "\n".join(map(str, found))
        return found[0]

    return one


@pytest.fixture
def topology(tmp_path: Path) -> Callable[[str], Topology]:
    """``topology(yaml_text)``: the loaded topology of a valid file."""

    def loaded(text: str) -> Topology:
        path = write(tmp_path, text)
        try:
            return load(str(path))
        except InvalidTopology as err:
            pytest.fail(f"expected a valid topology, got:\n{err}")

    return loaded


@pytest.fixture
def plan(topology: Callable[[str], Topology]) -> Callable[[str], Plan]:
    """``plan(yaml_text)``: the plan of a valid file."""

    def planned(text: str) -> Plan:
        return make_plan(topology(text))

    return planned

