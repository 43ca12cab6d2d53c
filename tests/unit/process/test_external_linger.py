"""How long a returned node's socket with external endpoints lingers: bounded, always."""

from __future__ import annotations

import pytest

from topo.plan.share import SocketShare
from topo.process.external import has_external, return_linger


def _sock(options: dict[str, object], binds: tuple[str, ...] = (), connects: tuple[str, ...] = ()) -> SocketShare:
    return SocketShare("out", "PUSH", (), options, (), (), (), binds, connects)


@pytest.mark.parametrize("options, expected", [
    ({}, 5000),                 # none: the grace
    ({"linger": -1}, 5000),     # unbounded: the grace
    ({"linger": 300}, 300),     # the user's, when shorter
    ({"linger": 60_000}, 5000), # never past the grace
    ({"linger": 0}, 0),
])
def test_the_linger_is_the_users_within_the_grace(options: dict[str, object], expected: int) -> None:
    assert return_linger(_sock(options, connects=("tcp://b:1",)), 5000) == expected


def test_only_sockets_with_external_endpoints_have_them() -> None:
    assert has_external(_sock({}, binds=("tcp://*:1",))) and has_external(_sock({}, connects=("ipc:///x",)))
    assert not has_external(_sock({}))
