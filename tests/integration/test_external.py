"""Endpoints outside the topology (a socket's ``external:``), with real processes: a client
the test makes after ``ready`` is answered by a node that binds one, a peer the test binds
gets what a node that connects to it sent before it returned, and a peer that never comes
costs a bounded time, not a hung run (docs/file-format.md, External endpoints)."""

from __future__ import annotations

import os
import socket
import time

import pytest
import zmq

from conftest import Topo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_plain_client_made_after_ready_is_answered_by_an_exposed_rep(topo: Topo) -> None:
    port = _free_port()
    path = topo.file(f"""
        topology: extrep
        nodes:
          api:
            run: extnodes:answer
            args: {{count: 2}}
            sockets:
              api: {{type: REP, external: {{bind: "tcp://127.0.0.1:{port}"}}}}
        """)
    proc = topo.start("up", path)
    topo.wait_for_line(proc, r"all 1 node\(s\) ready")
    ctx = zmq.Context()
    try:
        for word in ("one", "two"):
            req = ctx.socket(zmq.REQ)
            req.linger = 0
            req.connect(f"tcp://127.0.0.1:{port}")
            req.send(word.encode())
            assert req.poll(10_000), f"no answer to {word!r} from the exposed REP"
            assert req.recv() == b"re:" + word.encode()
            req.close()
    finally:
        ctx.destroy(linger=0)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert "api returned" in out


def test_a_socket_with_a_curve_link_serves_a_plain_external_client_too(topo: Topo) -> None:
    """libzmq copies CURVE options per bind: the tcp link stays CURVE, the external plain."""
    port = _free_port()
    path = topo.file(f"""
        topology: extmixed
        nodes:
          api:
            run: extnodes:answer
            args: {{count: 2}}
            sockets:
              api: {{type: REP, external: {{bind: "tcp://127.0.0.1:{port}"}}}}
          inner: {{run: extnodes:ask, sockets: {{ask: REQ}}}}
        links:
          - {{from: inner.ask, to: api.api, transport: tcp}}
        """)
    plan = topo.run("plan", "--no-run-check", path)
    assert "tcp+curve" in plan.out and f"tcp://127.0.0.1:{port}" in plan.out and "tcp, plain" in plan.out
    proc = topo.start("up", path)
    topo.wait_for_line(proc, r"inner +\| got re:inside")
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.connect(f"tcp://127.0.0.1:{port}")
        req.send(b"outside")
        assert req.poll(10_000), "the plain external client got no answer"
        assert req.recv() == b"re:outside"
    finally:
        ctx.destroy(linger=0)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err


@pytest.mark.parametrize("kinds", [("PUSH", zmq.PULL), ("DEALER", zmq.ROUTER)], ids=["push_pull", "dealer_router"])
def test_a_peer_the_test_binds_gets_everything_a_node_sent_before_returning(topo: Topo, kinds: tuple[str, int]) -> None:
    sender, receiver = kinds
    ctx = zmq.Context()
    try:
        sink = ctx.socket(receiver)
        sink.linger = 0
        port = sink.bind_to_random_port("tcp://127.0.0.1")
        path = topo.file(f"""
            topology: extsink
            nodes:
              feed:
                run: extnodes:send_n
                args: {{n: 500}}
                sockets:
                  out: {{type: {sender}, external: {{connect: ["tcp://127.0.0.1:{port}"]}}}}
            """)
        result = topo.run("up", path, timeout=60)
        assert result.code == 0, result.out + result.err
        got = []
        while sink.poll(5000 if len(got) < 500 else 0):
            got.append(sink.recv_multipart()[-1].decode())
        assert got == [f"feed {i}" for i in range(500)], result.out + result.err
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("linger", [None, 300], ids=["grace", "linger_option"])
def test_a_node_whose_external_peer_never_comes_still_ends_and_so_does_the_run(topo: Topo, linger: int | None) -> None:
    port = _free_port()  # nobody listens there
    options = "" if linger is None else f", options: {{linger: {linger}}}"
    path = topo.file(f"""
        topology: extnobody
        nodes:
          feed:
            run: extnodes:send_n
            args: {{n: 3}}
            sockets:
              out: {{type: PUSH, external: {{connect: "tcp://127.0.0.1:{port}"}}{options}}}
        """)
    started = time.monotonic()
    result = topo.run("up", "--grace", "1", path, timeout=60)
    took = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert "feed returned" in result.out
    # the linger is the bound (grace 1 s, or the socket's 0.3 s), plus topo's own start and stop
    assert took < 8, f"the run took {took:.1f}s to end"


def test_an_exposed_ipc_file_is_removed_when_the_run_ends(topo: Topo) -> None:
    sock_path = str(topo.home / "api.sock")
    path = topo.file(f"""
        topology: extipc
        nodes:
          api:
            run: extnodes:answer
            sockets:
              api: {{type: REP, external: {{bind: "ipc://{sock_path}"}}}}
        """)
    proc = topo.start("up", path)
    topo.wait_for_line(proc, r"all 1 node\(s\) ready")
    assert os.path.exists(sock_path)
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.connect(f"ipc://{sock_path}")
        req.send(b"x")
        assert req.poll(10_000) and req.recv() == b"re:x"
    finally:
        ctx.destroy(linger=0)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert not os.path.exists(sock_path)


def test_an_external_port_already_in_use_fails_the_node_naming_it(topo: Topo) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = topo.file(f"""
            topology: extbusy
            nodes:
              api:
                run: extnodes:answer
                sockets:
                  api: {{type: REP, external: {{bind: "tcp://127.0.0.1:{port}"}}}}
            """)
        result = topo.run("up", path, timeout=60)
    assert result.code != 0
    assert f"binding 'api' to external tcp://127.0.0.1:{port}" in result.out + result.err


def test_the_harness_returns_with_the_external_endpoint_bound(tmp_path) -> None:
    """``topo.testing.up`` returns once every node is ready, so a client made then is answered."""
    from topo.testing import up

    port = _free_port()
    source = {"topology": "extharness", "nodes": {"api": {
        "run": "extnodes:answer", "args": {"count": 1},
        "sockets": {"api": {"type": "REP", "external": {"bind": f"tcp://127.0.0.1:{port}"}}}}}}
    with up(source) as run:
        ctx = zmq.Context()
        try:
            req = ctx.socket(zmq.REQ)
            req.linger = 0
            req.connect(f"tcp://127.0.0.1:{port}")
            req.send(b"probe")
            assert req.poll(10_000) and req.recv() == b"re:probe"
        finally:
            ctx.destroy(linger=0)
        assert run.wait_for("api", timeout=30).returned


@pytest.mark.slow
def test_a_node_on_another_host_binds_its_external_endpoint_there(topo: Topo) -> None:
    """The plan carries the endpoint to the agent's process: bound in that host's network
    (a namespace of its own), reached by a plain client from here at the host's address."""
    from hostnet import NETNS_SKIP_REASON, host_network, hosts_block

    if NETNS_SKIP_REASON is not None:
        pytest.skip(NETNS_SKIP_REASON)
    with host_network(1) as net:
        path = topo.file(f"""
            topology: extremote
            {hosts_block(net)}
            nodes:
              api:
                run: extnodes:answer
                host: h1
                sockets:
                  api: {{type: REP, external: {{bind: "tcp://*:5555"}}}}
            """.replace("\n            ", "\n"))
        proc = topo.start("up", "--ready-timeout", "30", path)
        topo.wait_for_line(proc, r"all 1 node\(s\) ready", timeout=60)
        ctx = zmq.Context()
        try:
            req = ctx.socket(zmq.REQ)
            req.linger = 0
            req.connect(f"tcp://{net.hosts[0].address}:5555")
            req.send(b"far")
            assert req.poll(10_000), "no answer from the node on h1"
            assert req.recv() == b"re:far"
        finally:
            ctx.destroy(linger=0)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
