"""Overlay files, ``--set`` and profiles: one topology varied without copying it.

Everything here works on composed YAML nodes (:mod:`topo.file.yamltree`), before the
checker sees them, so the checker and the loader keep working on one tree whose every
node still knows where it was written. A node that came from an overlay or a ``--set``
carries its own mark (:func:`relocate`), and the checker names that mark's file in its
problems (:class:`topo.file.structure.Checker`'s ``layers``).

Merging follows docker compose: mappings are merged key by key, recursively, the later
layer winning; any other value is replaced, except the top-level ``links:`` list, whose
overlay items are appended (an item already there is not added twice). ``!reset`` on a
value removes the key (``nodes: {debugger: !reset null}`` removes a node and its links);
``!override`` replaces a value whole, without merging or appending.

Profiles: a node with ``profiles:`` runs only when one of them is selected; links that
name a node left out (by its profiles or a ``!reset``) are dropped, the other links of
the same sockets stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence, cast

import yaml

from topo.errors import Pos, Problem
from topo.file.structure import did_you_mean
from topo.file.yamltree import MAX_DEPTH, compose

RESET = "!reset"
OVERRIDE = "!override"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_SHORT_LINK = re.compile(r"^\s*([\w-]+)\.[\w-]+\s*->\s*([\w-]+)\.[\w-]+\s*$")
_RESOLVER = yaml.resolver.Resolver()


@dataclass
class Merged:
    """The tree being built, layer by layer, and the nodes a ``!reset`` removed."""

    root: yaml.MappingNode
    removed: set[str] = field(default_factory=set)


def relocate(root: yaml.Node, file: str) -> None:
    """Gives every node of an overlay's tree a mark naming ``file`` (PyYAML's marks do
    not say which file, and libyaml's cannot be changed), so that a problem with a value
    the overlay wrote points into the overlay."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        node.start_mark = _mark(file, node.start_mark)
        node.end_mark = _mark(file, node.end_mark)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)


def _mark(file: str, mark: Any, line: int | None = None, column: int | None = None) -> yaml.Mark:
    return _new_mark(file, mark.line if line is None else line, mark.column if column is None else column)


def _new_mark(file: str, line: int, column: int) -> yaml.Mark:
    """A mark (0-based line and column, as PyYAML's) without the text it points into."""
    return yaml.Mark(file, 0, line, column, None, 0)


def has_tags(text: str) -> bool:
    """Whether a file's text may hold ``!reset`` or ``!override``: when not, its tree
    needs no :func:`clean` (a walk over a large file saved)."""
    return RESET in text or OVERRIDE in text


def clean(node: yaml.Node) -> None:
    """A layer's own ``!reset`` keys removed and ``!override`` tags undone, in place:
    what is left is a tree the checker reads. In the first file ``!reset`` removes
    nothing earlier, only its own key."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            node.value = [(k, _untag(v)) for k, v in node.value if v.tag != RESET]
            todo.extend(v for _, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)


def _untag(node: yaml.Node) -> yaml.Node:
    """An ``!override`` value as if written without the tag."""
    if node.tag != OVERRIDE:
        return node
    if isinstance(node, yaml.MappingNode):
        node.tag = _MAP
    elif isinstance(node, yaml.SequenceNode):
        node.tag = _SEQ
    elif isinstance(node, yaml.ScalarNode):
        plain = not node.style
        node.tag = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False)) if plain else _STR  # type: ignore[no-untyped-call]
    return node


def merge(into: Merged, overlay: yaml.MappingNode) -> None:
    """Merges a later layer into the tree (see the module's docstring for the rules)."""
    into.root = _merge_mapping(into.root, overlay, (), into.removed)


def _merge_mapping(base: yaml.MappingNode, overlay: yaml.MappingNode, path: tuple[str, ...],
                   removed: set[str]) -> yaml.MappingNode:
    """A new mapping: ``base`` with ``overlay`` merged in. ``base`` is copied, not
    changed: an alias elsewhere in its file may name the same node, and must not change."""
    pairs: dict[object, tuple[yaml.Node, yaml.Node]] = {_ident(k): (k, v) for k, v in base.value}
    for key, value in overlay.value:
        ident = _ident(key)
        old = pairs.get(ident)
        if value.tag == RESET:
            pairs.pop(ident, None)
            if path == ("nodes",) and isinstance(key, yaml.ScalarNode):
                removed.add(key.value)
            continue
        if value.tag == OVERRIDE:
            clean(value)
            new, key_node = _untag(value), key
        elif old is not None and isinstance(old[1], yaml.MappingNode) and isinstance(value, yaml.MappingNode) \
                and old[1].tag == _MAP and value.tag == _MAP:
            new, key_node = _merge_mapping(old[1], value, (*path, str(key.value)), removed), old[0]
        elif old is not None and path == () and key.value == "links" \
                and isinstance(old[1], yaml.SequenceNode) and isinstance(value, yaml.SequenceNode):
            clean(value)
            new, key_node = _append(old[1], value), old[0]
        else:
            clean(value)
            new, key_node = value, key
        pairs[ident] = (key_node, new)
    return yaml.MappingNode(base.tag, list(pairs.values()), base.start_mark, base.end_mark, base.flow_style)


def _append(base: yaml.SequenceNode, overlay: yaml.SequenceNode) -> yaml.SequenceNode:
    """``links:`` of both layers: the overlay's items after the base's, none twice."""
    have = {_canonical(item) for item in base.value}
    items = list(base.value)
    for item in overlay.value:
        text = _canonical(item)
        if text not in have:
            have.add(text)
            items.append(item)
    return yaml.SequenceNode(base.tag, items, base.start_mark, base.end_mark, base.flow_style)


def _canonical(node: yaml.Node) -> object:
    """What makes two links the same link: the same text, spaces aside."""
    if isinstance(node, yaml.ScalarNode):
        return re.sub(r"\s+", "", str(node.value))
    if isinstance(node, yaml.MappingNode):
        return tuple(sorted((str(_canonical(k)), str(_canonical(v))) for k, v in node.value))
    if isinstance(node, yaml.SequenceNode):
        return tuple(str(_canonical(item)) for item in node.value)
    return id(node)


def _ident(key: yaml.Node) -> object:
    """The same key in two layers: its text (after ``${VAR}``, a key's tag is what it
    reads as); a mapping or list as a key (which the checker refuses) stays apart."""
    return str(key.value) if isinstance(key, yaml.ScalarNode) else object()


# -- --set ---------------------------------------------------------------------------

#: The file name problems caused by a ``--set`` value point at: ``--set:N:COL`` is the
#: N-th ``--set``, COL a column inside its argument.
SET_ORIGIN = "--set"


def set_layer(arg: str, index: int, nodes: Iterable[str], problems: list[Problem]) -> yaml.MappingNode | None:
    """``NODE.KEY...=VALUE`` as a one-value overlay of ``nodes:``: its value read as YAML
    (``4`` an integer, ``true`` a boolean, ``'x'`` a string, ``[a, b]`` a list), each part
    marked at its column in the argument. None, and a problem, when it cannot be one."""
    def at(col: int) -> Pos:
        return Pos(SET_ORIGIN, index, col + 1)

    path, eq, text = arg.partition("=")
    if not eq:
        problems.append(Problem(at(0), f"--set {arg!r}: expected NODE.KEY=VALUE (such as sender.args.count=5)"))
        return None
    parts = path.split(".")
    offsets = [0]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part) + 1)
    for part, offset in zip(parts, offsets):
        if not part.strip():
            problems.append(Problem(at(offset), f"--set {arg!r}: an empty name in {path!r} (expected NODE.KEY=VALUE)"))
            return None
    if len(parts) > MAX_DEPTH // 2:
        problems.append(Problem(at(0), f"--set: a path of {len(parts)} keys is deeper than a topology goes"))
        return None
    names = list(nodes)
    if parts[0] not in names:
        problems.append(Problem(at(0), f"--set {arg!r}: no node {parts[0]!r} in the topology{did_you_mean(parts[0], names)}"))
        return None
    value = _set_value(text, at(len(path) + 1), problems)
    if value is None:
        return None
    if len(parts) < 2 and value.tag != RESET:
        problems.append(Problem(at(len(path)), f"--set {arg!r}: a key of the node is needed (NODE.KEY=VALUE, such as "
                                               f"{parts[0]}.replicas=2; NODE=!reset removes the node)"))
        return None
    for part, offset in reversed(list(zip(parts, offsets))):
        mark = _new_mark(SET_ORIGIN, index - 1, offset)
        key = yaml.ScalarNode(_STR, part, mark, mark)
        value = yaml.MappingNode(_MAP, [(key, value)], mark, mark)
    mark = _new_mark(SET_ORIGIN, index - 1, 0)
    return yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, "nodes", mark, mark), value)], mark, mark)


def _set_value(text: str, where: Pos, problems: list[Problem]) -> yaml.Node | None:
    """The value of a ``--set``, read as a file's values are (:func:`topo.file.yamltree.compose`:
    the same depth bound, duplicate keys, merge keys, no ``${VAR}``) and marked at its
    place in the argument. An empty value is null."""
    found: list[Problem] = []
    node = compose(text, SET_ORIGIN, found) if text.strip() else None
    for problem in found:  # one line: a column in the value is a column in the argument
        problems.append(Problem(replace(where, col=where.col - 1 + problem.pos.col), problem.message))
    if found:
        return None
    if node is None:
        mark = _new_mark(SET_ORIGIN, where.line - 1, where.col - 1)
        return yaml.ScalarNode(_NULL, "", mark, mark)
    seen: set[int] = set()
    todo = [node]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        item.start_mark = _mark(SET_ORIGIN, item.start_mark, where.line - 1, where.col - 1 + item.start_mark.column)
        item.end_mark = item.start_mark
        if isinstance(item, yaml.MappingNode):
            for k, v in item.value:
                todo.extend((k, v))
        elif isinstance(item, yaml.SequenceNode):
            todo.extend(item.value)
    return node


def node_names(root: yaml.Node) -> list[str]:
    """The names under ``nodes:`` of a tree, as far as it has them."""
    nodes = _value(root, "nodes")
    if not isinstance(nodes, yaml.MappingNode):
        return []
    return [str(k.value) for k, _ in nodes.value if isinstance(k, yaml.ScalarNode)]


def _value(mapping: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return cast(yaml.Node, v)
    return None


# -- profiles ------------------------------------------------------------------------

def select(root: yaml.Node, chosen: Sequence[tuple[str, Pos]], removed: Iterable[str],
           problems: list[Problem]) -> dict[str, str]:
    """Leaves out the nodes whose ``profiles:`` are none of ``chosen`` (each profile
    with where it was asked for), and every link that names a node left out, by its
    profiles or by a ``!reset`` (``removed``). ``*`` selects every profile. A chosen
    profile that no node has is a problem where it was asked for. Returns, for each socket
    (``node.socket``) a dropped link named, the node left out at its other end."""
    nodes = _value(root, "nodes")
    if not isinstance(nodes, yaml.MappingNode):
        return {}
    names = {name for name, _ in chosen}
    everything = "*" in names
    known: set[str] = set()
    kept: list[tuple[yaml.Node, yaml.Node]] = []
    present = set(node_names(root))
    out = {name for name in removed if name not in present}
    for key, value in nodes.value:
        profiles = _profiles(value)
        known.update(profiles or ())
        if profiles and not everything and not names.intersection(profiles):
            out.add(str(key.value))
        else:
            kept.append((key, value))
    for name, where in chosen:
        if name != "*" and name not in known:
            listed = f" (profiles in the file: {', '.join(sorted(known))})" if known else " (no node has profiles)"
            hint = did_you_mean(name, known)
            problems.append(Problem(where, f"unknown profile {name!r}{hint or listed}"))
    if not out:
        return {}
    nodes.value = kept
    links = _value(root, "links")
    dropped: dict[str, str] = {}
    if isinstance(links, yaml.SequenceNode):
        kept_links = []
        for item in links.value:
            if not _link_nodes(item) & out:
                kept_links.append(item)
                continue
            ends = _link_refs(item)
            for ref, other in ((ends[0], ends[1]), (ends[1], ends[0])) if len(ends) == 2 else ():
                if ref.split(".", 1)[0] not in out:
                    dropped.setdefault(ref, other.split(".", 1)[0])
        links.value = kept_links
    return dropped


def _profiles(node: yaml.Node) -> list[str] | None:
    """A node's profiles, when it has a list of names (anything else is the schema's to
    report, and the node stays)."""
    value = _value(node, "profiles")
    if not isinstance(value, yaml.SequenceNode) or not all(isinstance(v, yaml.ScalarNode) for v in value.value):
        return None
    return [str(v.value) for v in value.value]


def _link_refs(item: yaml.Node) -> list[str]:
    """The two ``node.socket`` ends a link item names, when it names two."""
    if isinstance(item, yaml.ScalarNode):
        parts = str(item.value).split("->")
        return [p.strip() for p in parts] if len(parts) == 2 else []
    ends = (_value(item, "from"), _value(item, "to"))
    return [str(end.value).strip() for end in ends if isinstance(end, yaml.ScalarNode)]


def _link_nodes(item: yaml.Node) -> set[str]:
    """The node names a link item names (short or long form)."""
    if isinstance(item, yaml.ScalarNode):
        m = _SHORT_LINK.match(str(item.value))
        return {m[1], m[2]} if m else set()
    ends = (_value(item, "from"), _value(item, "to"))
    return {str(end.value).split(".", 1)[0] for end in ends if isinstance(end, yaml.ScalarNode)}
