"""The file: a topology file read, checked and understood, as typed data with source positions.

The first step of the pipeline (file → model → validation → plan → supervisor → process → node).
May import: :mod:`topo.errors` and its own modules; never zmq, never a process started.
Public names: :func:`topo.file.validate.load` (a file, or
:class:`topo.file.sources.Sources` → a checked
:class:`topo.file.model.Topology` with its warnings, or :class:`topo.errors.InvalidTopology`
with every problem located), :data:`topo.file.schema.SCHEMA`.

Modules, in the order a run meets them:

- ``yamltree``: YAML text → the node tree that :mod:`topo.file.structure` checks, the same on
  every PyYAML.
- ``yamlerrors``: A YAML syntax error said as a compiler would: the line of the mistake,
  and what it is.
- ``interpolate``: ``${VAR}`` in a topology file's values, by docker compose's rules.
- ``sources``: A topology as the command line names it (a file, ``-f`` overlays, ``--set``
  values, profiles) read into one tree; ``topo config``'s YAML.
- ``layers``: Overlays merged, ``!reset``, ``--set`` values and profiles, on the composed
  tree.
- ``loader``: Topology file → :class:`topo.file.model.Topology`, every value keeping its
  source position.
- ``schema``: The structure of a topology file, as one JSON Schema (draft 2020-12).
- ``structure``: Checks a composed YAML tree against :data:`topo.file.schema.SCHEMA`, keeping
  positions.
- ``cascade``: One mistake, one report: the mistakes whose consequences would bury them
  (a misspelt ``links:``, a node's key indented as a node).
- ``model``: The topology as typed, immutable data, each piece remembering where it was
  written.
- ``allocation``: Hosts from a Slurm allocation: ``hosts: {from: slurm}`` made into hosts
  written out (``slurm[N]``, ``any``, ``hosts: all``), from facts the command line learns.
- ``placement``: Where every instance runs: replicas expanded, processes and hosts assigned.
- ``external``: Endpoints outside the topology (a socket's ``external:``): their form, and
  their clashes.
- ``execnodes``: Nodes in any language (``exec:``): their rules, where their program is,
  the order they start in.
- ``validate``: Rules that relate parts of a topology to each other; structure is the
  schema's job.
- ``diagnostics``: What a check found, made ready to show: severities (errors and
  warnings), ``--strict``, source excerpts.
- ``runref``: Every node's ``run:`` resolved before a run, without running its code (a
  step of the CLI's ``check``, ``plan`` and ``up``, not of ``load``).
- ``localcode``: The local source files a node's code is made of, read from its imports
  without running them (what ``topo up --watch`` watches).
"""
