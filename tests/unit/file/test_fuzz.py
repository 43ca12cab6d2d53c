"""Property tests: whatever the input, the core answers with a topology or with located
problems, never with an exception; whatever passes validation can be planned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topo.errors import InvalidTopology, Problem
from topo.file.loader import load_text, read_file
from topo.file.model import Topology
from topo.file.placement import natural_transport, place
from topo.plan.planner import MAX_IPC_NAME, make_plan
from topo.file.validate import load, validate

from ..helpers import VALID_DOC, dump, mutated_docs

FRAGMENTS = [
    "topology:", " t", " weather", "nodes:", "hosts:", "links:", "defaults:", "x-a:",
    "  ", "    ", "\n", "\n", "\n", "\t", "- ", ": ", ":", ",", "{", "}", "[", "]", "'", '"',
    "#", "&a ", "*a", "&b ", "*b", "<<: ", "!!binary ", "!!str ", "!custom ", "!!python/object ",
    "---\n", "...\n", "? ", "|\n", ">\n", "%YAML 1.1\n", "a:", "b:", "run: m:f", "run:",
    "sockets:", "out: PUSH", "in: PULL", "type: SUB", "subscribe: [x]", "bind: true",
    "replicas: 2", "replicas: 0", "replicas: 1e999", "restart: no", "process: p",
    "host: edge", "address: 10.0.0.2", "a.out -> b.in", "b.in -> a.out", "from: a.out",
    "to: b.in", "transport: ipc", "transport: inproc", "~", "null", "yes", "2024-01-01",
    ".nan", "-.inf", "0x1F", "1_000", "\x00", "\x85", "\u2028", "\ufeff", "é", "\\",
]

yamlish = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)


def assert_located(problems: list[Problem]) -> None:
    for p in problems:
        assert isinstance(p, Problem)
        assert p.pos.line >= 1 and p.pos.col >= 1, p
        assert p.message


def check_text(text: str) -> Topology | None:
    """What ``topo check`` does with a text: a valid topology or located problems."""
    topology, problems = load_text(text, "f.yaml")
    assert_located(problems)
    if topology is None:
        assert problems
        return None
    problems = problems + validate(topology)
    assert_located(problems)
    return topology if not problems else None


def plan_ok(topology: Topology) -> None:
    plan = make_plan(topology)
    json.dumps(plan.to_json())
    placed = {p.name: p for ps in place(topology).values() for p in ps}
    for link in plan.links:
        src = placed[link.src_instance.rsplit(".", 1)[0]]
        dst = placed[link.dst_instance.rsplit(".", 1)[0]]
        assert link.transport.rank >= natural_transport(src, dst).rank
        assert link.bind in (link.src, link.dst)
        if link.transport.value == "ipc":
            assert len(link.endpoint.rsplit("/", 1)[1].encode()) <= MAX_IPC_NAME


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text):
    check_text(text)


@settings(max_examples=300, deadline=None)
@given(yamlish)
def test_yaml_like_text_never_raises(text):
    check_text(text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "topo.yaml"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), yamlish.map(lambda s: s.encode("utf-8", "surrogatepass")),
                 st.builds(lambda a, b: a + b, st.just(dump(VALID_DOC).encode()), st.binary(max_size=8))))
def test_arbitrary_bytes_in_a_file_never_raise(scratch, data):
    scratch.write_bytes(data)
    topology, problems = read_file(str(scratch))
    assert_located(problems)
    assert topology is not None or problems
    try:
        load(str(scratch))
    except InvalidTopology as err:
        assert err.problems
        assert_located(list(err.problems))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_docs())
def test_mutations_of_a_valid_topology_are_planned_or_reported(doc):
    topology = check_text(dump(doc))
    if topology is not None:
        plan_ok(topology)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_docs(), st.data())
def test_line_level_mutations_are_planned_or_reported(doc, data):
    """Edits a YAML file by lines: duplicated, dropped, swapped, re-indented lines."""
    lines = dump(doc).splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(0, len(lines) - 1))
        kind = data.draw(st.sampled_from(["duplicate", "drop", "swap", "indent", "dedent"]))
        if kind == "duplicate":
            lines.insert(j, lines[i])
        elif kind == "drop":
            del lines[i]
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        else:
            lines[i] = lines[i].removeprefix("  ")
    topology = check_text("\n".join(lines) + "\n")
    if topology is not None:
        plan_ok(topology)


def test_the_unmutated_document_plans():
    topology = check_text(dump(VALID_DOC))
    assert topology is not None
    plan_ok(topology)
