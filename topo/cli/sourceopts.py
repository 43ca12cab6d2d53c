"""How every command that reads a topology names it: ``FILE... [-f FILE]... [--set
NODE.KEY=VALUE]... [--profile NAME]...``, as :class:`topo.file.sources.Sources`.

Kept out of :mod:`topo.cli.main` so that the commands read as what they do; importing it
costs what importing click costs (the sources module is imported when a command runs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click


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
