"""Where a run's topology comes from: a file, overlay files, ``--set`` values, profiles.

``topo up a.yaml -f b.yaml --set sender.replicas=4 --profile debug`` names one topology
in four parts; this module reads them into one composed tree (each file composed and
``${VAR}``-substituted on its own, so every position stays its file's; then merged, set
and filtered by :mod:`topo.file.layers`) and hands that tree to the loader, so that what
runs, what ``topo check`` checks and what ``topo config`` prints are the same thing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import yaml

from topo.errors import Pos, Problem, UsageError
from topo.file.interpolate import variables
from topo.file.layers import SET_ORIGIN, Merged, clean, has_tags, merge, node_names, relocate, select, set_layer
from topo.file.loader import decode, from_tree, read_bounded
from topo.file.model import Topology
from topo.file.structure import pos_of
from topo.file.yamltree import compose

#: The environment variable that selects profiles when no ``--profile`` does (as
#: ``COMPOSE_PROFILES`` does for docker compose): names separated by commas.
PROFILES_ENV = "TOPO_PROFILES"
#: Where a problem with a profile given on the command line points.
PROFILE_ORIGIN = "--profile"


@dataclass(frozen=True)
class Sources:
    """A topology as the command line names it.

    ``files``: the topology file, then overlays merged over it in order. ``sets``:
    ``NODE.KEY=VALUE`` values applied after every file. ``profiles``: the selected
    profiles, each with where it was asked for (see :func:`profiles_from`).
    """

    files: tuple[str, ...]
    sets: tuple[str, ...] = ()
    profiles: tuple[tuple[str, Pos], ...] = ()

    def __post_init__(self) -> None:
        if not self.files:
            raise UsageError("no topology file: name one (topo up FILE), or several with -f FILE")

    @property
    def file(self) -> str:
        return self.files[0]

    def describe(self) -> str:
        """How a user would name it again: ``a.yaml -f b.yaml --set x.replicas=2``."""
        parts = [self.files[0], *(f"-f {f}" for f in self.files[1:]), *(f"--set {s}" for s in self.sets)]
        parts.extend(f"--profile {name}" for name, _ in self.profiles)
        return " ".join(parts)


def profiles_from(names: Sequence[str], environ: Mapping[str, str] | None = None) -> tuple[tuple[str, Pos], ...]:
    """The profiles of ``--profile NAME`` options, or when there are none of
    :data:`PROFILES_ENV` (``a,b``), each located where it was written."""
    if names:
        return tuple((name, Pos(PROFILE_ORIGIN, i, 1)) for i, name in enumerate(names, 1))
    text = (os.environ if environ is None else environ).get(PROFILES_ENV, "")
    out: list[tuple[str, Pos]] = []
    col = 1
    for part in text.split(","):
        name = part.strip()
        if name:
            out.append((name, Pos(PROFILES_ENV, 1, col + len(part) - len(part.lstrip()))))
        col += len(part) + 1
    return tuple(out)


@dataclass(frozen=True)
class Resolved:
    """The model, and the plain values it was read from (``topo config`` prints them)."""

    topology: Topology | None
    data: Any
    problems: list[Problem]
    #: Each file's text as read (and each ``--set`` argument, under its origin's name): the
    #: lines problems are shown with (:func:`topo.file.diagnostics.with_excerpts`).
    texts: dict[str, str] = field(default_factory=dict)


def read(sources: Sources, environ: Mapping[str, str] | None = None) -> Resolved:
    """Every part read and merged: the model (None when the tree could not be built) and
    every problem found on the way; relational rules are :mod:`topo.file.validate`'s.

    ``${VAR}`` reads the environment over the ``.env`` next to the first file, for every
    file (as compose reads the project directory's).
    """
    problems: list[Problem] = []
    values = variables(sources.file, problems, environ)
    unread: set[int] = set()
    merged: Merged | None = None
    root: yaml.Node | None = None
    texts: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for i, file in enumerate(sources.files):
        text = _text(file, problems)
        if text is None:
            continue
        texts.setdefault(file, text)
        layer = compose(text, file, problems, values, unread)
        if layer is None:
            continue  # an empty overlay changes nothing; an empty first file is said below
        if i == 0:
            if has_tags(text):
                clean(layer)  # an overlay's tags are merge's to read
            root = layer
            if isinstance(layer, yaml.MappingNode):
                merged = Merged(layer)
            continue
        relocate(layer, file)
        if not isinstance(layer, yaml.MappingNode):
            problems.append(Problem(pos_of(file, layer), "an overlay must be a mapping of the keys it changes, not a list or a value"))
        elif merged is not None:
            merge(merged, layer)
    if sources.sets:
        texts[SET_ORIGIN] = "\n".join(sources.sets)  # line N: the N-th --set, as problems name it
    if merged is not None:
        for index, arg in enumerate(sources.sets, 1):
            overlay = set_layer(arg, index, node_names(merged.root), problems)
            if overlay is not None:
                merge(merged, overlay)
        root = merged.root
        dropped = select(root, sources.profiles, merged.removed, problems)
    topology, data = from_tree(root, sources.file, problems, unread, layers=[*sources.files[1:], SET_ORIGIN])
    if topology is not None and len(sources.files) > 1:
        topology = replace(topology, overlays=tuple(sources.files[1:]))
    if topology is not None and dropped:
        topology = replace(topology, unlinked_by=dropped)
    return Resolved(topology, data, problems, texts)


def _text(file: str, problems: list[Problem]) -> str | None:
    text, problem = decode(read_bounded(file), file)
    if problem is not None:
        problems.append(problem)
    return text


class _Dumper(yaml.SafeDumper):
    """No ``&id001`` anchors: the same value in two places is written twice, as the
    user wrote it (or merged it)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: Any) -> str:
    """The resolved topology as YAML, keys in the order they were written (``topo config``)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
