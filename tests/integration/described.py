"""A process as the kernel sees it, for a test's failure message: what a process that
should have ended is doing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def describe(pid: int) -> str:
    """A process left behind (or still running), as the kernel sees it: its command line,
    its state and parent, the signals it blocks, ignores, catches and has pending (a death
    signal blocked or never sent tells apart the ways a process outlives its parent), where
    it sleeps, and its threads' stacks where ``py-spy`` is at hand."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            line = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/status") as f:
            status = dict(row.split(":", 1) for row in f.read().splitlines() if ":" in row)
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip()
        fields = ("State", "PPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
        facts = ", ".join(f"{k} {status.get(k, '?').strip()}" for k in fields)
        threads = _threads(pid)
        stacks = ""
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
        if spy and "python" in line:  # where its threads are, where py-spy is at hand (not CI)
            dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                                  timeout=30, check=False)
            stacks = f"\n{dump.stdout}{dump.stderr}"
        return f"{pid}: {line} ({facts}, wchan {wchan}; threads: {threads}){stacks}"
    except OSError:
        return f"{pid}: (gone)"


def _threads(pid: int) -> str:
    """Each thread's name, state and where it sleeps (where py-spy is not at hand, CI, the
    names still say which of topo's threads waits on what)."""
    out = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
            out.append(f"{tid} {name!r} {state} {wchan}")
        except OSError:
            out.append(f"{tid} (gone)")
    return "; ".join(out)
