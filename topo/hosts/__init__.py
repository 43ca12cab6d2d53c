"""Other hosts: the agents that run a host's share of a run, and the supervisor's link to them.

The same file runs across hosts: for each host but its own the supervisor starts an agent
(``LAUNCH PYTHON -m topo.hosts.agent``; ``python -m topo.agent`` also works) that spawns
and watches that host's processes and relays their reports, everything that crosses hosts
under CURVE. May import everything below it, the supervisor side included (an agent is a
small supervisor of its own host). Public names: :class:`topo.hosts.remotes.Hosts`,
:func:`topo.hosts.agent.main`.

Modules, in the order a run meets them:

- ``remotes``: The supervisor's side of the other hosts: launching agents, their channel,
  their liveness.
- ``agent_config``: What a supervisor hands an agent on its standard input: the configuration,
  keys included.
- ``agent_dir``: An agent's footprint on its host: its private directory, what it has
  started recorded there, and what an earlier agent of the same run and host left behind,
  ended.
- ``uplink``: What an agent says to its supervisor, in order, within a bound: its own
  reports, its processes' events, and their output lines, read from pipes the agent owns.
- ``taprelay``: An agent's end of taps and ``topo send``: its processes' copies relayed to
  the supervisor, and messages injected into a socket of its host.
- ``recordfeed``: An agent's end of ``topo up --record``: its processes' recorded copies
  sent up on credit, never dropped, and their ``end`` confirmed to them.
- ``slurm``: The Slurm allocation topo runs in, asked of Slurm (scontrol): the hosts of
  ``hosts: {from: slurm}``, handed to :mod:`topo.file.allocation` by the command line.
- ``hostedits``: What ``topo apply`` does to the agents: a new host known and launched, the
  agents up sent their new share, an unused host's agent told to leave, a changed host's
  agent launched again.
- ``replan``: An agent's new share of the plan and keys, as the supervisor sends it and the
  agent takes it.
- ``childstats``: CPU and memory of an agent's processes, for ``topo ps`` of its host.
- ``agent``: topo's agent: runs one host's share of a run, for a supervisor on another
  host.
"""
