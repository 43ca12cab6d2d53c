"""``python -m topo.agent``, as it was before the agent moved to :mod:`topo.hosts.agent`:
kept so that an agent command written before the move (a script, an earlier release's
docs) still starts one."""

from __future__ import annotations

import sys

from topo.hosts.agent import main

if __name__ == "__main__":
    sys.exit(main())
