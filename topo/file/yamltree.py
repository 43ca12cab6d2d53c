"""YAML text → the node tree that :mod:`topo.file.structure` checks, the same on every PyYAML.

Every node keeps its line and column, so problems found later can point into the file.
Before the tree is handed on, this module does what PyYAML would otherwise do, or do
differently from one release to the next:

- ``<<`` merge keys are applied here, not by ``SafeConstructor.flatten_mapping``:
  PyYAML 6.0.4 rewrote that method (against a merge bomb) and since then a list of
  mappings gives the *last* mapping's value for a key, where the YAML merge-key type
  says the first one wins. Applying merges here keeps one meaning on PyYAML 6.0 to 6.0.4.
- Nesting is bounded by :data:`MAX_DEPTH` levels, counted through aliases and merges.
  The bound is topo's own: PyYAML's pure-Python composer runs out of stack a few hundred
  levels down, the libyaml bundled with PyYAML 6.0.4 refuses past 1000 levels with a
  scanner error, and older wheels read any depth. A file deeper than the bound is one
  problem at the first value past it, whichever of these paths read the file.
- Duplicate keys are reported (YAML would silently keep the last one).
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from topo.errors import Pos, Problem
from topo.file.interpolate import Interpolator, mask
from topo.file.structure import pos_of
from topo.file.yamlerrors import explain

#: How a duplicate key's problem starts (:mod:`topo.file.cascade` looks for it).
DUPLICATE = "duplicate key "
#: How many mappings and lists may hold one another. A topology needs a handful;
#: the checker after this module recurses once per level and must stay far from
#: Python's recursion limit.
MAX_DEPTH = 200

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_STR = "tag:yaml.org,2002:str"
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _TooDeep(Exception):
    def __init__(self, pos: Pos) -> None:
        super().__init__(pos)
        self.pos = pos


def too_deep(pos: Pos) -> Problem:
    """The one wording of the problem, wherever the depth was found."""
    return Problem(pos, f"the file is nested too deep to read (more than {MAX_DEPTH} levels of mappings and lists)")


def compose(
    text: str, file: str, problems: list[Problem], values: Mapping[str, str] | None = None, unread: set[int] | None = None,
) -> yaml.Node | None:
    """The document's root node with merges applied, or None: empty, or its problem added.

    A problem that stops reading (syntax, depth) is the only one added; duplicate keys,
    bad merges and variables that have no value are added and the tree is returned all
    the same, so that the checker can report the rest of the file's mistakes in the same
    run. With ``values``, ``${VAR}`` in values is substituted (:mod:`topo.file.interpolate`)
    before merges, so a merged value is the substituted one; the scalars whose variables
    have no value are added to ``unread``, so that no later problem is told about them.
    """
    written = text
    if values is not None:
        text = mask(text)  # same length, line for line: every position stays right
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (RecursionError, yaml.YAMLError) as err:
        # Past its own limit PyYAML fails with a RecursionError (pure Python) or a
        # scanner error (the libyaml in 6.0.4's wheels): find the first value past ours.
        deep = _first_too_deep(text, file)
        if deep is not None:
            problems.append(too_deep(deep))
        else:
            problems.append(_yaml_problem(err, file, written))
        return None
    if root is None:
        return None
    if values is not None:
        interpolator = Interpolator(written, file, values, problems)
        interpolator.run(root)
        if unread is not None:
            unread.update(interpolator.failed)
    tree = _Tree(file, problems)
    try:
        tree.walk(root, 1)
    except _TooDeep as err:
        problems.append(too_deep(err.pos))
        return None
    return root


def _yaml_problem(err: BaseException, file: str, text: str) -> Problem:
    if isinstance(err, yaml.MarkedYAMLError):
        return explain(err, text, file)
    if isinstance(err, RecursionError):
        return too_deep(Pos(file, 1, 1))
    return Problem(Pos(file, 1, 1), f"YAML error: {err}")


def _first_too_deep(text: str, file: str) -> Pos | None:
    """Where the text first opens a level past :data:`MAX_DEPTH`, read as a flat stream
    of events (no recursion, so it works where composing ran out of stack); None if it
    never does before the end or before a syntax error."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, _OPENS):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)
            elif isinstance(event, _CLOSES):
                depth -= 1
    except (yaml.YAMLError, RecursionError):
        pass
    return None


class _Tree:
    """One walk over one composed document: merges, duplicates, depth."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        #: Levels below and including each collection already walked. A node reached
        #: again through an alias is not walked again, its height is added instead.
        self._height: dict[int, int] = {}
        self._walking: set[int] = set()
        self._merged: set[int] = set()
        self._merging: set[int] = set()

    def walk(self, node: yaml.Node, level: int) -> int:
        """Prepares ``node``, found at ``level`` (the root is 1); returns its height.

        Raises _TooDeep at the first value whose level passes MAX_DEPTH. Recursion is
        at most MAX_DEPTH deep: a fresh node past it stops the walk before its children.
        """
        if isinstance(node, yaml.ScalarNode):
            return 0
        known = self._height.get(id(node))
        if known is not None:
            return known
        if id(node) in self._walking:
            return 0  # an alias inside its own anchor: the checker reports it
        if level > MAX_DEPTH:
            raise _TooDeep(pos_of(self.file, node))
        self._walking.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self.merge(node, level)
            pairs = node.value
        else:
            pairs = [(node, item) for item in node.value]
        height = 0
        for where, child in pairs:
            # Scalars are skipped here rather than in a call: this loop runs for every value.
            if where is not node and not isinstance(where, yaml.ScalarNode):
                height = max(height, self._child(where, where, level))  # a mapping as a key
            if not isinstance(child, yaml.ScalarNode):
                height = max(height, self._child(child, where, level))
        self._walking.discard(id(node))
        self._height[id(node)] = height + 1
        return height + 1

    def _child(self, child: yaml.Node, where: yaml.Node, level: int) -> int:
        """Walks a child of a node at ``level``; ``where`` is the key or list holding it."""
        below = self.walk(child, level + 1)
        if level + below > MAX_DEPTH:
            # Only a node reached again through an alias gets here: say where the alias
            # is used (its key, or the list holding it), not at the anchor.
            raise _TooDeep(pos_of(self.file, where))
        return below

    def merge(self, node: yaml.MappingNode, level: int) -> None:
        """Applies the mapping's ``<<`` keys once, as the YAML merge-key type says.

        Keys written in the mapping win over merged ones; of a list of mappings the
        first that has a key wins; a merged mapping's own merges are applied first.
        One pair is kept per key, so merges of merges cannot multiply a mapping's size
        (a "merge bomb"). Duplicate keys are looked for before merging: a merged key
        is no duplicate.
        """
        if id(node) in self._merged:
            return
        if level > MAX_DEPTH:
            raise _TooDeep(pos_of(self.file, node))
        self._merging.add(id(node))
        own: list[tuple[yaml.Node, yaml.Node]] = []
        sources: list[yaml.MappingNode] = []
        for key, value in node.value:
            if key.tag == _MERGE:
                sources.extend(self._sources(value))
            else:
                if key.tag == _VALUE:
                    key.tag = _STR  # a plain `=` key: PyYAML's flatten_mapping reads it as text
                own.append((key, value))
        self._report_duplicates(own)
        taken = {_ident(key) for key, _ in own}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if id(source) in self._merging:
                self.problems.append(Problem(pos_of(self.file, source), "`<<:` merges a mapping into itself"))
                continue
            self.merge(source, level + 1)
            for key, value in source.value:
                ident = _ident(key)
                if ident is None or ident not in taken:
                    taken.add(ident)
                    merged.append((key, value))
        node.value = merged + own
        self._merging.discard(id(node))
        self._merged.add(id(node))

    def _sources(self, value: yaml.Node) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` value names; anything else is a located problem."""
        if isinstance(value, yaml.MappingNode):
            return [value]
        if isinstance(value, yaml.SequenceNode):
            out = []
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    out.append(item)
                else:
                    self.problems.append(Problem(pos_of(self.file, item), f"`<<:` expects mappings for merging, found {_what(item)} in the list"))
            return out
        self.problems.append(Problem(pos_of(self.file, value), f"`<<:` expects a mapping or a list of mappings for merging, found {_what(value)}"))
        return []

    def _report_duplicates(self, pairs: list[tuple[yaml.Node, yaml.Node]]) -> None:
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in pairs:
            ident = _ident(key)
            if ident is None:
                continue
            if ident in first:
                line = first[ident].start_mark.line + 1
                self.problems.append(Problem(pos_of(self.file, key), f"{DUPLICATE}{key.value!r} (first written on line {line})"))
            else:
                first[ident] = key


def _ident(key: yaml.Node) -> tuple[str, str] | None:
    """What makes two keys the same key; None for a mapping or list used as a key (the
    checker refuses those)."""
    return (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else None


def _what(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
