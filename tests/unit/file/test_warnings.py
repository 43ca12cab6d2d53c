"""Warnings (the file runs, but likely not as meant), ``strict``, source excerpts, and one
report per mistake where its consequences would bury it."""

from __future__ import annotations

import pytest

from topo.errors import InvalidTopology
from topo.file.validate import load
from topo.plan.planner import make_plan
from topo.plan.planview import check_summary

from ..conftest import write
from ..helpers import at

LONELY = """\
    topology: t
    nodes:
      a:
        run: m:f
        sockets:
          out: PUSH
          spare: PUSH
      b: {run: m:f, sockets: {in: PULL}}
    links:
      - a.out -> b.in
    """


def test_a_file_with_only_warnings_loads_and_plans_with_them(tmp_path):
    t = load(str(write(tmp_path, LONELY)), strict=False, lenient=True)
    [w] = t.warnings
    assert (at(w), w.severity) == ((7, 7), "warning")
    assert w.excerpt == "      spare: PUSH"
    assert w.render().splitlines()[1:] == ["  7 |       spare: PUSH", "    |       ^"]
    # the socket is planned (created in its node), with nothing to bind or connect
    [spare] = [s for s in make_plan(t).instances["a"].sockets if s.name == "spare"]
    assert (spare.binds, spare.connects, spare.peers) == ((), (), ())
    assert check_summary("t.yaml", t) == "t.yaml: ok: topology t (2 nodes, 1 link) (1 warning)"


def test_strict_makes_each_warning_an_error(tmp_path):
    path = str(write(tmp_path, LONELY))
    with pytest.raises(InvalidTopology) as info:
        load(path, strict=True, lenient=True)
    [p] = info.value.problems
    assert not p.is_warning and at(p) == (7, 7)  # --strict wins over --lenient
    assert p.message == "socket a.spare (PUSH) has no link: add one under `links:` or remove the socket"


def test_strict_makes_a_warning_an_error_that_says_so(tmp_path):
    path = str(write(tmp_path, """\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUB}}
          b: {run: m:f, sockets: {in: SUB}}
        links:
          - a.out -> b.in
        """))
    with pytest.raises(InvalidTopology) as info:
        load(path, strict=True)
    assert [p.message for p in info.value.problems if "subscribes to nothing" in p.message][0].endswith(
        " [warning, an error with --strict]")


@pytest.mark.parametrize("value,strict", [("1", True), ("true", True), ("0", False), ("", False)])
def test_topo_strict_decides_when_strict_is_not_given(tmp_path, monkeypatch, value, strict):
    path = str(write(tmp_path, LONELY))
    monkeypatch.setenv("TOPO_STRICT", value)
    if strict:
        with pytest.raises(InvalidTopology):
            load(path, lenient=True)
    else:
        assert len(load(path, lenient=True).warnings) == 1
    assert len(load(path, strict=False, lenient=True).warnings) == 1  # given, it wins over the variable


def test_errors_are_reported_with_the_warnings_in_file_order(tmp_path):
    path = str(write(tmp_path, LONELY.replace("b: {run: m:f,", "b: {run: m:f, replicas: 0,")))
    with pytest.raises(InvalidTopology) as info:
        load(path, strict=False, lenient=True)
    err = info.value
    assert [(at(p), p.severity) for p in err.problems] == [((7, 7), "warning"), ((8, 27), "error")]
    assert [at(p) for p in err.errors] == [(8, 27)] and [at(p) for p in err.warnings] == [(7, 7)]
    assert err.format_message().splitlines() == [
        f"{path}:7:7: warning: socket a.spare (PUSH) has no link: add one under `links:` or remove the socket [an error without --lenient]",
        "  7 |       spare: PUSH",
        "    |       ^",
        f"{path}:8:27: nodes.b.replicas must be at least 1; got 0",
        "  8 |   b: {run: m:f, replicas: 0, sockets: {in: PULL}}",
        "    |                           ^",
    ]


SUB_FILE = """\
    topology: t
    nodes:
      p: {run: m:f, sockets: {out: PUB}}
      s:
        run: m:f
        sockets:
          in: {type: SUB%s}
    links:
      - p.out -> s.in
    """


@pytest.mark.parametrize("subscribe,where,words", [
    ("", (7, 7), "SUB socket s.in has no `subscribe:`, so it subscribes to nothing"),
    (", subscribe: []", (7, 34), "SUB socket s.in subscribes to nothing (`subscribe: []`)"),
])
def test_a_sub_that_subscribes_to_nothing_is_a_warning(warnings, problems, subscribe, where, words):
    text = SUB_FILE % subscribe
    assert problems(text) == []
    [w] = warnings(text)
    assert at(w) == where
    assert w.message.startswith(words)
    assert w.message.endswith("it receives no message unless the node's code subscribes; `subscribe: \"\"` receives everything")


@pytest.mark.parametrize("subscribe", [", subscribe: ''", ", subscribe: [a]", ", subscribe: ['', b]"])
def test_a_sub_that_subscribes_has_no_warning(warnings, subscribe):
    assert warnings(SUB_FILE % subscribe) == []


def test_the_short_form_sub_subscribes_to_nothing(warnings):
    [w] = warnings(SUB_FILE.replace("{type: SUB%s}", "SUB"))
    assert at(w) == (7, 7) and "has no `subscribe:`" in w.message


# -- cascades ---------------------------------------------------------------------------


def test_a_misspelt_links_key_is_the_one_report(problems, warnings):
    text = LONELY.replace("links:", "link:")
    [p] = problems(text)
    assert (at(p), p.message) == ((9, 1), "unknown key 'link' in the file (did you mean 'links'?)")
    assert warnings(text) == []  # not every socket "has no link"


def test_links_of_the_wrong_type_do_not_leave_every_socket_linkless(problems, warnings):
    text = LONELY.replace("links:\n      - a.out -> b.in", "links: a.out -> b.in")
    [p] = problems(text)
    assert p.message == "links must be a list, not a string"
    assert warnings(text) == []


def test_no_links_at_all_warns_for_every_socket(warnings):
    text = LONELY.replace("links:\n      - a.out -> b.in\n", "")
    assert [at(w) for w in warnings(text)] == [(6, 7), (7, 7), (8, 27)]


DEDENTED = """\
    topology: t
    nodes:
      worker:
        run: m:f
      sockets:
        out: PUSH
      sink:
        run: m:g
        sockets:
          in: PULL
    links:
      - worker.out -> sink.in
    """


def test_a_dedented_sockets_key_gets_an_indentation_hint_and_nothing_else(problems, warnings):
    [p] = problems(DEDENTED)
    assert at(p) == (5, 3)
    assert p.message == "`sockets:` is indented as a node's name, so it reads as a node named 'sockets': indent it under node 'worker' (column 5, as its other keys)"
    assert warnings(DEDENTED) == []  # sink.in is linked, even if to what could not be read


def test_a_dedented_run_key_is_hinted_too(problems):
    found = problems("""\
        topology: t
        nodes:
          worker:
            sockets: {out: PUSH}
          run: m:f
          sink: {run: m:g, sockets: {in: PULL}}
        links: [worker.out -> sink.in]
        """)
    assert [(at(p), p.message) for p in found] == [
        ((5, 3), "`run:` is indented as a node's name, so it reads as a node named 'run': indent it under node 'worker' (column 5, as its other keys)")]


def test_a_node_key_first_under_nodes_says_what_a_node_looks_like(problems):
    [p] = problems("""\
        topology: t
        nodes:
          run: m:f
        """)
    assert p.message == "`run:` is written where a node's name goes, so it reads as a node named 'run': a node is `NAME:` with its keys indented under it"


def test_a_node_named_like_a_key_is_still_a_node(problems, tmp_path):
    text = """\
        topology: t
        nodes:
          env: {run: m:f, sockets: {out: PUSH}}
          host: {run: m:f, sockets: {in: PULL}}
        links: [env.out -> host.in]
        """
    assert problems(text) == []
    assert set(load(str(write(tmp_path, text))).nodes) == {"env", "host"}


def test_problems_after_reading_get_their_source_line(problems):
    [p] = problems("""\
        topology: t
        nodes:
          a: {run: m:f, host: nowhere}
        """)
    assert p.excerpt == "  a: {run: m:f, host: nowhere}"


def test_a_socket_written_twice_is_the_one_report(problems):
    """YAML keeps the second `out` (a PULL): the link that fits the first is not reported."""
    found = problems(LONELY.replace("      spare: PUSH", "      out: PULL"))
    assert [(at(p), p.message) for p in found] == [((7, 7), "duplicate key 'out' (first written on line 6)")]


def test_a_link_that_cannot_be_read_leaves_no_socket_linkless(problems, warnings):
    text = LONELY.replace("- a.out -> b.in", "- a.out => b.in")
    [p] = problems(text)
    assert p.message.startswith("links[0] must be")
    assert warnings(text) == []  # which sockets it meant is not known
