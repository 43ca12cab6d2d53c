"""What a supervisor hands an agent on its standard input: the configuration, keys included.

Kept apart from :mod:`topo.hosts.agent` so that the supervisor's side (:mod:`topo.hosts.remotes`) and
the agent share one definition of the format, and the format can be read and tested
without starting an agent.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

from topo import __version__
from topo.process.boot import Recording
from topo.process.curve import HostKeys
from topo.plan.planner import Plan

#: First line on the agent's standard input: ``topo-agent VERSION LENGTH``, then LENGTH
#: bytes of pickled :class:`AgentConfig` (trusted: it comes from the user's own launch).
MAGIC = "topo-agent"


#: The largest message on the control channel between the supervisor and an agent, both
#: ways: far above what they say to each other (output lines are cut at 64 KiB; the
#: largest is a START's table of the run's addresses), far below what a stranger's one
#: handshake frame could otherwise make the other end hold.
CONTROL_MAX_MESSAGE = 16 * 2**20


@dataclass(frozen=True)
class AgentConfig:
    topology: str
    run_id: str
    host: str
    #: The host's share of the plan (:meth:`Plan.for_host`).
    plan: Plan
    #: The supervisor's tcp ROUTER, and the host whose key it serves with.
    control: str
    control_host: str
    keys: HostKeys
    grace: float
    sys_path: tuple[str, ...] = ()
    version: str = __version__
    #: The supervisor's tcp ROUTER for taps' copies and topo send (:mod:`topo.hosts.taprelay`).
    taps: str = ""
    #: ``topo up --record``: the host's recorded sockets (the endpoint is the agent's own,
    #: :mod:`topo.hosts.recordfeed`; the one given is the recorder's, on the supervisor's host).
    record: Recording | None = None


def encode_config(config: AgentConfig) -> bytes:
    body = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    return f"{MAGIC} {config.version} {len(body)}\n".encode() + body


def read_config(fd: int = 0) -> AgentConfig:
    """Reads exactly the configuration and leaves standard input open: its end of file is
    how the agent learns that the supervisor is gone."""
    header = b""
    while not header.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            raise SystemExit("topo agent: standard input closed before the configuration arrived")
        header += chunk
        if len(header) > 200:
            raise SystemExit("topo agent: standard input does not start with a configuration")
    words = header.decode(errors="replace").split()
    if len(words) != 3 or words[0] != MAGIC or not words[2].isdigit():
        raise SystemExit("topo agent: standard input does not start with a configuration")
    _, version, length = words
    if version != __version__:
        raise SystemExit(f"topo agent: this host has topo {__version__}, the supervisor {version}: "
                         "install the same version on every host")
    body = bytearray()
    while len(body) < int(length):
        chunk = os.read(fd, int(length) - len(body))
        if not chunk:
            raise SystemExit("topo agent: standard input closed in the middle of the configuration")
        body += chunk
    config = pickle.loads(bytes(body))
    if not isinstance(config, AgentConfig):
        raise SystemExit("topo agent: the configuration is not an agent configuration")
    return config
