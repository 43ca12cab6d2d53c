"""A running CURVE server admits a host ``topo apply`` brought in, in place: only hosts it
did not know, with well-formed keys; anything else in the command is dropped (it came
over a channel a node's own code could write to)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import zmq

from topo.process.curve import ZapHandler, make_keys, with_hosts


@pytest.fixture
def zap() -> Iterator[ZapHandler]:
    ctx: zmq.Context[Any] = zmq.Context()
    handler = ZapHandler(ctx, make_keys(["local", "h1"])["local"])  # not started: no thread
    yield handler
    ctx.destroy(linger=0)


def test_a_new_host_is_admitted_and_a_known_one_never_rekeyed(zap: ZapHandler) -> None:
    grown = with_hosts({"local": zap.keys, "h1": zap.keys._replace(host="h1")}, ["local", "h1", "h2"])
    h2_public = grown["h2"].public
    raw = zmq.utils.z85.decode(h2_public.encode())
    assert zap.keys.admits(raw) is None
    stranger = make_keys(["x"])["x"].public
    assert zap.admit({**grown["local"].peers, "local": stranger, "h1": stranger}) == ["h2"]
    assert zap.keys.admits(raw) == "h2"
    assert zap.keys.peers["local"] != stranger and zap.keys.peers["h1"] != stranger  # never replaced
    assert zap.admit(dict(grown["local"].peers)) == []  # again: nothing new


@pytest.mark.parametrize("peers", [
    None, [], "h3", {"h3": 7}, {"h3": "short"}, {"h3": "#" * 40}, {"h3": "é" * 40}, {"": "x" * 40},
    {"h" * 129: "x" * 40}, {3: "x" * 40}, {f"h{i}": "x" * 40 for i in range(5000)},
])
def test_a_malformed_command_admits_nobody(zap: ZapHandler, peers: Any) -> None:
    before = dict(zap.keys.peers)
    assert zap.admit(peers) == []
    assert dict(zap.keys.peers) == before
