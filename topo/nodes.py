"""Nodes that ship with topo, for a topology's ``run:``: ``run: topo.nodes:replay``.

- ``replay``: sends the messages of a recorded channel again (:mod:`topo.observe.replay`).

Kept light: importing it imports no zmq and no mcap until a node runs.
"""

from __future__ import annotations

from topo.observe.replay import replay

__all__ = ["replay"]
