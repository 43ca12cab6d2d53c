"""Reading a file: YAML-level problems with their positions, and the model it builds."""

from __future__ import annotations

import os
import time

import pytest
import yaml

from topo.file import yamltree
from topo.errors import UsageError
from topo.file.loader import MAX_FILE_BYTES, load_text, read_file
from topo.file.model import OnExit, Restart, SocketRef, SocketType, Transport

from topo.file.yamltree import MAX_DEPTH

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
    assert at(p) == (2, 8)  # the `{` never closed, not the end of the file where PyYAML noticed
    assert p.message == "this `{` is never closed: add `}` after its last item"


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
    assert time.monotonic() - start < 60  # unbounded, 9**9 values would take hours: a bound a loaded machine meets
    assert "too many values" in p.message
    assert p.pos.line >= 3


def test_merge_key_bomb_loads_quickly(topology):
    lines = ["topology: t", "x-0: &m0 {run: m:f, restart: always}"]
    for i in range(1, 12):
        lines.append(f"x-{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}")
    lines.append("nodes: {a: *m11}")
    start = time.monotonic()
    t = topology("\n".join(lines) + "\n")
    assert time.monotonic() - start < 60
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


@pytest.mark.parametrize("value, tag", [
    ('!!python/object/apply:os.system ["id"]', "tag:yaml.org,2002:python/object/apply:os.system"),
    ("!foo {x: 1}", "!foo"),
    ("!!set {a, b}", "tag:yaml.org,2002:set"),
    ("!bar [1, 2]", "!bar"),
])
def test_a_tag_on_a_list_or_a_mapping_is_a_located_problem(problem, value, tag):
    """They were dropped silently (the value read as a plain list or mapping)."""
    p = problem(f"topology: t\nnodes:\n  a: {{run: m:f, args: {{v: {value}}}}}\n")
    assert at(p) == (3, 27)  # where the tag is written
    assert p.message == f"nodes.a.args.v: unsupported tag {tag}"


def test_a_fifo_a_device_and_a_directory_are_refused_without_reading(tmp_path):
    """A FIFO would block the read forever; /dev/zero would fill the memory."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, what in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                       (tmp_path, "a directory")):
        with pytest.raises(UsageError) as err:
            read_file(str(path))
        assert str(err.value) == f"{path}: {what}" + (" (a FIFO, a device?)" if what.startswith("not") else "") \
            + ": a topology file is a regular file"
        assert err.value.exit_code == 2


def test_a_file_larger_than_the_bound_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(UsageError, match="larger than 16 MiB"):
        read_file(str(big))
    big.write_bytes(b"topology: t\nnodes: {a: {run: m:f}}\n" + b"#" * (MAX_FILE_BYTES - 100))
    topology, problems = read_file(str(big))
    assert topology is not None and not problems


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


# -- nesting depth, the same on every PyYAML and both of its parsers ---------------------


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request, monkeypatch):
    """Runs a test with PyYAML's C parser (if this PyYAML has one) and its Python one: the
    first reads any depth before 6.0.4 and stops at 1000 levels since (bundled libyaml),
    the second runs out of stack a few hundred levels down."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("this PyYAML has no libyaml")
        monkeypatch.setattr(yamltree, "_Loader", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(yamltree, "_Loader", yaml.SafeLoader)
    return request.param


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 999, 1001, 5000])
def test_too_deep_flow_nesting_points_at_the_first_level_past_the_limit(parser, levels):
    # The root mapping is level 1, `nodes:`'s value level 2: the (MAX_DEPTH)th "{a: ".
    text = "topology: t\nnodes: " + "{a: " * levels + "1" + "}" * levels + "\n"
    t, found = load_text(text, "f.yaml")
    assert t is None
    assert [(at(p), p.message) for p in found] == [
        ((2, 8 + 4 * (MAX_DEPTH - 1)), f"the file is nested too deep to read (more than {MAX_DEPTH} levels of mappings and lists)"),
    ]


def test_too_deep_block_nesting_points_at_the_first_level_past_the_limit(parser):
    levels = 1100
    text = "topology: t\nnodes:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(levels)) + " " * (levels + 1) + "b: 1\n"
    t, found = load_text(text, "f.yaml")
    assert t is None
    # Line 3 opens level 2 (nodes' value) at column 2; line 2 + k opens level k + 1.
    assert [at(p) for p in found] == [(2 + MAX_DEPTH, MAX_DEPTH + 1)]
    assert "nested too deep" in found[0].message


def test_nesting_up_to_the_limit_loads(parser):
    levels = MAX_DEPTH - 4  # root, nodes' value, the node, its args: the list adds the rest
    text = "topology: t\nnodes: {a: {run: m:f, args: {x: " + "[" * levels + "]" * levels + "}}}\n"
    t, found = load_text(text, "f.yaml")
    assert found == [] and t is not None


def test_nesting_through_aliases_counts_the_aliased_levels():
    # Each anchor alone is shallow, x-3 holds x-2 which holds x-1: 3 * 65 levels, and
    # the alias is used 9 levels down: the problem is where it is used, not the anchor.
    deep = "[" * 65 + "]" * 65
    use = "  a: {run: m:f, args: {x: {y: {z: {w: {v: {u: *l3}}}}}}}"
    text = "\n".join([
        "topology: t",
        f"x-1: &l1 {deep}",
        f"x-2: &l2 {deep.replace('[]', '[*l1]')}",
        f"x-3: &l3 {deep.replace('[]', '[*l2]')}",
        "nodes:",
        use,
    ]) + "\n"
    t, found = load_text(text, "f.yaml")
    assert t is None
    assert [(at(p), "nested too deep" in p.message) for p in found] == [((6, use.index("u:") + 1), True)]


# -- merge keys: one meaning on every PyYAML ---------------------------------------------


def test_merge_list_first_mapping_wins_for_every_key_and_written_keys_win(topology):
    t = topology("""\
        topology: t
        x-a: &a {run: m:first, args: {who: a}}
        x-b: &b {run: m:second, restart: always, args: {who: b}, on_exit: stop}
        x-c: &c {run: m:third, restart: on-failure, on_exit: fail, process: c}
        nodes:
          n: {<<: [*a, *b, *c], on_exit: continue}
        """)
    n = t.nodes["n"]
    assert (n.run, n.restart, dict(n.args), n.on_exit, n.process) == (
        "m:first", Restart.ALWAYS, {"who": "a"}, OnExit.CONTINUE, "c")


def test_merge_of_a_mapping_that_merges_applies_both(topology):
    t = topology("""\
        topology: t
        x-base: &base {run: m:base, restart: always, process: p}
        x-mid: &mid {<<: *base, run: m:mid}
        nodes:
          n: {<<: [*mid, {restart: on-failure, env: {A: "1"}}]}
        """)
    n = t.nodes["n"]
    assert (n.run, n.restart, dict(n.env), n.process) == ("m:mid", Restart.ALWAYS, {"A": "1"}, "p")


def test_merge_keeps_the_merged_keys_first_in_order(topology):
    t = topology("""\
        topology: t
        x-some: &some {b: {run: m:f}, a: {run: m:f}}
        nodes: {<<: *some, c: {run: m:f}}
        """)
    assert list(t.nodes) == ["b", "a", "c"]


def test_a_list_item_that_is_not_a_mapping_cannot_be_merged(problem):
    p = problem("""\
        topology: t
        x-a: &a {run: m:f}
        nodes:
          a: {<<: [*a, [1]]}
        """)
    assert at(p) == (4, 16)
    assert p.message == "`<<:` expects mappings for merging, found a list in the list"


def test_duplicate_key_inside_a_merged_mapping_is_reported(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {<<: {run: m:f, run: m:g}}
        """)
    assert at(p) == (3, 22)
    assert "duplicate key 'run' (first written on line 3)" in p.message


def test_a_mapping_merged_into_itself_is_a_located_problem(problems):
    found = problems("""\
        topology: t
        x-a: &a {<<: *a, run: m:f}
        nodes: {a: {run: m:f}}
        """)
    assert [(at(p), p.message) for p in found] == [((2, 6), "`<<:` merges a mapping into itself")]
