"""A running agent handed its host's new share of the plan (``topo apply``).

An agent starts its processes from the share it was given at launch
(:class:`topo.hosts.agent_config.AgentConfig`). An edit that starts, restarts or moves a
process on its host, or brings a new host (and so a new public key) into the run, would
have it start them from a stale share; so the supervisor sends the new share and the
host's keys (:data:`topo.process.control.Kind.PLAN`) before any START that needs them,
on the same ordered channel. The processes it runs are not touched by it: a process
started from now on gets the new share and keys, as a restart does.

The share travels pickled, as the configuration on standard input does: it comes from the
supervisor, the only peer whose CURVE key the agent was given, and a plan that a
node's process is started from is trusted as much as the one it was launched with.
"""

from __future__ import annotations

import base64
import pickle
from dataclasses import replace

from topo.hosts.agent_config import AgentConfig
from topo.plan.planner import Plan
from topo.process.control import Kind, Message
from topo.process.curve import HostKeys


def share_message(share: Plan, keys: HostKeys) -> Message:
    """What tells an agent its host's share (:meth:`Plan.for_host`) and keys from now on."""
    body = pickle.dumps((share, keys), protocol=pickle.HIGHEST_PROTOCOL)
    return Message(Kind.PLAN, {"share": base64.b64encode(body).decode()})


def take(config: AgentConfig, message: Message) -> AgentConfig:
    """``config`` with the share and keys of ``message``; unchanged if the message is not
    one for this host (a confused sender: the agent goes on with what it has)."""
    try:
        share, keys = pickle.loads(base64.b64decode(message["share"], validate=True))
    except Exception:  # noqa: BLE001 - whatever a broken message raises, it is ignored
        return config
    if not isinstance(share, Plan) or not isinstance(keys, HostKeys) or keys.host != config.host \
            or share.topology != config.topology:
        return config
    return replace(config, plan=share, keys=keys)
