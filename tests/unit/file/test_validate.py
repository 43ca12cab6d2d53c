"""Semantic rules: parts of the file that must agree with each other."""

from __future__ import annotations

import pytest

from topo.errors import InvalidTopology
from topo.file.validate import load

from ..helpers import at

# -- links to things that exist ---------------------------------------------------------


def test_link_to_a_missing_node_points_at_the_right_half(problem):
    p = problem("""\
        topology: t
        nodes:
          worker: {run: m:f, sockets: {out: PUSH}}
        links:
          - worker.out -> wroker.in
        """)
    assert at(p) == (5, 19)
    assert "link names node 'wroker', which does not exist (did you mean 'worker'?)" in p.message


def test_link_from_a_missing_node_points_at_the_left_half(problem):
    p = problem("""\
        topology: t
        nodes:
          sink: {run: m:f, sockets: {in: PULL}}
        links:
          - ghost.out -> sink.in
        """)
    assert at(p) == (5, 5)
    assert p.message == "link names node 'ghost', which does not exist"


def test_link_to_a_missing_socket(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH, more: PUSH}}
          b: {run: m:f, sockets: {input: PULL}}
        links:
          - a.out -> b.input
          - a.more -> b.inpt
        """)
    assert at(p) == (7, 15)
    assert "link names socket 'inpt' of node 'b', which has no such socket (did you mean 'input'?)" in p.message


def test_long_form_link_to_a_missing_socket_points_at_to(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.inn}
          - a.out -> b.in
        """)
    assert at(p) == (6, 23)
    assert "link names socket 'inn' of node 'b'" in p.message


def test_link_of_a_quoted_short_form_points_inside_the_quotes(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
        links:
          - "a.out -> nobody.in"
        """)
    assert at(p) == (5, 15)


# -- pairs ------------------------------------------------------------------------------


def test_invalid_pair(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: SUB}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (6, 5)
    assert "link a.out -> b.in: PUSH -> SUB is not a valid pair; a PUSH links to PULL" in p.message


def test_reversed_pair_says_which_way_to_write_it(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {news: PUB}}
          b: {run: m:f, sockets: {news: SUB}}
        links:
          - b.news -> a.news
        """)
    assert at(p) == (6, 5)
    assert "SUB -> PUB is not a valid pair" in p.message
    assert "write a.news -> b.news" in p.message


def test_reversed_request_reply_says_which_way_to_write_it(problem):
    p = problem("""\
        topology: t
        nodes:
          client: {run: m:f, sockets: {req: REQ}}
          server: {run: m:f, sockets: {rep: REP}}
        links:
          - {from: server.rep, to: client.req}
        """)
    assert at(p) == (6, 5)
    assert "write client.req -> server.rep" in p.message


@pytest.mark.parametrize("src, dst", [
    ("PUB", "SUB"), ("PUB", "XSUB"), ("XPUB", "SUB"), ("XPUB", "XSUB"), ("PUSH", "PULL"),
    ("REQ", "REP"), ("REQ", "ROUTER"), ("DEALER", "REP"), ("DEALER", "ROUTER"),
    ("DEALER", "DEALER"), ("ROUTER", "ROUTER"), ("PAIR", "PAIR"),
])
def test_every_pair_libzmq_accepts_is_valid(topology, src, dst):
    topology(f"""\
        topology: t
        nodes:
          a: {{run: m:f, sockets: {{s: {src}}}}}
          b: {{run: m:f, sockets: {{s: {dst}}}}}
        links: [a.s -> b.s]
        """)


@pytest.mark.parametrize("src, dst", [
    ("PUB", "PULL"), ("SUB", "SUB"), ("PUSH", "SUB"), ("REP", "REQ"), ("ROUTER", "DEALER"),
    ("PAIR", "PUSH"), ("PULL", "PUSH"), ("REQ", "REQ"), ("XSUB", "XPUB"),
])
def test_pairs_libzmq_refuses_are_invalid(problem, src, dst):
    assert "is not a valid pair" in problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f, sockets: {{s: {src}}}}}
          b: {{run: m:f, sockets: {{s: {dst}}}}}
        links: [a.s -> b.s]
        """).message


# -- PAIR -------------------------------------------------------------------------------


def test_pair_with_two_links(problem):
    p = problem("""\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              p: PAIR
          b: {run: m:f, sockets: {p: PAIR}}
          c: {run: m:f, sockets: {p: PAIR}}
        links:
          - a.p -> b.p
          - a.p -> c.p
        """)
    assert at(p) == (6, 7)
    assert "PAIR socket a.p has 2 links; a PAIR has exactly one" in p.message


def test_pair_with_replicas(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {p: PAIR}}
          b:
            run: m:f
            replicas: 2
            sockets: {p: PAIR}
        links:
          - a.p -> b.p
        """)
    assert at(p) == (6, 15)
    assert "b.p: a PAIR socket has exactly one peer, so its node cannot have replicas" in p.message


# -- sockets ----------------------------------------------------------------------------


def test_socket_with_no_link_is_an_error_and_a_warning_when_lenient(warnings, problems):
    text = """\
        topology: t
        nodes:
          a:
            run: m:f
            sockets:
              out: PUSH
              spare: PUB
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - a.out -> b.in
        """
    [p] = problems(text)  # most often a link forgotten: the file is invalid
    assert at(p) == (7, 7) and not p.is_warning
    assert p.message == "socket a.spare (PUB) has no link: add one under `links:` or remove the socket"
    [w] = warnings(text)  # --lenient, while the file is edited: the socket is created, unconnected
    assert at(w) == (7, 7)
    assert str(w).endswith(":7:7: warning: " + p.message + " [an error without --lenient]")


def test_subscribe_on_a_socket_that_is_not_sub(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: {type: PUB, subscribe: [x]}}}
          b: {run: m:f, sockets: {in: SUB}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (3, 55)
    assert "a.out: `subscribe` is for SUB sockets, and this one is PUB" in p.message


def test_subscribe_on_xsub_explains_how_xsub_subscribes(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUB}}
          b: {run: m:f, sockets: {in: {type: XSUB, subscribe: ""}}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (4, 55)
    assert "an XSUB subscribes by sending messages" in p.message


def test_socket_linked_to_itself(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {d: DEALER}}
        links:
          - a.d -> a.d
        """)
    assert at(p) == (5, 5)
    assert "link a.d -> a.d links a socket to itself" in p.message


def test_two_sockets_of_one_node_may_be_linked(topology):
    topology("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH, in: PULL}}
        links:
          - a.out -> a.in
        """)


# -- hosts and processes ----------------------------------------------------------------


def test_node_on_a_host_that_does_not_exist(problem):
    p = problem("""\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {address: 10.0.0.2}
        nodes:
          a: {run: m:f, host: egde}
        """)
    assert at(p) == (6, 23)
    assert "node 'a': no host named 'egde' (did you mean 'edge'?)" in p.message


def test_node_without_host_when_several_hosts_and_none_is_local(problem):
    p = problem("""\
        topology: t
        hosts:
          one: {address: 10.0.0.1}
          two: {address: 10.0.0.2}
        nodes:
          a: {run: m:f, host: one}
          b: {run: m:f}
        """)
    assert at(p) == (7, 3)
    assert "node 'b' needs `host:`: there are several hosts and none is named 'local'" in p.message


def test_transport_inproc_across_processes_is_too_narrow(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.in, transport: inproc}
        """)
    assert at(p) == (6, 40)
    assert "transport inproc is too narrow" in p.message
    assert "which needs ipc or wider" in p.message


def test_transport_ipc_across_hosts_is_too_narrow(problem):
    p = problem("""\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {address: 10.0.0.2, launch: [ssh, edge]}
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, host: edge, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.in, transport: ipc}
        """)
    assert at(p) == (9, 40)
    assert "transport ipc is too narrow" in p.message
    assert "which needs tcp or wider" in p.message


def test_curve_true_on_a_link_that_is_not_tcp_is_an_error(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.in, curve: true}
        """)
    assert at(p) == (6, 36)
    assert "`curve: true` on a link that is not tcp (both ends run on host 'local')" in p.message
    assert "add `transport: tcp`" in p.message


def test_curve_on_a_tcp_link_is_fine_and_the_security_keys_are_checked(problem, topology):
    load_ok = """\
        topology: t
        security: {curve: false, max_message: 1048576}
        nodes:
          a: {run: m:f, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - {from: a.out, to: b.in, transport: tcp, curve: true}
        """
    t = topology(load_ok)
    assert t.curve is False and t.max_message == 1048576 and t.links[0].curve is True
    p = problem(load_ok.replace("max_message: 1048576", "max_message: 100"))
    assert at(p) == (2, 39) and "1024" in p.message
    p = problem(load_ok.replace("curve: false,", "encrypt: false,"))
    assert "encrypt" in p.message


def test_transport_inproc_is_too_narrow_for_replicas_of_one_node(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, process: p, sockets: {out: PUSH}}
          b: {run: m:f, process: p, replicas: 2, sockets: {in: PULL}}
          c: {run: m:f, sockets: {out: PUSH}}
        links:
          - {from: a.out, to: b.in, transport: inproc}
          - {from: c.out, to: b.in, transport: inproc}
        """)
    assert at(p) == (8, 40)
    assert "link c.out -> b.in: transport inproc is too narrow" in p.message


def test_conflicting_env_in_one_process(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, process: p, env: {MODE: fast}}
          b: {run: m:f, process: p, env: {MODE: slow}}
        """)
    assert at(p) == (4, 34)
    assert "node 'b' and node 'a' set MODE to different values, and both run in process 'p'" in p.message


def test_a_conflict_of_environments_names_the_variable_not_its_values(problem):
    """Environment variables carry secrets: a message (terminal, CI log) shows neither value."""
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, process: p, env: {DB_PASSWORD: s3cr3t-one}}
          b: {run: m:f, process: p, env: {DB_PASSWORD: s3cr3t-two}}
        """)
    assert "DB_PASSWORD" in p.message
    assert "s3cr3t" not in p.message


@pytest.mark.parametrize("address", ["-oProxyCommand=sh -c 'id > /tmp/x'", "edge one", "a..b", "-edge",
                                     "x" * 254, "edge_1", "[::1]", ""])
def test_an_address_that_is_not_an_ip_or_a_host_name_is_refused(problems, address):
    """The default launch is `ssh -- ADDRESS`; an address is also bound and dialled."""
    found = problems(f"""\
        topology: t
        hosts:
          local: {{address: 127.0.0.1}}
          edge: {{address: {address!r}}}
        nodes:
          a: {{run: m:f, host: edge}}
        """)
    assert [at(p) for p in found if "is not an IP address or a host name" in p.message] == [(4, 19)], found


@pytest.mark.parametrize("address", ["10.0.0.2", "::1", "fe80::1", "edge1", "edge-1.example.com", "edge.example."])
def test_ip_addresses_and_host_names_are_addresses(topology, address):
    t = topology(f"""\
        topology: t
        hosts:
          local: {{address: 127.0.0.1}}
          edge: {{address: {address!r}}}
        nodes:
          a: {{run: m:f, host: edge}}
        """)
    assert t.hosts["edge"].address == address


def test_same_env_in_one_process_is_fine(topology):
    topology("""\
        topology: t
        defaults: {env: {MODE: fast}}
        nodes:
          a: {run: m:f, process: p}
          b: {run: m:f, process: p, env: {OTHER: x}}
        """)


def test_nodes_of_one_process_on_different_hosts(problem):
    p = problem("""\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {address: 10.0.0.2}
        nodes:
          a: {run: m:f, process: p}
          b: {run: m:f, process: p, host: edge}
        """)
    assert at(p) == (7, 35)
    assert "node 'b' is in process 'p' with 'a', which runs on host 'local', not 'edge': a process runs on one host" in p.message


def test_implicit_process_name_collides_with_a_declared_one(problem):
    p = problem("""\
        topology: t
        nodes:
          backend: {run: m:f}
          cache: {run: m:f, process: backend}
        """)
    assert at(p) == (3, 3)
    assert "node 'backend' has no `process:`, so its own process is named 'backend'" in p.message
    assert "give it `process: backend`" in p.message


# -- binding ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "false"])
def test_both_ends_forced_the_same_way(problem, value):
    p = problem(f"""\
        topology: t
        nodes:
          a: {{run: m:f, sockets: {{out: {{type: PUSH, bind: {value}}}}}}}
          b: {{run: m:f, sockets: {{in: {{type: PULL, bind: {value}}}}}}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (6, 5)
    assert f"both ends are set to {'bind' if value == 'true' else 'connect'} (`bind: {value}`)" in p.message


def test_duplicate_link(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: PUB}}
          b: {run: m:f, sockets: {in: SUB}}
        links:
          - a.out -> b.in
          - {from: a.out, to: b.in}
        """)
    assert at(p) == (7, 5)
    assert "link a.out -> b.in is written twice (first on line 6)" in p.message


# -- all problems at once ---------------------------------------------------------------


def test_all_problems_are_reported_at_once_in_file_order(problems):
    found = problems("""\
        topology: t
        nodes:
          a:
            run: m:f
            restart: sometimes
            sockets: {out: PUSH}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - a.out -> b.in
          - a.out -> c.in
        hosts:
          edge: {adress: 10.0.0.2}
        """)
    assert [(at(p), p.message.split(" (")[0].split(";")[0]) for p in found] == [
        ((5, 14), "nodes.a.restart must be one of no, on-failure, always"),
        ((10, 14), "link names node 'c', which does not exist"),
        ((12, 3), "hosts.edge: missing required key 'address'"),
        ((12, 10), "unknown key 'adress' in hosts.edge"),
    ]


def test_unrelated_semantic_problems_in_order(problems):
    found = problems("""\
        topology: t
        nodes:
          a: {run: m:f, host: nowhere, sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: SUB}}
          c: {run: m:f, sockets: {lonely: PULL}}
        links:
          - a.out -> b.in
        """)
    assert [at(p) for p in found] == [(3, 23), (5, 27), (7, 5)]
    assert "no host named 'nowhere'" in found[0].message
    assert "c.lonely (PULL) has no link" in found[1].message
    assert "PUSH -> SUB is not a valid pair" in found[2].message


def test_invalid_topology_carries_sorted_problems_and_formats_them(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("topology: T\nnodes:\n  a: {run: m:f, replicas: 0}\n")
    with pytest.raises(InvalidTopology) as info:
        load(str(path))
    err = info.value
    assert err.exit_code == 2
    assert [at(p) for p in err.problems] == [(1, 11), (3, 27)]
    assert str(err).splitlines() == [str(p) for p in err.problems]
    assert str(err).splitlines()[0].startswith(f"{path}:1:11: topology must be")


# -- one mistake, one message -----------------------------------------------------------


def test_bad_socket_type_is_not_reported_again_by_its_links(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {out: push}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (3, 32)


def test_bad_sockets_mapping_is_not_reported_again_by_its_links(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: [PUSH]}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - a.out -> b.in
        """)
    assert at(p) == (3, 26)
    assert "nodes.a.sockets must be a mapping, not a list" in p.message


def test_node_without_run_is_reported_once_and_its_good_links_not_at_all(problems):
    found = problems("""\
        topology: t
        nodes:
          a: {sockets: {out: PUSH}}
          b: {run: m:f, sockets: {in: PULL}}
        links:
          - a.out -> b.in
          - a.other -> b.in
        """)
    # the missing run, and the link to a socket that really is missing; nothing about a.out
    assert [(at(p), p.message) for p in found] == [
        ((3, 3), "nodes.a: missing required key 'run' (a Python function) or 'exec' (a program)"),
        ((7, 5), "link names socket 'other' of node 'a', which has no such socket"),
    ]


def test_missing_file_is_a_usage_error(tmp_path):
    from topo.errors import UsageError

    with pytest.raises(UsageError, match="cannot read the file"):
        load(str(tmp_path / "absent.yaml"))


def test_replicas_processes_do_not_collide_with_a_process_named_like_the_node(problems) -> None:  # type: ignore[no-untyped-def]
    assert problems("""
        topology: t
        nodes:
          a: {run: "m:f", replicas: 2, sockets: {o: PUSH}}
          b: {run: "m:f", process: a, sockets: {i: PULL}}
        links: [a.o -> b.i]
    """) == []


def test_option_values_are_typed_and_owned_by_their_socket_type(problems):
    found = problems("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {o: {type: PUB, options: {xpub_verbose: 0}}}}
          b: {run: m:f, sockets: {i: SUB}}
          c: {run: m:f, sockets: {o: {type: PUSH, options: {sndhwm: lots}}}}
          d: {run: m:f, sockets: {i: PULL}}
        links: [a.o -> b.i, c.o -> d.i]
        """)
    messages = [p.message for p in found]
    assert any("options.sndhwm must be an integer or true or false, not a string" in m for m in messages), messages
    assert any("option 'xpub_verbose' is for XPUB sockets, and this one is PUB" in m for m in messages), messages


def test_topo_is_a_reserved_node_name(problems):
    found = problems("""\
        topology: t
        nodes:
          topo: {run: m:f, sockets: {o: PUSH}}
          b: {run: m:f, sockets: {i: PULL}}
        links: [topo.o -> b.i]
        """)
    assert [(at(p), "reserved" in p.message) for p in found] == [((3, 3), True)]


def test_xpub_nodrop_is_allowed_on_a_declared_pub(problems):
    assert problems("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {o: {type: PUB, options: {xpub_nodrop: 1}}}}
          b: {run: m:f, sockets: {i: SUB}}
        links: [a.o -> b.i]
        """) == []


def test_a_link_of_too_many_connections_is_refused_before_any_expansion(problems):
    """A PUB and a SUB with 1,000 replicas each, one link: a million connections to plan
    (28 s and 1.7 GB before); refused at the link, before the replicas are expanded."""
    found = problems("""\
        topology: t
        nodes:
          p: {run: m:f, replicas: 1000, sockets: {out: PUB}}
          s: {run: m:f, replicas: 1000, sockets: {in: SUB}}
        links: [p.out -> s.in]
        """)
    assert [(at(p), p.message) for p in found] == [((5, 9), "link p.out -> s.in makes 1000000 connections "
                                                   "(1000 x 1000 replicas), more than 100000 (TOPO_MAX_LINK_PAIRS raises it)")]


def test_too_many_instances_are_refused_at_the_node_that_crosses_the_limit(problems, monkeypatch):
    monkeypatch.setenv("TOPO_MAX_INSTANCES", "10")
    found = problems("""\
        topology: t
        nodes:
          a: {run: m:f, replicas: 6}
          b: {run: m:f, replicas: 6}
        """)
    assert [at(p) for p in found] == [(4, 27)]  # its replicas
    assert "more than 10 instances with node 'b' (12 so far)" in found[0].message


def test_the_limits_can_be_raised(topology, monkeypatch):
    monkeypatch.setenv("TOPO_MAX_LINK_PAIRS", "250000")
    t = topology("""\
        topology: t
        nodes:
          p: {run: m:f, replicas: 500, sockets: {out: PUSH}}
          s: {run: m:f, replicas: 300, sockets: {in: PULL}}
        links: [p.out -> s.in]
        """)
    assert t.nodes["p"].replicas == 500
