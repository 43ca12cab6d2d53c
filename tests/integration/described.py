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
        stacks = ""
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
        if spy and "python" in line:  # where its threads are, where py-spy is at hand (not CI)
            dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                                  timeout=30, check=False)
            stacks = f"\n{dump.stdout}{dump.stderr}"
        return f"{pid}: {line} ({facts}, wchan {wchan}){stacks}"
    except OSError:
        return f"{pid}: (gone)"
