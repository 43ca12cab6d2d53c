"""``${VAR}`` in a topology file: compose's forms, typing after substitution, located problems."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping

import pytest

from topo.errors import Pos, Problem
from topo.file.interpolate import mask, read_dotenv, restore, substitute, variables
from topo.file.loader import load_text, read_file


def load(body: str, env: Mapping[str, str] | None = None) -> tuple[Any, list[Problem]]:
    """A one-node file whose node ``a`` has the lines of ``body``; returns (node, problems)."""
    text = "topology: t\nnodes:\n  a:\n    run: m:f\n" + textwrap.indent(textwrap.dedent(body), "    ")
    topology, problems = load_text(text, "t.yaml", environ=env or {})
    return (topology.nodes["a"] if topology else None), problems


# -- the forms --------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "env", "expected"), [
    ("${X}", {"X": "v"}, "v"),
    ("$X", {"X": "v"}, "v"),
    ("<$X_1.>", {"X_1": "v"}, "<v.>"),
    ("${X:-d}", {}, "d"),
    ("${X:-d}", {"X": ""}, "d"),
    ("${X:-d}", {"X": "v"}, "v"),
    ("${X-d}", {}, "d"),
    ("${X-d}", {"X": ""}, ""),
    ("${X:+alt}", {"X": "v"}, "alt"),
    ("${X:+alt}", {"X": ""}, ""),
    ("${X+alt}", {"X": ""}, "alt"),
    ("${X+alt}", {}, ""),
    ("${X:?m}", {"X": "v"}, "v"),
    ("${X?m}", {"X": ""}, ""),
    ("$$X and $${X}", {"X": "v"}, "$X and ${X}"),
    ("cost 5$ or $5 or a$", {}, "cost 5$ or $5 or a$"),
    ("${X:-a b: c, d}", {}, "a b: c, d"),
    ("$X$X", {"X": "ab"}, "abab"),
])
def test_substitute(written: str, env: dict[str, str], expected: str) -> None:
    assert substitute(written, env.get) == (expected, [])


@pytest.mark.parametrize(("written", "env", "message"), [
    ("${X}", {}, "variable X is not set (add it to the environment or to .env next to the file)"),
    ("$X", {}, "variable X is not set (add it to the environment or to .env next to the file)"),
    ("${X:?give a port}", {}, "variable X is not set: give a port"),
    ("${X:?give a port}", {"X": ""}, "variable X is empty: give a port"),
    ("${X?give a port}", {}, "variable X is not set: give a port"),
    ("${X:?}", {}, "variable X is not set (add it to the environment or to .env next to the file)"),
    ("${1X}", {}, "invalid variable reference `${1X}`"),
    ("${}", {}, "invalid variable reference `${}`"),
    ("${X", {}, "`${` without its closing `}`"),
])
def test_substitute_errors(written: str, env: dict[str, str], message: str) -> None:
    _, errors = substitute("ab " + written, env.get)
    assert [e.start for e in errors] == [3]
    assert errors[0].error.startswith(message)


def test_mask_keeps_every_position_and_restores() -> None:
    text = "a: {p: ${P:-0.5}, q: ${Q:?a, b: [c]}, r: $$, s: $S}\n# ${C}\n"
    masked = mask(text)
    assert len(masked) == len(text)
    assert masked.splitlines()[1] == "# $" + masked.splitlines()[1][3:]
    assert masked.startswith("a: {p: $") and ", q: $" in masked and ", r: $$, s: $S}\n" in masked
    assert restore(masked) == text


def test_a_text_that_holds_a_stand_in_is_not_masked() -> None:
    text = "a: \uf8f0 ${P}"
    assert mask(text) == text


# -- in a file: typed after substitution ------------------------------------------------


def test_plain_scalar_is_typed_after_substitution() -> None:
    node, problems = load("""\
        replicas: ${N}
        restart_window: ${W:-2.5}
        args: {period: ${PERIOD:-0.5}, flag: ${F}, none: ${E}, text: ${T}, keep: "${N}", tagged: !!str ${N},
               anchored: &x ${N}}
        """, {"N": "4", "F": "true", "E": "", "T": "hello world"})
    assert problems == []
    assert node.replicas == 4
    assert node.restart_window == 2.5
    assert node.args == {"period": 0.5, "flag": True, "none": None, "text": "hello world", "keep": "4",
                         "tagged": "4", "anchored": 4}


def test_a_substituted_value_is_checked_as_written_there() -> None:
    _, problems = load("replicas: ${N}\n", {"N": "four"})
    assert [(p.pos.line, p.pos.col, p.message) for p in problems] == [
        (5, 15, "nodes.a.replicas must be an integer, not a string")]


def test_keys_are_not_interpolated() -> None:
    node, problems = load("args: {${K}: ${V}, $$x: 1}\n", {"K": "k", "V": "v"})
    assert problems == []
    assert node.args == {"${K}": "v", "$$x": 1}


def test_an_alias_is_substituted_once() -> None:
    node, problems = load("""\
        args:
          a: &d {x: $$HOME, y: ${Y}}
          b: *d
          c: {<<: *d, z: 1}
        """, {"Y": "2", "HOME": "never"})
    assert problems == []
    assert node.args == {"a": {"x": "$HOME", "y": 2}, "b": {"x": "$HOME", "y": 2}, "c": {"x": "$HOME", "y": 2, "z": 1}}


def test_block_and_quoted_scalars() -> None:
    node, problems = load("""\
        env:
          A: "${X}-${X:-d}"
          B: '$$X'
          C: |
            line ${X}
            ${Y:-two}
        """, {"X": "1"})
    assert problems == []
    assert node.env == {"A": "1-1", "B": "$X", "C": "line 1\ntwo\n"}


# -- located problems -------------------------------------------------------------------


def test_every_missing_variable_is_reported_where_it_is_written() -> None:
    _, problems = load("""\
        replicas: ${N}
        args: {a: x${PORT}, b: "${HOST:?the host to use}", c: $USER_X}
        """)
    assert sorted((p.pos.line, p.pos.col, p.message) for p in problems) == [
        (5, 15, "variable N is not set (add it to the environment or to .env next to the file)"),
        (6, 16, "variable PORT is not set (add it to the environment or to .env next to the file)"),
        (6, 29, "variable HOST is not set: the host to use"),
        (6, 59, "variable USER_X is not set (add it to the environment or to .env next to the file)"),
    ]


def test_later_problems_keep_their_positions() -> None:
    _, problems = load("""\
        args: {period: ${PERIOD:-0.5}, rate: ${R:-1}}
        on_exit: ${BAD:-nonsense}
        bogus: 1
        """)
    found = {(p.pos.line, p.pos.col) for p in problems}
    assert (6, 14) in found  # on_exit's value: the `$` where it is written
    assert (7, 5) in found  # the unknown key


def test_flow_mapping_without_masking_is_a_yaml_error() -> None:
    # What the mask is for: plain YAML reads the braces of ${...} in a flow mapping.
    import yaml
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load("a: {period: ${PERIOD:-0.5}}")
    assert yaml.safe_load(mask("a: {period: ${PERIOD:-0.5}}"))["a"]["period"] != "${PERIOD:-0.5}"


# -- where the values come from ----------------------------------------------------------


def test_dotenv_format(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(textwrap.dedent("""\
        # a comment
        A=1
        export B = two words  # a comment
        C="quoted # not a comment\\nnext"
        D='single $X \\n'
        E=
        F=a#b

        """))
    problems: list[Problem] = []
    assert read_dotenv(str(env), problems) == {
        "A": "1", "B": "two words", "C": "quoted # not a comment\nnext", "D": "single $X \\n", "E": "", "F": "a#b",
    }
    assert problems == []


def test_dotenv_bad_lines_are_located(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('A=1\n  just words\nB="open\n')
    problems: list[Problem] = []
    assert read_dotenv(str(env), problems) == {"A": "1"}
    assert [p.pos for p in problems] == [Pos(str(env), 2, 3), Pos(str(env), 3, 1)]


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=from-file\nB=from-file\n")
    topo = tmp_path / "t.yaml"
    topo.write_text("topology: t\nnodes: {}\n")
    assert variables(str(topo), [], {"A": "from-env"}) == {"A": "from-env", "B": "from-file"}
    assert variables("<string>", [], {"A": "x"}) == {"A": "x"}


def test_read_file_uses_dotenv_next_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("N=3\n")
    topo = tmp_path / "t.yaml"
    topo.write_text("topology: t\nnodes:\n  a: {run: m:f, replicas: ${N}}\n")
    monkeypatch.delenv("N", raising=False)
    topology, problems = read_file(str(topo))
    assert problems == [] and topology is not None
    assert topology.nodes["a"].replicas == 3
    monkeypatch.setenv("N", "5")
    topology, _ = read_file(str(topo))
    assert topology is not None and topology.nodes["a"].replicas == 5
