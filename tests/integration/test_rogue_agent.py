"""A stop finishes within its deadlines whatever an agent does (docs/security.md, "A
compromised host"): an agent with its host's genuine key that says it spawned a process
and then ignores every STOP, SIGNAL and SHUTDOWN while beating (``deaf``), or floods the
control channel as fast as it can (``flood``), is abandoned ABANDON_AFTER seconds after
the SIGKILL it did not carry out, and its host taken for lost.

Before: ``topo up`` waited as long as the rogue agent lived (two minutes here), and a
flooding agent kept the supervisor's loop from its deadlines."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from conftest import HERE, Topo
from topo.process.control import SILENCE
from topo.supervisor.runstate import ABANDON_AFTER, KILL_AFTER

GRACE = 1.0


@pytest.mark.parametrize("mode", ["deaf", "flood"])
def test_a_stop_ends_within_its_deadlines_whatever_an_agent_does(topo: Topo, mode: str) -> None:
    path = topo.file(f"""
        topology: rogue
        hosts:
          local: {{address: 127.0.0.1}}
          far: {{address: 127.0.0.1, launch: [{sys.executable}, {HERE / "rogueagent.py"}, {mode}]}}
        nodes:
          here: {{run: itnodes:block_forever, sockets: {{in: PULL}}}}
          there: {{run: itnodes:block_forever, host: far, sockets: {{out: PUSH}}}}
        links: [there.out -> here.in]
        """)
    proc = topo.start("up", path, "--grace", str(GRACE))
    seen = topo.wait_for_lines(proc, [r"host far: rogue agent: connected"])  # (it claims a process)
    proc.send_signal(signal.SIGINT)
    asked = time.monotonic()
    # the stop's own deadlines, and as much again for a loaded machine; the rogue agent
    # itself lives 120 s, which is what a stop waited for before
    bound = 2 * (GRACE + KILL_AFTER + ABANDON_AFTER)
    rest, _ = proc.communicate(timeout=bound + 30)  # (a hang fails below, not in cleanup)
    out = "".join(seen) + rest
    took = time.monotonic() - asked
    assert took < bound, f"the stop took {took:.1f}s\n{out}"
    assert proc.returncode == 130, out
    assert f"host far lost: its agent did not report the end of process there {ABANDON_AFTER:g}s after SIGKILL" in out
    assert ABANDON_AFTER == SILENCE  # an agent is given as long as it may be silent
