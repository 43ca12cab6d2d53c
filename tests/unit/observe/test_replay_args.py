"""The replay node's arguments and socket choice, checked before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from topo.observe.replay import ReplayArgs, ReplayError, parse_args, pick_socket


def test_defaults_and_as_fast_as_possible() -> None:
    assert parse_args({"file": "r.mcap", "channel": "a/out/out"}) == ReplayArgs("r.mcap", "a/out/out", 1.0, False, None)
    assert parse_args({"file": "r", "channel": "c", "rate": "max"}).rate == 0.0
    assert parse_args({"file": "r", "channel": "c", "rate": 0}).rate == 0.0
    assert parse_args({"file": "r", "channel": "c", "rate": 2, "loop": True, "socket": "s"}) == \
        ReplayArgs("r", "c", 2.0, True, "s")


@pytest.mark.parametrize("args, says", [
    ({"channel": "c"}, "args.file is missing"),
    ({"file": "r"}, "args.channel is missing"),
    ({"file": "", "channel": "c"}, "args.file must be a non-empty string"),
    ({"file": "r", "channel": 3}, "args.channel must be a non-empty string, not 3"),
    ({"file": "r", "channel": "c", "rate": -1}, "args.rate must be a number >= 0"),
    ({"file": "r", "channel": "c", "rate": "fast"}, "or \"max\", not 'fast'"),
    ({"file": "r", "channel": "c", "rate": True}, "args.rate"),
    ({"file": "r", "channel": "c", "rate": float("nan")}, "args.rate"),
    ({"file": "r", "channel": "c", "loop": "yes"}, "args.loop must be true or false"),
    ({"file": "r", "channel": "c", "chanel": "x"}, "unknown argument 'chanel' (did you mean 'channel'?)"),
    ({"file": "r", "channel": "c", "socket": 1}, "args.socket must be a socket name"),
])
def test_wrong_arguments_are_said_clearly(args: dict[str, Any], says: str) -> None:
    with pytest.raises(ReplayError, match=_re(says)):
        parse_args(args)


def test_every_mistake_is_said_at_once() -> None:
    with pytest.raises(ReplayError) as err:
        parse_args({"rate": -2})
    assert "args.file is missing" in str(err.value) and "args.channel is missing" in str(err.value)
    assert "args.rate" in str(err.value)


def test_the_sending_socket() -> None:
    assert pick_socket({"out": "PUSH", "cmd": "SUB"}, None) == "out"
    assert pick_socket({"a": "PUB", "b": "DEALER"}, "b") == "b"
    with pytest.raises(ReplayError, match="sends on a, b: say which with args.socket"):
        pick_socket({"a": "PUB", "b": "PUSH"}, None)
    with pytest.raises(ReplayError, match=r"no socket to send on .*; it has in \(PULL\)"):
        pick_socket({"in": "PULL"}, None)
    with pytest.raises(ReplayError, match="no socket 'ot' \\(did you mean 'out'\\?\\)"):
        pick_socket({"out": "PUSH"}, "ot")
    with pytest.raises(ReplayError, match="'req' is a REQ socket"):
        pick_socket({"req": "REQ"}, "req")


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_the_nodes_module_is_light_to_import() -> None:
    """Every process of a node that names ``topo.nodes:replay`` imports it; zmq and mcap
    only come when the node runs (zmq is there anyway, mcap only for a replay)."""
    import subprocess
    import sys

    code = "import sys, topo.nodes; print([m for m in ('zmq', 'mcap', 'yaml') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
