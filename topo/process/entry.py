"""A node process's entry point, as multiprocessing names it: light to import in the parent.

multiprocessing pickles the entry point by reference, which needs its module imported in
the parent too; so this one imports nothing heavy at its top, and the child's first steps
(:mod:`topo.process.prelude`) and its runtime are imported in the child only. Apart from
:mod:`topo.process.boot` so that the modules the child runs can read :class:`Boot`
without importing the module that imports them.
"""

from __future__ import annotations

from topo.process.boot import Boot, PassFds


def main(boot: Boot, output: PassFds | None = None) -> None:
    """The child's entry point: its first steps (:mod:`topo.process.prelude`: the node modules'
    imports started), then :func:`topo.process.runtime.main`, zmq and all. ``output``: the
    write ends of the pipes its output goes to, read by whoever started it."""
    from topo.process.prelude import begin

    prelude = begin(boot, output)
    from topo.process.runtime import main as run

    run(boot, prelude)
