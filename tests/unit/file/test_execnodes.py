"""Exec nodes in the file: ``exec:``/``ready:`` read, checked and located; programs found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from topo.errors import InvalidTopology
from topo.file.execnodes import check_programs, placeholders, resolve_program, socket_var, start_order
from topo.file.model import Ready
from topo.file.runref import load_resolved

from ..helpers import at


def test_an_exec_node_is_read_with_its_arguments_and_ready(topology):
    t = topology("""\
        topology: t
        nodes:
          a: {exec: [./prog, "--out={sockets.out}"], ready: notify, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    a = t.nodes["a"]
    assert a.exec == ("./prog", "--out={sockets.out}") and a.run == "" and a.ready is Ready.NOTIFY
    assert t.nodes["b"].exec == () and t.nodes["b"].ready is None


def test_an_exec_node_does_not_take_run_from_defaults(topology):
    t = topology("""\
        topology: t
        defaults: {run: m:f}
        nodes:
          a: {exec: [prog], sockets: {out: PUSH}}
          b: {sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert t.nodes["a"].run == "" and t.nodes["b"].run == "m:f"


def test_run_and_exec_together_name_both_lines(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            exec: [prog]
        """)
    assert at(p) == (5, 11)
    assert p.message == "node 'a' has both `run:` (line 4) and `exec:` (line 5): a node is Python code or a program, remove one"


@pytest.mark.parametrize("value, expected", [('"prog"', "must be a list"), ("[]", ""), ("[1]", "")])
def test_exec_must_be_a_non_empty_list_of_strings(problems, value, expected):
    found = problems(f"""\
        topology: t
        nodes:
          a: {{exec: {value}}}
        """)
    assert len(found) == 1 and at(found[0])[0] == 3
    assert expected in found[0].message


def test_ready_on_a_python_node_is_an_error(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, ready: notify}
        """)
    assert at(p) == (3, 24)
    assert "`ready:` is for exec nodes" in p.message


def test_an_exec_node_cannot_share_a_process(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {exec: [prog], process: p}
          b: {run: m:f, process: p}
        """)
    assert at(p) == (3, 30)
    assert p.message == "node 'a' is an exec node, a program in a process of its own: it cannot share process 'p' with b"


def test_an_exec_node_with_replicas_cannot_name_a_process(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {exec: [prog], process: p, replicas: 2}
        """)
    assert "remove `process:`" in p.message


def test_a_placeholder_naming_no_socket_is_located_at_its_argument(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {exec: [prog, "{sockets.tasks}"], sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert at(p) == (3, 20)
    assert "names socket 'tasks', which the node does not declare (its sockets: out)" in p.message


def test_a_malformed_placeholder_is_an_error(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {exec: [prog, "{sockets.out.port}"], sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert "has a placeholder that is not {sockets.NAME}" in p.message


def test_sockets_whose_variables_collide_are_refused(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {exec: [prog], sockets: {out-a: PUSH, OUT_A: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out-a -> b.in, a.OUT_A -> b.in]
        """)
    assert at(p) == (3, 44)
    assert "would both be handed to the program as TOPO_SOCKET_OUT_A_*" in p.message


def test_a_cycle_of_exec_senders_is_a_warning_naming_it_and_the_order(warnings):
    found = warnings("""\
        topology: t
        nodes:
          a: {exec: [prog], sockets: {out: PUSH, in: PULL}}
          b: {exec: [prog], sockets: {out: PUSH, in: PULL}}
        links: [a.out -> b.in, b.out -> a.in]
        """)
    assert len(found) == 1 and at(found[0]) == (3, 13)
    assert found[0].message == ("exec nodes a -> b -> a send to each other in a cycle: "
                                "they start in the order a, b (a does not wait for b)")


def test_placeholders_are_found_with_their_offsets():
    assert placeholders("--x={sockets.a}:{sockets.b-c.bind}") == [(4, "a", None), (16, "b-c", "bind")]
    assert placeholders("{sockets.a.port}") == [(0, None, None)]
    assert placeholders("{other} {socket.a}") == []


def test_socket_variable_names():
    assert socket_var("tasks") == "TOPO_SOCKET_TASKS"
    assert socket_var("my-out_2") == "TOPO_SOCKET_MY_OUT_2"


def test_start_order_puts_receivers_first_and_breaks_cycles_at_the_first_node():
    assert start_order({"a": ["b"], "b": ["c"], "c": []}) == (["c", "b", "a"], [], set())
    # a python receiver (not a key) is no exec node to order
    assert start_order({"a": ["py"]}) == (["a"], [], set())
    order, cycles, dropped = start_order({"x": [], "a": ["b"], "b": ["c"], "c": ["a"]})
    assert order == ["x", "a", "c", "b"] and cycles == [["a", "b", "c"]] and dropped == {("a", "b")}
    # a node waiting on a cycle is not part of it: the cycle is broken within, once
    order, cycles, dropped = start_order({"a": ["b"], "b": ["c"], "c": ["b"]})
    assert order == ["b", "a", "c"] and cycles == [["b", "c"]] and dropped == {("b", "c")}


# -- the program, found as a shell finds it ---------------------------------------------


def _exe(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_a_relative_program_resolves_against_the_files_directory(tmp_path):
    _exe(tmp_path / "prog")
    assert resolve_program("./prog", str(tmp_path / "t.yaml")) == str(tmp_path / "prog")
    assert resolve_program("./gone", str(tmp_path / "t.yaml")) is None


def test_a_bare_name_is_looked_up_on_path(tmp_path):
    _exe(tmp_path / "myprog")
    assert resolve_program("myprog", "t.yaml", path=str(tmp_path)) == str(tmp_path / "myprog")
    assert resolve_program("myprog", "t.yaml", path=os.devnull) is None


def _file(tmp_path: Path, program: str, host: str = "") -> str:
    (tmp_path / "t.yaml").write_text(
        "topology: t\n"
        + ("hosts: {local: {address: 127.0.0.1}, far: {address: 10.0.0.9}}\n" if host else "")
        + f"nodes:\n  a:\n    exec: [{program}, x]\n" + (f"    host: {host}\n" if host else ""))
    return str(tmp_path / "t.yaml")


def test_topo_check_finds_a_missing_program_at_its_value(tmp_path):
    with pytest.raises(InvalidTopology) as err:
        load_resolved(_file(tmp_path, "./gone"))
    (p,) = err.value.errors
    assert at(p) == (4, 12)
    assert p.message == "node 'a': program './gone' not found (relative to the topology file's directory)"


def test_topo_check_finds_a_program_that_is_not_executable(tmp_path):
    _exe(tmp_path / "prog", 0o644)
    with pytest.raises(InvalidTopology) as err:
        load_resolved(_file(tmp_path, "./prog"))
    assert "program './prog' is not executable" in err.value.errors[0].message


def test_an_executable_program_passes_and_other_hosts_are_not_looked_at(tmp_path):
    _exe(tmp_path / "prog")
    assert load_resolved(_file(tmp_path, "./prog")).nodes["a"].exec == ("./prog", "x")
    t = load_resolved(_file(tmp_path, "./gone", host="far"))
    assert check_programs(t, "local") == []


def test_a_curve_link_to_an_exec_node_is_refused(problem, topology):
    text = """\
        topology: t
        hosts: {local: {address: 127.0.0.1}, far: {address: 10.0.0.9}}
        nodes:
          a: {exec: [prog], sockets: {out: PUSH}}
          b: {run: m:f, host: far, sockets: {in: PULL}}
        links: [%s]
        """
    p = problem(text % "a.out -> b.in")
    assert at(p) == (6, 9)
    assert "is tcp with CURVE, and a is an exec node" in p.message
    assert topology(text % "{from: a.out, to: b.in, curve: false}").links[0].curve is False


def test_watchdog_is_read_and_planned_for_an_exec_node(topology):
    from topo.plan.planner import make_plan

    t = topology("""\
        topology: t
        nodes:
          a: {exec: [prog], ready: notify, watchdog: 2.5, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert t.nodes["a"].watchdog == 2.5 and t.nodes["b"].watchdog is None
    plan = make_plan(t)
    assert plan.instances["a"].watchdog == 2.5 and plan.instances["b"].watchdog == 0.0


def test_watchdog_on_a_python_node_is_an_error(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, watchdog: 3, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links: [a.out -> b.in]
        """)
    assert "node 'a': `watchdog:` is for exec nodes" in p.message and p.pos.line == 3


@pytest.mark.parametrize("value", ["0", "-1", "soon", "true"])
def test_watchdog_must_be_a_positive_number(problems, value):
    found = problems(f"""\
        topology: t
        nodes:
          a: {{exec: [prog], watchdog: {value}, sockets: {{out: PUSH}}}}
          b: {{run: m:f, sockets: {{in: PULL}}}}
        links: [a.out -> b.in]
        """)
    assert any("nodes.a.watchdog" in p.message for p in found)


def test_notify_and_watchdog_are_for_another_host_too(problems):
    found = problems("""\
        topology: t
        hosts: {local: {address: 127.0.0.1}, h2: {address: 10.0.0.2}}
        nodes:
          a: {exec: [prog], host: h2, ready: notify, watchdog: 1}
        """)
    assert found == []  # (its agent makes its NOTIFY_SOCKET and go pipe on h2: topo.hosts.programs)
