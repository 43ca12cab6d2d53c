"""`topo up` with a suggested change, for the experiment of ``bench/launch.py --profile``
(not topo as shipped):

    python bench/topo_experiment.py FILE     # as `topo up FILE`

Every process of the run is forked from a forkserver that has preloaded zmq and topo's
runtime (bench/forkserver_patch.py), instead of being a new interpreter started by
multiprocessing ``spawn`` that imports them again.
"""

import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import topo.supervisor.spawn
from topo.cli.main import main

if __name__ == "__main__":
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bench.forkserver_patch"])
    topo.supervisor.spawn._spawn = context  # type: ignore[assignment]
    sys.argv = ["topo", "up", *sys.argv[1:]]
    main()
