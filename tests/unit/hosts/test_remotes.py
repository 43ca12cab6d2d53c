"""How an agent is launched: the command line built for each host."""

from __future__ import annotations

from topo.hosts.remotes import Remote
from topo.plan.planner import Host
from topo.process.curve import make_keys


def test_the_default_launch_ends_sshs_options_before_the_address() -> None:
    """Without `--`, an address such as '-oProxyCommand=...' is an option of ssh."""
    keys = make_keys(["edge"])["edge"]
    remote = Remote(Host("edge", "edge.example", None, None), keys)
    assert remote.command == ["ssh", "--", "edge.example", "python3", "-m", "topo.hosts.agent"]


def test_a_launch_prefix_is_used_as_written() -> None:
    keys = make_keys(["edge"])["edge"]
    remote = Remote(Host("edge", "10.0.0.2", ("ip", "netns", "exec", "ns1"), "/opt/py/bin/python"), keys)
    assert remote.command == ["ip", "netns", "exec", "ns1", "/opt/py/bin/python", "-m", "topo.hosts.agent"]
