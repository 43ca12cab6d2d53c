"""Plain helpers and hypothesis strategies shared by several unit test modules."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import strategies as st

from topo.errors import Problem


def at(p: Problem) -> tuple[int, int]:
    """(LINE, COL) of a problem, to compare with one tuple."""
    return (p.pos.line, p.pos.col)


#: A valid topology that uses most of the format: hosts, defaults, replicas, a shared
#: process, long-form sockets with options, subscribe and bind, both link forms.
VALID_DOC: dict[str, Any] = {
    "topology": "demo",
    "x-note": {"free": ["for", "anchors"]},
    "hosts": {
        "local": {"address": "127.0.0.1"},
        "edge": {"address": "10.0.0.2", "launch": ["ssh", "edge"], "python": "python3"},
    },
    "defaults": {"restart": "on-failure", "env": {"LOG_LEVEL": "info"}},
    "nodes": {
        "source": {
            "run": "demo.nodes:source",
            "args": {"count": 3, "topics": ["a", "b"]},
            "sockets": {"tasks": "PUSH", "news": "PUB"},
        },
        "worker": {
            "run": "demo.nodes:worker",
            "replicas": 2,
            "sockets": {"tasks": "PULL", "results": {"type": "PUSH", "options": {"sndhwm": 100}}},
        },
        "sink": {
            "run": "demo.nodes:sink",
            "process": "back",
            "on_exit": "stop",
            "sockets": {"results": {"type": "PULL", "bind": True}},
        },
        "reader": {
            "run": "demo.nodes:reader",
            "host": "edge",
            "restart": "no",
            "env": {"LOG_LEVEL": "debug", "RETRIES": 3},
            "sockets": {"news": {"type": "SUB", "subscribe": ["a", ""]}},
        },
    },
    "links": [
        "source.tasks -> worker.tasks",
        "worker.results -> sink.results",
        {"from": "source.news", "to": "reader.news", "transport": "tcp"},
    ],
}


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# -- mutations of a valid document ------------------------------------------------------

NAMES = ["source", "worker", "sink", "reader", "tasks", "results", "news", "local", "edge",
         "back", "ghost", "w", "Node", "my.node", "1st", "x-tra", "no", ""]
KEYS = ["topology", "hosts", "defaults", "nodes", "links", "run", "process", "host",
        "replicas", "args", "env", "restart", "on_exit", "sockets", "type", "subscribe",
        "bind", "options", "address", "launch", "python", "from", "to", "transport",
        "sndhwm", "linger", "proces", "sndhmw", "adress", "x-extra", "x", "<<"]
WORDS = ["PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "REQ", "REP", "DEALER", "ROUTER",
         "PAIR", "pub", "no", "on-failure", "always", "never", "continue", "stop",
         "inproc", "ipc", "tcp", "udp", "m:f", "demo.nodes:sink", "m.f", "127.0.0.1",
         "source.tasks", "worker.tasks", "sink.results", "reader.news", "a.b",
         "worker.results -> sink.results", "sink.results -> worker.results",
         "source.tasks -> ghost.in", "source.news -> reader.news", "source.news->reader.news"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=4),
    st.integers(),
    st.sampled_from([0.0, 1.0, 2.0, 2.5, -1.0, 1e300]),
    st.floats(),
    st.sampled_from(WORDS + NAMES),
    st.text(max_size=10),
)
keys = st.one_of(st.sampled_from(KEYS + NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


def all_paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += all_paths(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += all_paths(v, path + (i,))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutation(draw: st.DrawFn, doc: Any) -> Any:
    """One change to ``doc`` (in place, and returned): the kinds of mistake people make."""
    path = draw(st.sampled_from(all_paths(doc)))
    target = _get(doc, path)
    parent = _get(doc, path[:-1]) if path else None
    kind = draw(st.sampled_from(["delete", "retype", "insert", "rename", "swap", "duplicate"]))
    if kind == "delete" and parent is not None:
        del parent[path[-1]]
    elif kind == "retype":
        new = draw(values)
        if parent is None:
            return new
        parent[path[-1]] = new
    elif kind == "insert" and isinstance(target, dict):
        target[draw(keys)] = draw(values)
    elif kind == "insert" and isinstance(target, list):
        target.insert(draw(st.integers(0, len(target))), draw(values))
    elif kind == "rename" and isinstance(parent, dict):
        new_key = draw(keys)
        items = [(new_key if k == path[-1] else k, v) for k, v in parent.items() if k != new_key or k == path[-1]]
        parent.clear()
        parent.update(items)
    elif kind == "swap" and isinstance(target, (dict, list)) and len(target) >= 2:
        ks = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
        a, b = draw(st.sampled_from(ks)), draw(st.sampled_from(ks))
        target[a], target[b] = target[b], target[a]
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(target))
    elif kind == "duplicate" and isinstance(parent, dict):
        parent[draw(st.sampled_from(NAMES))] = copy.deepcopy(target)
    return doc


@st.composite
def mutated_docs(draw: st.DrawFn) -> Any:
    """``VALID_DOC`` after one to three mutations."""
    doc: Any = copy.deepcopy(VALID_DOC)
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(mutation(doc))
    return doc
