"""YAML syntax errors said as a compiler says them: the line of the mistake (not the one
where PyYAML noticed it), plain words, and the source line with a caret under the column."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from topo.errors import Pos, Problem
from topo.file.loader import load_text

from ..helpers import at

CASES = {
    "tab indentation": (
        "topology: t\nnodes:\n  a:\n\trun: m:f\n",
        (4, 1), "a tab is not allowed for indentation: indent with spaces"),
    "tab after spaces": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n  \treplicas: 2\n",
        (5, 3), "a tab is not allowed for indentation: indent with spaces"),
    "key deeper than the one before": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n      replicas: 2\n",
        (5, 7), "this key is indented deeper than the one before (`run`, column 5): line it up with `run`, or give `run:` no value of its own to nest it"),
    "key less deep than the one before": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n   replicas: 2\n",
        (5, 4), "this key is indented less than the one before (column 5) but more than `a` (column 3): line it up with one of them"),
    "missing colon, a key follows": (
        "topology: t\nnodes:\n  a:\n    run m:f\n    replicas: 2\n",
        (4, 8), "missing `:` after `run`"),
    "missing colon, a word alone": (
        "topology: t\nnodes:\n  a:\n    run\n    replicas: 2\n",
        (4, 8), "missing `:` after `run`"),
    "missing colon on the last key": (
        "topology: t\nnodes:\n  a:\n    replicas: 2\n    run m:f\n",
        (5, 8), "missing `:` after `run`"),
    "missing colon before a nested mapping": (
        "topology: t\nnodes:\n  a\n    run: m:f\n",
        (3, 4), "missing `:` after `a`"),
    "missing colon on the first line": (
        "topology t\nnodes:\n  a: {run: m:f}\n",
        (1, 9), "missing `:` after `topology`"),
    "unclosed double quote": (
        "topology: t\nnodes:\n  a:\n    run: \"m:f\n    replicas: 2\n",
        (4, 10), 'this quote is never closed: add the closing " where the value ends'),
    "unclosed single quote, more keys after": (
        "topology: t\nnodes:\n  a:\n    run: 'm:f\n    replicas: 2\n    host: 'x'\n    env: {}\n",
        (4, 10), "this quote is not closed on its line: add the closing ' where the value ends"),
    "unclosed brace": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n    sockets: {out: PUSH\nlinks: []\n",
        (5, 14), "this `{` is never closed: add `}` after its last item"),
    "unclosed bracket": (
        "topology: t\nlinks: [a.b -> c.d\nnodes: {}\n",
        (2, 8), "this `[` is never closed: add `]` after its last item"),
    "missing comma in braces": (
        "topology: t\nnodes: {a: {run: x} b: {run: y}}\n",
        (2, 21), "`,` or `}` expected here: items inside `{...}` are separated by commas"),
    "a bracket too many": (
        "topology: t\nlinks: [a.b -> c.d]]\n",
        (2, 20), "this `]` closes nothing: remove it"),
    "a list item in a mapping": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n    - replicas: 2\n",
        (5, 5), "a `-` list item in the middle of a mapping: a mapping holds `key: value` lines; put a list under a key of its own"),
    "a mapping entry in a list": (
        "topology: t\nlinks:\n  - a.b -> c.d\n  e: f\n",
        (4, 3), "a `key: value` in the middle of a list: every item of a list starts with `- `"),
    "a dash too many before a mapping's first key": (
        "topology: t\nnodes:\n  a:\n    - run: m:f\n    replicas: 2\n",
        (5, 5), "a `key: value` in the middle of a list: every item of a list starts with `- `, or remove the `-` on line 4 if this is a mapping"),
    "a deeper key after a commented-out one": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n#    sockets:\n      out: PUSH\n",
        (6, 7), "this key is indented deeper than the one before (`run`, column 5): line it up with `run`, or give `run:` no value of its own to nest it"),
    "a line of a mapping that is no key": (
        "topology: t\nnodes:\n  a:\n    run: m:f\n  ,\n",
        (5, 3), "a line of a mapping must be `key: value` (a `:` missing? a comment without its `#`?)"),
    "an alias to no anchor": (
        "topology: t\nnodes:\n  a: {run: *x}\n",
        (3, 12), "`*x` refers to no anchor: write `&x` on a value before it"),
    "a value starting with a block indicator": (
        "topology: t\nnodes:\n  a:\n    run: |x\n",
        (4, 10), "`|` here starts a block of text on the lines below: quote a value that starts with `|`"),
    "a value with colon-space": (
        "topology: t\nnodes:\n  a:\n    run: m: f\n",
        (4, 11), 'a value that contains `: ` must be quoted: write `run: "m: f"`'),
    "a reserved first character": (
        "topology: t\nnodes:\n  a:\n    run: @nodes:f\n",
        (4, 10), "a value cannot start with `@` (YAML reserves it): quote the value"),
}


def yaml_problem(text: str) -> Problem:
    topology, problems = load_text(text, "t.yaml")
    assert topology is None and len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("text,where,message", CASES.values(), ids=list(CASES))
@pytest.mark.parametrize("loader", ["C", "Python"])
def test_each_common_mistake_is_said_plainly_on_its_line(monkeypatch, loader, text, where, message):
    if loader == "Python":  # the pure-Python parser words its errors differently: same result
        monkeypatch.setattr("topo.file.yamltree._Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    p = yaml_problem(text)
    assert (at(p), p.message) == (where, message)
    assert p.excerpt == text.split("\n")[where[0] - 1]


def test_the_caret_stands_under_the_column():
    p = yaml_problem(CASES["missing colon, a key follows"][0])
    assert p.render() == textwrap.dedent("""\
        t.yaml:4:8: missing `:` after `run`
          4 |     run m:f
            |        ^""")


def test_a_tab_is_shown_as_spaces_with_the_caret_on_it():
    p = yaml_problem(CASES["tab after spaces"][0])
    assert p.render().splitlines()[1:] == ["  5 |     replicas: 2", "    |   ^"]  # tab stops every 4


def test_an_unrecognised_error_keeps_pyyaml_words_with_a_caret():
    p = yaml_problem("topology: t\nnodes:\n  a: {run: m:f}: x\n")
    assert at(p) == (3, 16)
    assert p.message.startswith("YAML syntax error: mapping values are not allowed")
    assert p.render().splitlines()[1:] == ["  3 |   a: {run: m:f}: x", "    |                ^"]


def test_lines_count_as_yaml_counts_them():
    """NEL, LS, PS and a lone CR end lines for PyYAML: the excerpt is the line it means."""
    p = yaml_problem("topology: t\x85nodes:\u2028  a:\r    run m:f\n    replicas: 2\n")
    assert (at(p), p.excerpt) == ((4, 8), "    run m:f")


def test_a_long_line_is_cut_around_the_column():
    line = "x" * 300 + "^" + "y" * 300
    shown, caret = Problem(Pos("f", 1, 301), "m", excerpt=line).render().splitlines()[1:]
    assert len(shown) < 120 and shown.startswith("  1 | ...") and shown.endswith("...")
    assert shown[caret.index("^")] == "^"


def test_duplicate_keys_are_still_reported_each():
    _, problems = load_text("topology: t\nnodes:\n  a: {run: m:f}\n  a: {run: m:g}\n", "t.yaml")
    assert [(at(p), p.message) for p in problems] == [((4, 3), "duplicate key 'a' (first written on line 3)")]
