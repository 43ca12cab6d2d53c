"""The plan: a checked topology turned into plain data, and views of it.

Which transport each link takes, which address each endpoint gets, what each
process must build. May import: :mod:`topo.errors`, :mod:`topo.file` and its own modules;
never zmq, never a process started (``topo check`` and ``topo plan`` run on this alone).
Public names: :func:`topo.plan.planner.make_plan`, :class:`topo.plan.planner.Plan`; a
child process sees only :mod:`topo.plan.share`, which imports nothing else of topo.

Modules, in the order a run meets them:

- ``planner``: The plan: a validated topology turned into plain data the supervisor and
  runtimes follow.
- ``inject``: Injection endpoints: where ``topo send`` reaches a receiving socket that no
  peer's dial would reach.
- ``share``: One process's share of the plan, as the process itself sees it: plain tuples
  and strings.
- ``execplan``: The plan's rules for exec nodes: the receiver binds when the sender is
  one, who starts after whom, which links a Python gate does not wait for.
- ``execenv``: What an exec node's program is given: its environment, its arguments
  (placeholders expanded), the instances it starts after.
- ``planview``: Plain-text views of a topology and its plan, for ``topo check`` and ``topo
  plan``.
- ``graph``: Drawings of a plan, for ``topo graph``: a Mermaid flowchart or a Graphviz
  digraph.
- ``facts``: A plan as the plain, comparable facts ``topo apply`` diffs (links known by
  their ends, never by address), sent by a run's supervisor as JSON and checked.
- ``diff``: The difference between a running plan and an edited file's: what is added,
  removed, changed in place or restarted, and which live socket acts on each link.
- ``diffview``: That difference as ``topo apply`` prints it, or as JSON.
"""
