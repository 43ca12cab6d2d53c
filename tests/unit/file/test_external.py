"""External endpoints (a socket's ``external:``): their form, clashes, and what they change
of the other rules. Each problem is located at the endpoint as written."""

from __future__ import annotations

import pytest

from topo.file.external import parse
from topo.file.validate import load

from ..helpers import at


def _socket(value: str, node_extra: str = "") -> str:
    return f"""\
        topology: t
        nodes:
          api:
            run: m:f{node_extra}
            sockets:
              s: {value}
        """


def test_a_socket_with_only_external_endpoints_needs_no_link(problems, tmp_path):
    assert problems(_socket("{type: REP, external: {bind: [tcp://0.0.0.0:5555]}}")) == []
    assert problems(_socket("{type: DEALER, external: {connect: tcp://broker:6000}}")) == []


def test_without_external_a_socket_without_link_is_still_reported(problems):
    found = problems(_socket("REP"))
    assert len(found) == 1 and "has no link" in found[0].message


def test_the_endpoints_keep_their_order_and_positions(tmp_path):
    path = tmp_path / "t.yaml"
    line = "      s: {type: DEALER, external: {bind: 'ipc:///tmp/a.sock', connect: [tcp://b:1, tcp://c:2]}}"
    path.write_text("topology: t\nnodes:\n  api:\n    run: m:f\n    sockets:\n" + line + "\n")
    sock = load(str(path)).nodes["api"].sockets["s"]
    assert [(e.address, e.binds, e.pos.line, e.pos.col) for e in sock.external] == [
        ("ipc:///tmp/a.sock", True, 6, line.index("'ipc") + 1), ("tcp://b:1", False, 6, line.index("tcp://b") + 1),
        ("tcp://c:2", False, 6, line.index("tcp://c") + 1)]


@pytest.mark.parametrize("endpoint, binds, words", [
    ("inproc://x", True, "inproc:// reaches only sockets of the same process"),
    ("tcp://*:0", True, "needs a fixed port"),
    ("tcp://*:*", True, "needs a fixed port"),
    ("tcp://h:0", False, "a connect needs the port to dial"),
    ("tcp://h:", False, "the port is empty"),
    ("tcp://h", True, "tcp:// needs a host and a port"),
    ("tcp://h:99999", False, "port '99999' is not a number from 1 to 65535"),
    ("tcp://*:5555", False, "a connect needs the host to dial"),
    ("tcp://-oProxyCommand=x:22", False, "is not an IP address or a host name"),
    ("tcp://[zz]:7", True, "is not an IPv6 address in brackets"),
    ("tcp://a;b:7", False, "source address"),
    ("ipc://", True, "ipc:// needs a path"),
    ("ipc://*", True, "nobody outside can know"),
    ("ipc:///" + "x" * 120, True, "more than the 107"),
    ("udp://h:1", False, "transport 'udp' is not for external endpoints"),
    ("h:1", False, "TRANSPORT://ADDRESS"),
    ("tcp://h: 1", False, "no spaces"),
])
def test_malformed_endpoints_say_what_is_wrong(endpoint: str, binds: bool, words: str) -> None:
    result = parse(endpoint, binds)
    assert isinstance(result, str) and words in result


@pytest.mark.parametrize("endpoint, binds", [
    ("tcp://0.0.0.0:5555", True), ("tcp://*:5555", True), ("tcp://127.0.0.1:1", False),
    ("tcp://broker.example.com:6000", False), ("tcp://[::1]:7000", True), ("tcp://eth0:5555", True),
    ("ipc:///tmp/app.sock", True), ("ipc://@abstract", False), ("ipc://relative.sock", False),
])
def test_well_formed_endpoints_pass(endpoint: str, binds: bool) -> None:
    assert not isinstance(parse(endpoint, binds), str)


def test_a_bad_endpoint_is_located_and_named(problem):
    value = "{type: REP, external: {bind: [tcp://0.0.0.0:5555, inproc://x]}}"
    p = problem(_socket(value))
    assert at(p) == (6, len("      s: ") + value.index("inproc") + 1)
    assert p.message.startswith("api.s: external bind 'inproc://x': inproc:// reaches only")


def test_an_endpoint_written_twice(problem):
    value = "{type: DEALER, external: {connect: [tcp://b:1, tcp://b:1]}}"
    p = problem(_socket(value))
    assert at(p) == (6, len("      s: ") + value.rindex("tcp://b:1") + 1)
    assert p.message == "api.s: external connect 'tcp://b:1' is written twice"


def test_an_external_bind_of_a_node_with_replicas_is_refused(problem):
    p = problem(_socket("{type: PUB, external: {bind: tcp://*:7000}}", "\n            replicas: 2"))
    assert "node 'api' has 2 replicas, and each would bind it on the same host" in p.message


def test_an_external_connect_of_a_node_with_replicas_is_fine(problems):
    assert problems(_socket("{type: PUSH, external: {connect: tcp://b:7000}}", "\n            replicas: 3")) == []


def test_two_binds_of_one_port_on_a_host_clash(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {s: {type: REP, external: {bind: tcp://0.0.0.0:5555}}}}
          b: {run: m:f, sockets: {s: {type: ROUTER, external: {bind: tcp://127.0.0.1:5555}}}}
        """)
    assert at(p) == (4, 62)
    assert p.message == ("b.s: external bind 'tcp://127.0.0.1:5555' clashes with a.s's 'tcp://0.0.0.0:5555' "
                         "(line 3): both on host 'local', and one endpoint is bound by one socket")


def test_one_port_on_two_addresses_or_two_hosts_is_fine(problems):
    assert problems("""\
        topology: t
        hosts:
          local: {address: 127.0.0.1}
          edge: {address: 10.0.0.2}
        nodes:
          a: {run: m:f, sockets: {s: {type: REP, external: {bind: tcp://127.0.0.1:5555}}}}
          b: {run: m:f, sockets: {s: {type: REP, external: {bind: tcp://10.0.0.1:5555}}}}
          c: {run: m:f, host: edge, sockets: {s: {type: REP, external: {bind: tcp://*:5555}}}}
        """) == []


def test_two_binds_of_one_socket_file_clash(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {s: {type: REP, external: {bind: ipc:///tmp/x.sock}}}}
          b: {run: m:f, sockets: {s: {type: PULL, external: {bind: ipc:///tmp/x.sock}}}}
        """)
    assert "b.s: external bind 'ipc:///tmp/x.sock' clashes with a.s's" in p.message


def test_a_pair_has_one_peer_external_ones_included(problem):
    p = problem("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {s: {type: PAIR, external: {connect: tcp://b:1}}}}
          b: {run: m:f, sockets: {s: PAIR}}
        links: [a.s -> b.s]
        """)
    assert p.message == "PAIR socket a.s has 1 link(s) and 1 external endpoint(s); a PAIR has exactly one peer"


@pytest.mark.parametrize("value, words", [
    ("{}", "nodes.api.sockets.s.external must not be empty"),
    ("{bind: []}", "nodes.api.sockets.s.external.bind must have at least 1 item(s)"),
    ("{bind: [5555]}", "nodes.api.sockets.s.external.bind[0] must be a string"),
    ("{listen: tcp://*:1}", "listen"),
])
def test_the_structure_of_external(problems, value: str, words: str) -> None:
    found = problems(_socket(f"{{type: REP, external: {value}}}"))
    assert len(found) == 1, found  # and no "has no link" on top
    assert words in found[0].message


def test_external_and_bind_live_side_by_side(problems):
    """``bind:`` keeps its meaning (which end of a link binds) next to ``external:``."""
    assert problems("""\
        topology: t
        nodes:
          a: {run: m:f, sockets: {s: {type: PULL, bind: false, external: {bind: tcp://*:5555}}}}
          b: {run: m:f, sockets: {s: PUSH}}
        links: [b.s -> a.s]
        """) == []
