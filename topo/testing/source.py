"""The topology a test starts: ``topo.testing.up``'s ``source`` read as ``topo up`` reads
a file (``${VAR}``, ``.env``, overlays, ``--set``, profiles), then changed for the test
(``overrides``, probes standing in for nodes) and checked again as a whole."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from topo.errors import Pos, UsageError
from topo.file.model import Topology
from topo.file.sources import Sources, dump
from topo.file.validate import load
from topo.testing.overrides import Probe, anchored, apply, resolved


def read_source(source: str | Path | Mapping[str, Any], *, probes: Mapping[str, Probe],
                overrides: Mapping[str, Mapping[str, Any] | None], overlays: Sequence[str | Path],
                sets: Sequence[str], profiles: Sequence[str], strict: bool | None,
                lenient: bool) -> tuple[Topology, str]:
    """The checked topology, and the path its node code is imported relative to (the
    file's; for a mapping, a file named ``topology.yaml`` in the current directory)."""
    if "SLURM_JOB_ID" in os.environ:  # hosts: {from: slurm}: the allocation's nodes, as topo up
        from topo.hosts.slurm import install

        install()
    chosen = tuple((name, Pos("profiles", i, 1)) for i, name in enumerate(profiles, 1))
    layered = bool(overlays or sets or profiles)
    if isinstance(source, Mapping) or probes or overrides:
        # the file as changed for the test is what runs; its problems point into a copy
        # kept in a temporary directory (a socket left for a probe is not yet linked)
        path = str(Path.cwd() / "topology.yaml") if isinstance(source, Mapping) else str(source)
        scratch = Path(tempfile.mkdtemp(prefix="topo-test-"))
        try:
            if isinstance(source, Mapping) and not layered:
                data = copy.deepcopy(dict(source))  # its ${VAR} read when the copy is loaded
            else:
                if isinstance(source, Mapping):
                    (scratch / "given").mkdir()
                    base = scratch / "given" / Path(path).name
                    base.write_text(yaml.safe_dump(dict(source), sort_keys=False))
                    path_read = str(base)
                else:
                    path_read = path
                data = resolved(Sources((path_read, *map(str, overlays)), tuple(sets), chosen))
            data = anchored(apply(data, overrides, probes), Path(path).parent)
            effective = scratch / Path(path).name
            effective.write_text(dump(data))
            topology = load(str(effective), strict=strict, lenient=lenient)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # its problems are already read
    else:
        path = str(source)
        topology = load(Sources((path, *map(str, overlays)), tuple(sets), chosen), strict=strict, lenient=lenient)
    if topology.allocation is not None and topology.allocation.stand_in:
        raise UsageError(f"{topology.file}: hosts: {{from: {topology.allocation.kind}}} takes the hosts of the Slurm "
                         "allocation the test runs in, and there is none (no SLURM_JOB_ID): run it under salloc "
                         "or sbatch")
    return topology, path
