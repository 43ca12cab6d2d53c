"""Injection endpoints in the plan: which receiving sockets get one (those ``topo send``
could not dial otherwise), named within the ipc limits and unique."""

from __future__ import annotations

from topo.plan.planner import MAX_IPC_NAME, RUN_DIR, Plan, share_of
from topo.plan.share import inject_key


def injects(plan: Plan) -> dict[str, str]:
    return {f"{i.name}.{s.name}": s.inject for i in plan.instances.values() for s in i.sockets if s.inject}


def test_receivers_that_bind_nothing_plain_get_one(plan):
    p = plan("""\
        topology: t
        nodes:
          pub: {run: m:f, sockets: {out: PUB}}
          sub: {run: m:f, sockets: {in: {type: SUB, subscribe: [""]}}}
          push: {run: m:f, process: shared, sockets: {out: PUSH}}
          pull: {run: m:f, process: shared, sockets: {in: {type: PULL, bind: true}}}
          req: {run: m:f, sockets: {out: REQ}}
          rep: {run: m:f, sockets: {in: REP}}
          treq: {run: m:f, sockets: {out: REQ}}
          trep: {run: m:f, sockets: {in: REP}}
          preq: {run: m:f, sockets: {out: REQ}}
          prep: {run: m:f, sockets: {in: REP}}
          dealer: {run: m:f, sockets: {out: DEALER}}
          router: {run: m:f, sockets: {in: ROUTER}}
          pa: {run: m:f, sockets: {out: PAIR}}
          pb: {run: m:f, sockets: {in: PAIR}}
          ext: {run: m:f, sockets: {in: {type: PULL, external: {bind: "tcp://127.0.0.1:5999"}}}}
          feeder: {run: m:f, sockets: {out: PUSH}}
        links:
          - pub.out -> sub.in                                   # the PUB binds: sub connects
          - push.out -> pull.in                                 # one process: inproc only
          - req.out -> rep.in                                   # the REP binds a plain ipc file
          - {from: treq.out, to: trep.in, transport: tcp}       # CURVE tcp only
          - {from: preq.out, to: prep.in, transport: tcp, curve: false}   # plain tcp
          - dealer.out -> router.in                             # ROUTER binds ipc: none
          - pa.out -> pb.in                                     # PAIR: never
          - feeder.out -> ext.in                                # external bind: dialled there
        """)
    names = injects(p)
    assert sorted(names) == ["pull.in", "sub.in", "trep.in"], names
    assert all(a.startswith(f"ipc://{RUN_DIR}/") and "-inject-" in a for a in names.values())
    # every ipc file of the run is a different one
    files = [e.address for e in p.endpoints.values() if e.address.startswith("ipc://")] + list(names.values())
    assert len(set(files)) == len(files)


def test_each_replica_its_own_and_short_names(plan):
    long = "n" * 150
    p = plan(f"""\
        topology: t
        nodes:
          src: {{run: m:f, sockets: {{out: PUSH}}}}
          {long}: {{run: m:f, replicas: 3, sockets: {{in: PULL}}}}
        links: [src.out -> {long}.in]
        """)
    names = injects(p)
    assert len(names) == 3 and len(set(names.values())) == 3
    assert all(len(a.rsplit("/", 1)[1].encode()) <= MAX_IPC_NAME for a in names.values())


def test_the_process_share_carries_it(plan):
    p = plan("""\
        topology: t
        nodes:
          src: {run: m:f, sockets: {out: PUSH}}
          dst: {run: m:f, sockets: {in: PULL}}
        links: [src.out -> dst.in]
        """)
    share = share_of(p, p.instances["dst"].process)
    (sock,) = share.instances["dst"].sockets
    assert sock.inject == injects(p)["dst.in"]
    assert inject_key("dst", "in") == "dst.in/inject" and inject_key("dst", "in") not in p.endpoints
