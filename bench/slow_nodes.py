"""A subscriber whose module is slow to import, as one importing numpy, torch or a big
application package is: the import sleeps ``TOPO_BENCH_IMPORT_DELAY`` seconds (0.3 by
default). The delay is the scenario being measured, not a synchronisation: the subscriber
is late to connect, and the question is whether the publisher's first message waits for it.
"""

from __future__ import annotations

import os
import time

time.sleep(float(os.environ.get("TOPO_BENCH_IMPORT_DELAY", "0.3")))

from bench.nodes import subscriber

__all__ = ["subscriber"]
