"""How every command that reads a topology names it (``FILE... [-f FILE]... [--set
NODE.KEY=VALUE]... [--profile NAME]...``, as :class:`topo.file.sources.Sources`), how
strictly it is read (``--strict``, ``--lenient``, ``--no-run-check``), and the reading.

Kept out of :mod:`topo.cli.main` so that the commands read as what they do; importing it
costs what importing click costs (the file package is imported when a command runs).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from topo.file.model import Topology
    from topo.file.sources import Sources
    from topo.plan.planner import Plan


def topology_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """FILE, ``-f`` overlays, ``--set`` and ``--profile``: how every command that reads a
    topology names it (:class:`topo.file.sources.Sources`). Hands the command ``file``."""
    @functools.wraps(command)
    def with_sources(*args: Any, files: tuple[str, ...], overlays: tuple[str, ...], sets: tuple[str, ...],
                     profiles: tuple[str, ...], **kwargs: Any) -> Any:
        from topo.file.sources import Sources, profiles_from

        return command(*args, file=Sources((*files, *overlays), sets, profiles_from(profiles)), **kwargs)

    options = [
        click.argument("files", metavar="FILE...", nargs=-1),
        click.option("-f", "--file", "overlays", multiple=True, metavar="FILE",
                     help="A topology file; several are merged in order, later ones winning "
                          "(after any FILE argument). Repeatable."),
        click.option("--set", "sets", multiple=True, metavar="NODE.KEY=VALUE",
                     help="Set one value of a node after the files are merged (VALUE is YAML: "
                          "4, true, 'text', [a, b]). Repeatable."),
        click.option("--profile", "profiles", multiple=True, metavar="NAME",
                     help="Run the nodes of this profile too (default: $TOPO_PROFILES, "
                          "comma-separated). Repeatable."),
    ]
    for option in reversed(options):
        with_sources = option(with_sources)
    return with_sources


@dataclass(frozen=True)
class Checking:
    """How strictly a command reads its topology. ``strict``: warnings are errors (None:
    ``TOPO_STRICT`` decides). ``lenient``: the errors of a file being edited (a socket
    with no link) are warnings. ``run_check``: every node's ``run:`` is looked up."""

    strict: bool | None = None
    lenient: bool = False
    run_check: bool = True


def checking_options(run_check: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--strict`` and ``--lenient`` (and ``--no-run-check`` where ``run_check``), handed
    to the command as ``checking``: a :class:`Checking`."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_checking(*args: Any, strict: bool, lenient: bool, no_run_check: bool = True, **kwargs: Any) -> Any:
            return command(*args, checking=Checking(strict or None, lenient, run_check and not no_run_check), **kwargs)

        options = [
            click.option("--strict", is_flag=True,
                         help="Make warnings errors (exit 2), as CI should. TOPO_STRICT=1 too."),
            click.option("--lenient", is_flag=True,
                         help="While editing: a socket with no link is a warning, not an error."),
        ]
        if run_check:
            # for a file read where its node code is not (a CI job that lints the YAML
            # alone), and the way around a reference the check gets wrong
            options.append(click.option(
                "--no-run-check", "no_run_check", is_flag=True,
                help="Do not look for each node's run: module and callable on the import path."))
        for option in reversed(options):
            with_checking = option(with_checking)
        return with_checking
    return decorate


@contextmanager
def no_gc() -> Iterator[None]:
    """Loading a file builds many objects that live until the command ends and frees
    almost nothing, so the cyclic collector would only rescan them: off, ~40% of
    ``topo check`` goes away on 10 000 nodes. Back on afterwards (tests run in-process)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(file: Sources, checking: Checking) -> Topology:
    """The checked topology, its warnings printed to stderr; with ``run_check`` every
    local node's ``run:`` resolved too (:mod:`topo.file.runref`), its problems reported
    with the others."""
    with no_gc():
        if checking.run_check:
            from topo.file.runref import load_resolved

            topology = load_resolved(file, strict=checking.strict, lenient=checking.lenient)
        else:
            from topo.file.validate import load as load_file

            topology = load_file(file, strict=checking.strict, lenient=checking.lenient)
    for warning in topology.warnings:
        click.echo(warning.render(), err=True)
    return topology


def plan(file: Sources, checking: Checking) -> Plan:
    from topo.plan.planner import make_plan

    topology = load(file, checking)
    with no_gc():
        return make_plan(topology)


def imports(file: Sources, topology: Topology, timeout: float) -> None:
    """``--import``: :class:`topo.errors.InvalidTopology` with a located problem per node
    whose ``run:`` fails when imported for real (:mod:`topo.cli.importcheck`)."""
    from topo.cli.importcheck import import_problems
    from topo.errors import InvalidTopology
    from topo.file.diagnostics import excerpts_from_files

    problems = import_problems(topology, timeout)
    if problems:
        raise InvalidTopology([*excerpts_from_files(problems, file.files), *topology.warnings])
