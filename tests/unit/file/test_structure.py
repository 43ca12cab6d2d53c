"""Structure: what the schema says, reported at the place it is broken, with a hint."""

from __future__ import annotations

import pytest

from ..helpers import at

# -- required keys ----------------------------------------------------------------------


def test_topology_is_required(problem):
    p = problem("""\
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (1, 1)
    assert "missing required key 'topology'" in p.message


def test_nodes_is_required(problem):
    p = problem("""\
        topology: t
        """)
    assert at(p) == (1, 1)
    assert "missing required key 'nodes'" in p.message


def test_nodes_must_not_be_empty(problem):
    p = problem("""\
        topology: t
        nodes: {}
        """)
    assert at(p) == (2, 1)
    assert "nodes must not be empty" in p.message


def test_node_run_is_required(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
          b:
            restart: always
        """)
    assert at(p) == (4, 3)
    assert "nodes.b: missing required key 'run' (a Python function) or 'exec' (a program)" in p.message


def test_long_form_socket_type_is_required(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              ctl: {subscribe: [x]}
        """)
    assert at(p) == (6, 7)
    assert "nodes.a.sockets.ctl: missing required key 'type'" in p.message


def test_host_address_is_required(problem):
    p = problem("""\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {launch: [ssh, edge]}
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (4, 3)
    assert "hosts.edge: missing required key 'address'" in p.message


@pytest.mark.parametrize("link, missing, col", [
    ("{from: a.out}", "to", 5),
    ("{to: b.in}", "from", 5),
])
def test_link_from_and_to_are_required(problem, link, missing, col):
    p = problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f}}
        links:
          - {link}
        """)
    assert at(p) == (5, col)
    assert f"links[0]: missing required key '{missing}'" in p.message


# -- unknown keys, with "did you mean" --------------------------------------------------


def test_unknown_top_level_key(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
        link: []
        """)
    assert at(p) == (4, 1)
    assert "unknown key 'link' in the file (did you mean 'links'?)" in p.message


def test_unknown_node_key(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            proces: back
        """)
    assert at(p) == (5, 5)
    assert "unknown key 'proces' in nodes.a (did you mean 'process'?)" in p.message


def test_unknown_defaults_key(problem):
    p = problem("""\
        topology: t
        defaults: {restrat: always}
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (2, 12)
    assert "unknown key 'restrat' in defaults (did you mean 'restart'?)" in p.message


def test_unknown_long_form_socket_key(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              in: {type: SUB, subscibe: [x]}
        """)
    assert at(p) == (6, 23)
    assert "unknown key 'subscibe' in nodes.a.sockets.in (did you mean 'subscribe'?)" in p.message


def test_unknown_host_key(problem):
    p = problem("""\
        topology: t
        hosts:
          edge:
            address: 10.0.0.2
            lauch: [ssh, edge]
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (5, 5)
    assert "unknown key 'lauch' in hosts.edge (did you mean 'launch'?)" in p.message


def test_unknown_link_key(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
        links:
          - from: a.out
            to: a.in
            transprt: tcp
        """)
    assert at(p) == (7, 5)
    assert "unknown key 'transprt' in links[0] (did you mean 'transport'?)" in p.message


def test_unknown_socket_option(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              out:
                type: PUB
                options: {sndhmw: 1000}
        """)
    assert at(p) == (8, 19)
    assert "unknown key 'sndhmw' in nodes.a.sockets.out.options (did you mean 'sndhwm'?)" in p.message


def test_unknown_key_far_from_any_known_one_has_no_suggestion(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, colour: blue}
        """)
    assert at(p) == (3, 17)
    assert p.message == "unknown key 'colour' in nodes.a"


# -- wrong types ------------------------------------------------------------------------


@pytest.mark.parametrize("line, col, message", [
    ("replicas: two", 15, "nodes.a.replicas must be an integer, not a string"),
    ("replicas: 2.5", 15, "nodes.a.replicas must be an integer, not a number"),
    ("replicas: '3'", 15, "nodes.a.replicas must be an integer, not a string"),
    ("args: [1, 2]", 11, "nodes.a.args must be a mapping, not a list"),
    ("env: {A: [1]}", 14, "nodes.a.env.A must be a string or a number or true or false, not a list"),
    ("env: {A: }", 14, "nodes.a.env.A must be a string or a number or true or false, not empty"),
    ("sockets: [PUB]", 14, "nodes.a.sockets must be a mapping, not a list"),
    ("sockets: {s: 3}", 18, "nodes.a.sockets.s must be a mapping or a string, not an integer"),
    ("sockets: {s: {type: SUB, subscribe: 1}}", 41, "nodes.a.sockets.s.subscribe must be a list or a string, not an integer"),
    ("sockets: {s: {type: SUB, subscribe: [1]}}", 42, "nodes.a.sockets.s.subscribe[0] must be a string, not an integer"),
    ("sockets: {s: {type: SUB, bind: maybe}}", 36, "nodes.a.sockets.s.bind must be true or false, not a string"),
    ("sockets: {s: {type: SUB, options: 5}}", 39, "nodes.a.sockets.s.options must be a mapping, not an integer"),
    ("sockets: {s: {type: SUB, options: {linger: [1]}}}", 48, "nodes.a.sockets.s.options.linger must be an integer or true or false, not a list"),
    ("process: [p]", 14, "nodes.a.process must be a string, not a list"),
    ("host: 7", 11, "nodes.a.host must be a string, not an integer"),
])
def test_wrong_type_of_a_node_value(problem, line, col, message):
    p = problem(f"""\
        topology: t
        nodes:
          a:
            run: m:f
            {line}
        """)
    assert at(p) == (5, col)
    assert message in p.message


@pytest.mark.parametrize("text, pos, message", [
    ("topology: 5\nnodes: {a: {run: m:f}}\n", (1, 11), "topology must be a string, not an integer"),
    ("topology: t\nnodes: [a]\n", (2, 8), "nodes must be a mapping, not a list"),
    ("topology: t\nnodes: {a: {run: 5}}\n", (2, 18), "nodes.a.run must be a string, not an integer"),
    ("topology: t\nnodes: {a: m:f}\n", (2, 12), "nodes.a must be a mapping, not a string"),
    ("topology: t\nnodes: {a: {run: m:f}}\nlinks: {a: b}\n", (3, 8), "links must be a list, not a mapping"),
    ("topology: t\nnodes: {a: {run: m:f}}\nlinks: [3]\n", (3, 9), "links[0] must be a mapping or a string, not an integer"),
    ("topology: t\nnodes: {a: {run: m:f}}\nhosts: [local]\n", (3, 8), "hosts must be a mapping, not a list"),
    ("topology: t\nnodes: {a: {run: m:f}}\nhosts: {h: {address: 1}}\n", (3, 22), "hosts.h.address must be a string, not an integer"),
    ("topology: t\nnodes: {a: {run: m:f}}\nhosts: {h: {address: x, launch: ssh}}\n", (3, 33), "hosts.h.launch must be a list, not a string"),
    ("topology: t\nnodes: {a: {run: m:f}}\nhosts: {h: {address: x, launch: []}}\n", (3, 33), "hosts.h.launch must have at least 1 item(s)"),
    ("topology: t\nnodes: {a: {run: m:f}}\ndefaults: [1]\n", (3, 11), "defaults must be a mapping, not a list"),
])
def test_wrong_type_elsewhere(problem, text, pos, message):
    p = problem(text)
    assert at(p) == pos
    assert message in p.message


def test_yaml_boolean_as_a_name_must_be_quoted(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, env: {"ON": x, OFF: y}}
        """)
    assert at(p) == (3, 32)
    assert "nodes.a.env: key False must be text" in p.message


# -- enums ------------------------------------------------------------------------------


@pytest.mark.parametrize("value, col, message", [
    ("restart: never", 26, "nodes.a.restart must be one of no, on-failure, always; got 'never'"),
    ("restart: on_failure", 26, "got 'on_failure' (did you mean 'on-failure'?)"),
    ("restart: yes", 26, "nodes.a.restart must be one of no, on-failure, always; got True"),
    ("on_exit: halt", 26, "nodes.a.on_exit must be one of continue, stop; got 'halt'"),
    ("on_exit: Stop", 26, "got 'Stop' (did you mean 'stop'?)"),
])
def test_enum_of_a_node(problem, value, col, message):
    p = problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f, {value}}}
        """)
    assert at(p) == (3, col)
    assert message in p.message


def test_link_transport_enum(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
        links:
          - {from: a.x, to: a.y, transport: udp}
        """)
    assert at(p) == (5, 37)
    assert "links[0].transport must be one of inproc, ipc, tcp; got 'udp'" in p.message


def test_short_socket_type_suggests_the_upper_case_name(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              out: pub
        """)
    assert at(p) == (6, 12)
    assert "nodes.a.sockets.out must be one of PUB, SUB, XPUB, XSUB, PUSH, PULL, REQ, REP, DEALER, ROUTER, PAIR; got 'pub' (did you mean 'PUB'?)" in p.message


def test_long_socket_type_suggests_the_upper_case_name(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              in: {type: pull}
        """)
    assert at(p) == (6, 18)
    assert "got 'pull' (did you mean 'PULL'?)" in p.message


# -- names and patterns -----------------------------------------------------------------


def test_topology_name_with_upper_case(problem):
    p = problem("""\
        topology: Weather
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (1, 11)
    assert "topology must be lower-case letters, digits, '_' and '-'; got 'Weather'" in p.message


def test_node_name_with_a_dot(problem):
    p = problem("""\
        topology: t
        nodes:
          my.node: {run: m:f}
        """)
    assert at(p) == (3, 3)
    assert "nodes: 'my.node' is not a valid name" in p.message


def test_socket_name_starting_with_a_digit(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets: {1st: PUB}
        """)
    assert at(p) == (5, 15)
    assert "nodes.a.sockets: '1st' is not a valid name" in p.message


def test_host_name_with_a_dot(problem):
    p = problem("""\
        topology: t
        hosts:
          edge.example: {address: 10.0.0.2}
        nodes:
          a: {run: m:f}
        """)
    assert at(p) == (3, 3)
    assert "hosts: 'edge.example' is not a valid name: use a name of letters, digits" in p.message


def test_process_name_with_a_space(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, process: my proc}
        """)
    assert at(p) == (3, 26)
    assert "nodes.a.process must be a name of letters, digits, '_' and '-' that starts with a letter or '_'; got 'my proc'" in p.message


@pytest.mark.parametrize("run", [
    "weather.nodes.server", "weather:nodes:server", ":server", "weather:", "weather nodes:server",
    "weather.nodes:server()", "1weather:server",
])
def test_run_must_be_module_colon_callable(problem, run):
    p = problem(f"""\
        topology: t
        nodes:
          a:
            run: "{run}"
        """)
    assert at(p) == (4, 10)
    assert 'nodes.a.run must be an importable "module:callable"' in p.message


def test_run_with_a_trailing_newline_is_refused(problem):
    # A block scalar keeps its newline; Python's `$` would match before it.
    p = problem("""\
        topology: t
        nodes:
          a:
            run: |
              m:f
        """)
    assert at(p) == (4, 10)
    assert 'nodes.a.run must be an importable "module:callable"' in p.message


def test_topology_name_with_a_trailing_newline_is_refused(problem):
    p = problem('topology: "weather\\n"\nnodes: {a: {run: m:f}}\n')
    assert at(p) == (1, 11)
    assert "topology must be lower-case letters" in p.message


@pytest.mark.parametrize("run", ["m:f", "weather.nodes:server", "pkg.mod:Class.method", "_p:_f"])
def test_run_accepts_module_colon_callable(topology, run):
    assert topology(f"topology: t\nnodes: {{a: {{run: '{run}'}}}}\n").nodes["a"].run == run


@pytest.mark.parametrize("link, col", [
    ("a.out b.in", 5),
    ("a.out => b.in", 5),
    ("a -> b", 5),
    ("a.out.x -> b.in", 5),
])
def test_short_link_syntax(problem, link, col):
    p = problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f}}
        links:
          - {link}
        """)
    assert at(p) == (5, col)
    assert 'links[0] must be "NODE.SOCKET -> NODE.SOCKET"' in p.message


def test_long_link_reference_syntax(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f}
        links:
          - {from: a, to: b.in}
        """)
    assert at(p) == (5, 12)
    assert 'links[0].from must be "NODE.SOCKET"' in p.message


# -- replicas ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -1])
def test_replicas_below_one(problem, n):
    p = problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f, replicas: {n}}}
        """)
    assert at(p) == (3, 27)
    assert f"nodes.a.replicas must be at least 1; got {n}" in p.message


def test_replicas_has_an_upper_bound(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, replicas: 99999999999999999999}
        """)
    assert at(p) == (3, 27)
    assert "nodes.a.replicas must be at most" in p.message


def test_replicas_written_as_a_whole_float_counts(topology):
    # JSON Schema (and so every editor) reads 2.0 as the integer 2: so does topo.
    assert topology("topology: t\nnodes: {a: {run: m:f, replicas: 2.0}}\n").nodes["a"].replicas == 2


# -- what is accepted -------------------------------------------------------------------


def test_restart_no_bare_is_accepted(topology):
    from topo.file.model import Restart

    assert topology("topology: t\nnodes: {a: {run: m:f, restart: no}}\n").nodes["a"].restart is Restart.NO


def test_x_keys_hold_anything(topology):
    topology("topology: t\nx-a: 1\nx-b: [{c: d}]\nnodes: {a: {run: m:f}}\n")


def test_every_option_name_of_the_schema_is_accepted_with_its_kind_of_value():
    from topo.file.loader import load_text
    from topo.file.schema import SOCKET_OPTIONS, TEXT_OPTIONS

    options = ", ".join(f"{name}: {'x' if name in TEXT_OPTIONS else 1}" for name in SOCKET_OPTIONS)
    # structure only: which socket type may carry which option is a rule of topo.file.validate
    t, found = load_text(f"""\
topology: t
nodes:
  a: {{run: m:f, sockets: {{out: {{type: PUSH, options: {{{options}}}}}}}}}
""", "f.yaml")
    assert found == []
    assert t is not None and set(t.nodes["a"].sockets["out"].options) == set(SOCKET_OPTIONS)


def test_restart_window_refuses_nan_and_infinity(problems) -> None:  # type: ignore[no-untyped-def]
    for bad in (".nan", ".inf"):
        found = problems(f"""
            topology: t
            nodes:
              a: {{run: "m:f", restart_window: {bad}, sockets: {{o: PUSH}}}}
              b: {{run: "m:f", sockets: {{i: PULL}}}}
            links: [a.o -> b.i]
        """)
        assert any("restart_window" in p.message for p in found), (bad, found)


def test_run_may_come_from_defaults_and_its_absence_is_located(problems) -> None:  # type: ignore[no-untyped-def]
    assert problems("""
        topology: t
        defaults: {run: "m:f"}
        nodes:
          a: {sockets: {o: PUSH}}
          b: {sockets: {i: PULL}}
        links: [a.o -> b.i]
    """) == []
    found = problems("""
        topology: t
        nodes:
          a: {sockets: {o: PUSH}}
          b: {run: "m:f", sockets: {i: PULL}}
        links: [a.o -> b.i]
    """)
    assert [(p.pos.line, p.pos.col, p.message) for p in found] == [(4, 3, "nodes.a: missing required key 'run' (a Python function) or 'exec' (a program)")]


# -- names become file names ------------------------------------------------------------


def test_a_topology_name_too_long_for_a_file_name_is_a_located_problem(problem):
    p = problem(f"topology: {'t' * 256}\nnodes:\n  a: {{run: m:f}}\n")
    assert at(p) == (1, 11)
    assert "topology is 256 characters long; at most 200 (it names files)" in p.message


def test_a_node_name_too_long_for_its_log_file_is_a_located_problem(problem):
    p = problem(f"topology: t\nnodes:\n  {'n' * 201}: {{run: m:f}}\n")
    assert at(p) == (3, 3)
    assert "201 characters long; at most 200" in p.message


def test_names_of_the_longest_allowed_length_load(topology):
    t = topology(f"topology: {'t' * 200}\nnodes:\n  {'n' * 200}: {{run: m:f, replicas: 2}}\n")
    assert t.name == "t" * 200
