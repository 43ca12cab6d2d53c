"""Reading a file: YAML-level problems with their positions, and the model it builds."""

from __future__ import annotations

import time

import pytest

from topo.file.loader import load_text
from topo.file.model import OnExit, Restart, SocketRef, SocketType, Transport

from ..helpers import at

# -- YAML-level problems ----------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_offending_character(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}: x
        """)
    assert at(p) == (3, 16)
    assert "YAML syntax error" in p.message
    assert "mapping values are not allowed" in p.message


def test_unclosed_flow_mapping_is_a_syntax_error(problem):
    p = problem("""\
        topology: t
        nodes: {a: {run: m:f}
        """)
    assert at(p) == (3, 1)
    assert "YAML syntax error" in p.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(problem, text):
    p = problem(text)
    assert at(p) == (1, 1)
    assert "the file is empty" in p.message


def test_top_level_list(problem):
    p = problem("""\
        # a list, not a mapping
        - topology: t
        - nodes: {}
        """)
    assert at(p) == (2, 1)
    assert "must be a mapping with `topology:` and `nodes:`" in p.message


def test_top_level_scalar(problem):
    p = problem("""\

        weather
        """)
    assert at(p) == (2, 1)
    assert "must be a mapping" in p.message


def test_duplicate_top_level_key(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
        topology: u
        """)
    assert at(p) == (4, 1)
    assert "duplicate key 'topology' (first written on line 1)" in p.message


def test_duplicate_key_inside_a_node(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            restart: always
            run: m:g
        """)
    assert at(p) == (6, 5)
    assert "duplicate key 'run' (first written on line 4)" in p.message


def test_duplicate_key_inside_args(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            args: {size: 1, size: 2}
        """)
    assert at(p) == (5, 21)
    assert "duplicate key 'size' (first written on line 5)" in p.message


def test_duplicate_node_name(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
          b: {run: m:f}
          a: {run: m:g}
        """)
    assert at(p) == (5, 3)
    assert "duplicate key 'a' (first written on line 3)" in p.message


def test_non_utf8_bytes_point_at_the_first_bad_byte(problem):
    p = problem(b"topology: t\nnodes:\n  a: {run: m:f, args: {x: caf\xe9}}\n")
    assert at(p) == (3, 30)
    assert "not UTF-8" in p.message


def test_non_utf8_column_counts_characters_not_bytes(problem):
    # "é" is two bytes in UTF-8 but one column in an editor.
    p = problem("topology: t\n# é ?\nnodes: {a: {run: m:f}}\n".encode().replace(b"?", b"\xff"))
    assert at(p) == (2, 5)
    assert "not UTF-8" in p.message


def test_several_documents_in_one_file(problem):
    p = problem("""\
        topology: t
        nodes: {a: {run: m:f}}
        ---
        topology: u
        """)
    assert at(p) == (3, 1)
    assert "expected a single document" in p.message


def test_alias_that_contains_itself_is_a_located_problem(problems):
    found = problems("""\
        topology: t
        nodes:
          a:
            run: m:f
            args: &loop {self: *loop}
        """)
    assert [(at(p), p.message) for p in found] == [
        ((5, 11), "nodes.a.args.self: an alias refers to itself"),
    ]


def test_recursive_list_alias_is_a_located_problem(problems):
    found = problems("""\
        topology: t
        x-loop: &l [1, *l]
        nodes: {a: {run: m:f}}
        """)
    assert [(at(p), p.message) for p in found] == [((2, 9), "x-loop[1]: an alias refers to itself")]


def test_alias_bomb_is_refused_quickly(problem):
    lines = ["topology: t", "nodes: {a: {run: m:f}}", 'x-0: &l0 ["lol"]']
    for i in range(1, 10):
        lines.append(f"x-{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    start = time.monotonic()
    p = problem("\n".join(lines) + "\n")
    assert time.monotonic() - start < 5
    assert "too many values" in p.message
    assert p.pos.line >= 3


def test_merge_key_bomb_loads_quickly(topology):
    lines = ["topology: t", "x-0: &m0 {run: m:f, restart: always}"]
    for i in range(1, 12):
        lines.append(f"x-{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}")
    lines.append("nodes: {a: *m11}")
    start = time.monotonic()
    t = topology("\n".join(lines) + "\n")
    assert time.monotonic() - start < 5
    assert t.nodes["a"].restart is Restart.ALWAYS


@pytest.mark.parametrize("depth", [200, 5000])
def test_deep_nesting_is_a_problem_or_a_load_never_a_crash(depth):
    text = "topology: t\nnodes: {a: {run: m:f, args: {x: " + "[" * depth + "]" * depth + "}}}\n"
    t, found = load_text(text, "f.yaml")
    assert t is not None or found
    for p in found:
        assert p.pos.line >= 1 and p.pos.col >= 1


def test_deeply_nested_file_is_a_located_problem():
    text = "topology: t\nnodes: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"
    t, found = load_text(text, "f.yaml")
    assert t is None
    assert len(found) == 1 and "nested too deep" in found[0].message


def test_unsupported_tag_is_a_located_problem(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, args: {blob: !!binary aGVsbG8=}}
        """)
    assert at(p) == (3, 30)
    assert "unsupported tag" in p.message


def test_bad_merge_value_is_a_located_problem(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {<<: 3, run: m:f}
        """)
    assert at(p) == (3, 11)
    assert "merging" in p.message


# -- what the loader builds -------------------------------------------------------------


@pytest.mark.parametrize("written", ["no", "No", "false", "'no'"])
def test_restart_no_in_any_spelling_means_no(topology, written):
    t = topology(f"""\
        topology: t
        nodes:
          a: {{run: m:f, restart: {written}}}
        """)
    assert t.nodes["a"].restart is Restart.NO


def test_restart_and_on_exit_values(topology):
    t = topology("""\
        topology: t
        nodes:
          a: {run: m:f, restart: on-failure, on_exit: stop}
          b: {run: m:f, restart: always}
          c: {run: m:f}
        """)
    assert t.nodes["a"].restart is Restart.ON_FAILURE
    assert t.nodes["a"].on_exit is OnExit.STOP
    assert t.nodes["b"].restart is Restart.ALWAYS
    assert (t.nodes["c"].restart, t.nodes["c"].on_exit) == (Restart.NO, OnExit.CONTINUE)


def test_x_prefixed_top_level_keys_are_accepted_and_ignored(topology):
    t = topology("""\
        topology: t
        x-common: &common {restart: always}
        x-anything: [1, 2, {deep: true}]
        nodes:
          a: {run: m:f}
        """)
    assert list(t.nodes) == ["a"]


def test_merge_keys_apply_an_anchor_and_own_keys_win(topology):
    t = topology("""\
        topology: t
        x-worker: &worker
          run: m:work
          restart: always
          env: {MODE: fast}
        nodes:
          a:
            <<: *worker
          b:
            <<: *worker
            restart: on-failure
            run: m:other
        """)
    assert (t.nodes["a"].run, t.nodes["a"].restart, dict(t.nodes["a"].env)) == ("m:work", Restart.ALWAYS, {"MODE": "fast"})
    assert (t.nodes["b"].run, t.nodes["b"].restart) == ("m:other", Restart.ON_FAILURE)


def test_merge_of_a_list_of_anchors_first_one_wins(topology):
    t = topology("""\
        topology: t
        x-a: &a {restart: always}
        x-b: &b {restart: on-failure, on_exit: stop}
        nodes:
          n: {<<: [*a, *b], run: m:f}
        """)
    assert (t.nodes["n"].restart, t.nodes["n"].on_exit) == (Restart.ALWAYS, OnExit.STOP)


def test_a_merged_key_is_not_a_duplicate(topology):
    topology("""\
        topology: t
        x-base: &base {run: m:f}
        nodes:
          a: {<<: *base, run: m:g}
        """)


def test_defaults_apply_to_every_node_and_env_args_merge_key_by_key(topology):
    t = topology("""\
        topology: t
        defaults:
          restart: always
          env: {A: "1", B: "2"}
          args: {x: 1}
        nodes:
          a: {run: m:f, env: {B: "3"}, args: {y: 2}}
          b: {run: m:f, restart: no}
        """)
    assert t.nodes["a"].restart is Restart.ALWAYS
    assert dict(t.nodes["a"].env) == {"A": "1", "B": "3"}
    assert dict(t.nodes["a"].args) == {"x": 1, "y": 2}
    assert t.nodes["b"].restart is Restart.NO
    assert dict(t.nodes["b"].env) == {"A": "1", "B": "2"}


def test_env_values_become_text(topology):
    t = topology("""\
        topology: t
        nodes:
          a: {run: m:f, env: {N: 3, F: 1.5, T: true, N_: no, S: text}}
        """)
    assert dict(t.nodes["a"].env) == {"N": "3", "F": "1.5", "T": "true", "N_": "false", "S": "text"}


def test_sockets_short_and_long_form(topology):
    t = topology("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              out: PUB
              ctl: {type: SUB, subscribe: "cmd.", bind: true, options: {rcvhwm: 5}}
              all: {type: SUB, subscribe: ["", "x"]}
        links:
          - a.out -> a.ctl
          - a.out -> a.all
        """)
    s = t.nodes["a"].sockets
    assert s["out"].type is SocketType.PUB and s["out"].bind is None
    assert (s["ctl"].type, s["ctl"].subscribe, s["ctl"].bind, dict(s["ctl"].options)) == (
        SocketType.SUB, ("cmd.",), True, {"rcvhwm": 5})
    assert s["all"].subscribe == ("", "x")


def test_links_short_and_long_form_with_positions(topology):
    t = topology("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH, pub: PUB}}
          b: {run: m:f, process: p, sockets: {in: PULL, sub: SUB, sub2: SUB}}
        links:
          - a.out -> b.in
          - {from: a.pub, to: b.sub, transport: tcp}
          - "  a.pub   ->   b.sub2 "
        """)
    short, long, quoted = t.links[0], t.links[1], None
    assert (short.src, short.dst, short.transport) == (SocketRef("a", "out"), SocketRef("b", "in"), None)
    assert (short.src_pos.line, short.src_pos.col, short.dst_pos.col) == (6, 5, 14)
    assert (long.src, long.dst, long.transport) == (SocketRef("a", "pub"), SocketRef("b", "sub"), Transport.TCP)
    assert (long.src_pos.line, long.src_pos.col, long.dst_pos.col) == (7, 12, 23)
    quoted = t.links[2]
    assert (quoted.src_pos.col, quoted.dst_pos.col) == (8, 21)


def test_without_hosts_there_is_one_local_host(topology):
    t = topology("""\
        topology: t
        nodes: {a: {run: m:f}}
        """)
    assert list(t.hosts) == ["local"] and t.hosts["local"].address == "127.0.0.1"
    assert t.default_host == "local"


def test_the_only_host_is_the_default(topology):
    t = topology("""\
        topology: t
        hosts: {box: {address: 10.1.1.1}}
        nodes: {a: {run: m:f}}
        """)
    assert t.default_host == "box"


def test_load_text_never_raises_on_a_file_of_problems():
    t, found = load_text("topology: T\nnodes: {a: {run: 1, replicas: 0}}\nlinks: [x]\n", "f.yaml")
    assert t is not None
    assert [at(p) for p in found] == [(1, 11), (2, 18), (2, 31), (3, 9)]
