"""``topo send``: one message into a receiving socket of a running node, as a linked peer
would send it, with real processes; the node's own code gets it from its own socket."""

from __future__ import annotations

from conftest import Topo

SERVICES = """
topology: sendy
nodes:
  src: {run: "tapnodes:ticker", args: {interval: 0.2}, sockets: {out: PUSH}}
  sink: {run: "sendnodes:printer", sockets: {in: {type: PULL, bind: true}}}
  client: {run: "sendnodes:asker", args: {interval: 0.5}, sockets: {out: REQ}}
  svc: {run: "sendnodes:answerer", sockets: {in: REP}}
  dealer: {run: "sendnodes:idle", sockets: {out: DEALER}}
  rtr: {run: "sendnodes:router", sockets: {in: ROUTER}}
  rtr2: {run: "sendnodes:idle", sockets: {out: {type: DEALER, bind: true}}}
  pub: {run: "tapnodes:ticker", args: {interval: 0.2, topics: ["t."]}, sockets: {out: PUB}}
  sub: {run: "sendnodes:printer", sockets: {in: {type: SUB, subscribe: ["t."], bind: true}}}
  csub: {run: "sendnodes:printer", sockets: {in: {type: SUB, subscribe: [""]}}}
  worker: {run: "sendnodes:printer", replicas: 2, sockets: {in: PULL}}
  tclient: {run: "sendnodes:idle", sockets: {out: REQ}}
  curved: {run: "sendnodes:answerer", sockets: {in: REP}}
  pclient: {run: "sendnodes:idle", sockets: {out: REQ}}
  plain: {run: "sendnodes:answerer", sockets: {in: REP}}
  near: {run: "sendnodes:idle", process: both, sockets: {out: PUSH}}
  far: {run: "sendnodes:printer", process: both, sockets: {in: {type: PULL, bind: true}}}
links:
  - {from: tclient.out, to: curved.in, transport: tcp}
  - {from: pclient.out, to: plain.in, transport: tcp, curve: false}
  - near.out -> far.in
  - src.out -> sink.in
  - client.out -> svc.in
  - dealer.out -> rtr.in
  - rtr2.out -> rtr.in
  - pub.out -> sub.in
  - pub.out -> csub.in
  - src.out -> worker.in
"""


def _up_d(topo: Topo, text: str) -> str:
    return topo.up_detached(text)[1]


def test_send_reaches_pull_sub_rep_and_router_nodes(topo: Topo) -> None:
    run = _up_d(topo, SERVICES)
    try:
        log = topo.start("logs", "-f", run)
        pulled = topo.run("send", run, "sink.in", "hello", "wide world")
        assert pulled.code == 0 and pulled.out == "", pulled.err
        assert "sent 2 frame(s), 15 bytes, to sink.in (PULL)" in pulled.err
        blob = topo.tmp / "blob.bin"
        blob.write_bytes(b"file bytes")
        both = topo.run("send", "sink.in", "first", "--json", '{"n": [1, 2]}', "--file", str(blob))  # RUN left out
        assert both.code == 0, both.err
        subbed = topo.run("send", run, "sub.in", "t.injected", "body")
        assert subbed.code == 0, subbed.err
        topo.wait_for_lines(log, [r"sink +\| sink got hello \| wide world$",
                                  r'sink +\| sink got first \| \{"n": \[1, 2\]\} \| file bytes$',
                                  r"sub +\| sub got t\.injected \| body$"])

        asked = topo.run("send", run, "svc.in", "ping", "--json", '{"a": 1}')
        assert asked.code == 0, asked.err
        assert asked.out == '[0] re: ping | {"a": 1}  [1] 2\n', asked.out
        routed = topo.run("send", run, "rtr.in", "a", "b", "c")
        assert routed.code == 0 and routed.out == "[0] ok 3\n", (routed.out, routed.err)
        topo.wait_for_line(log, r"rtr +\| rtr got a \| b \| c from a peer of 5-byte identity")
        tcp = topo.run("send", run, "plain.in", "over tcp")
        assert tcp.code == 0 and tcp.out == "[0] re: over tcp  [1] 1\n", (tcp.out, tcp.err)
        hexed = topo.run("send", run, "svc.in", "\x1b[31m", "--format", "hex")
        assert hexed.code == 0 and hexed.out.startswith("[0] 0x72653a201b5b33316d  [1] 0x31"), hexed.out

        # bound only on CURVE tcp, on inproc, or nothing at all: their injection endpoints
        curved = topo.run("send", run, "curved.in", "past curve")
        assert curved.code == 0 and curved.out == "[0] re: past curve  [1] 1\n", (curved.out, curved.err)
        far = topo.run("send", run, "far.in", "into a process")
        csub = topo.run("send", run, "csub.in", "anything")
        assert far.code == 0 and csub.code == 0, (far.err, csub.err)
        topo.wait_for_lines(log, [r"far +\| far got into a process$", r"csub +\| csub got anything$"])

        # a SUB drops what it did not subscribe to: said, and nothing sent
        dropped = topo.run("send", run, "sub.in", "other", "body")
        assert dropped.code == 1 and "sub.in subscribes only to 't.'" in dropped.err, dropped.err
        # the nodes' own peers went on unharmed
        ps = topo.run("ps", run)
        assert ps.code == 0 and "failed" not in ps.out, ps.out
    finally:
        assert topo.run("down", run).code == 0


def test_refusals_are_one_line_and_exit_2(topo: Topo) -> None:
    run = _up_d(topo, SERVICES)
    try:
        for args, message in (
                (("send", "nope", "sink.in", "x"), "no running topology 'nope'"),
                (("send", run, "snik.in", "x"), "no node 'snik' in sendy; did you mean sink.in?"),
                (("send", run, "sink.ni", "x"), "no socket 'ni' on sink in sendy; did you mean sink.in?"),
                (("send", run, "src.out", "x"), "src.out is a PUSH: it only sends; topo send injects into a "
                                                "receiving socket (PULL, REP, ROUTER, SUB, XSUB)"),
                (("send", run, "rtr2.out", "x"), "rtr2.out is a DEALER: it deals what it sends among its peers"),
                (("send", run, "pub.out", "x"), "pub.out is a PUB: it only sends"),
                (("send", run, "client.out", "x"), "client.out is a REQ: it only sends"),
                (("send", run, "worker.in", "x"), "worker.in is 2 sockets (one per instance): "
                                                  "name one of worker.0.in, worker.1.in"),
                (("send", run, "sink.in"), "nothing to send"),
                (("send", run, "sink.in", "--json", "{bad"), "--json: not JSON"),
                (("send", run, "sink.in", "--file", str(topo.tmp / "none")), "--file"),
                (("send", run, "sink.in", "x", "--format", "yaml"), "unknown format 'yaml'")):
            result = topo.run(*args)
            assert result.code == 2, (args, result.out, result.err)
            assert result.err.count("\n") == 1 and message in result.err, (args, result.err)
    finally:
        assert topo.run("down", run).code == 0


def test_a_service_that_does_not_answer(topo: Topo) -> None:
    run = _up_d(topo, """
topology: quiet
nodes:
  client: {run: "sendnodes:idle", sockets: {out: REQ}}
  svc: {run: "sendnodes:answerer", args: {silent: true}, sockets: {in: REP}}
  dealer: {run: "sendnodes:idle", sockets: {out: DEALER}}
  rtr: {run: "sendnodes:router", args: {silent: true}, sockets: {in: ROUTER}}
links: [client.out -> svc.in, dealer.out -> rtr.in]
""")
    try:
        log = topo.start("logs", "-f", run)
        rep = topo.run("send", run, "svc.in", "hello?", "--timeout", "0.5")
        assert rep.code == 1 and rep.out == "", rep.out
        assert rep.err.endswith("no reply from svc.in within 0.5s\n"), rep.err
        topo.wait_for_line(log, r"svc +\| svc got hello\? and keeps quiet")
        # a ROUTER need not answer: said, not an error
        rtr = topo.run("send", run, "rtr.in", "fire", "--timeout", "0.5")
        assert rtr.code == 0 and rtr.out == "" and "no reply within 0.5s" in rtr.err, rtr.err
        topo.wait_for_line(log, r"rtr +\| rtr got fire from")
    finally:
        assert topo.run("down", run).code == 0
