"""topo.process.memory: a node process keeps freed message buffers mapped instead of faulting them in
again (the inproc 64 KB data-path finding). Each check runs in a fresh interpreter: the
setting is process-wide, and glibc's thresholds depend on what a process did before."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from topo.process.memory import pin_malloc_thresholds, user_tunes_malloc

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# A burst of 64 KB buffers, as libzmq allocates messages: malloc'd and written in one
# thread, all freed, then the same burst again; prints the second burst's page faults.
CHURN = """
import ctypes, json, resource, sys, threading
sys.path.insert(0, {root!r})
from topo.process.memory import pin_malloc_thresholds
pinned = pin_malloc_thresholds() if {pin!r} else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
out = {{}}

def burst():
    blocks = [libc.malloc(65536) for _ in range(200)]
    for b in blocks:
        ctypes.memset(b, 1, 65536)
    for b in blocks:
        libc.free(b)

def sender():
    burst()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    burst()
    out["faults"] = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

t = threading.Thread(target=sender)
t.start()
t.join()
print(json.dumps({{"pinned": pinned, "faults": out["faults"]}}))
"""


def churn(pin: bool, env: dict[str, str] | None = None) -> dict[str, object]:
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[3])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", CHURN.format(root=root, pin=pin)], capture_output=True,
                          text=True, timeout=60, env={**clean, **(env or {})}, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


@glibc_only
def test_pinned_thresholds_keep_a_burst_of_64k_buffers_mapped() -> None:
    unpinned, pinned = churn(pin=False), churn(pin=True)
    assert pinned["pinned"] is True
    # glibc as it starts: the freed burst is trimmed, and its 200 x 16 pages fault in again
    assert int(unpinned["faults"]) > 500, unpinned  # type: ignore[call-overload]
    assert int(pinned["faults"]) < 100, pinned  # type: ignore[call-overload]


@glibc_only
def test_a_user_tuning_malloc_keeps_their_settings() -> None:
    got = churn(pin=True, env={"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert got["pinned"] is False


def test_what_counts_as_user_tuning() -> None:
    assert user_tunes_malloc({"MALLOC_ARENA_MAX": "2"})
    assert user_tunes_malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"})
    assert not user_tunes_malloc({"GLIBC_TUNABLES": "glibc.pthread.rseq=0", "PATH": "/bin"})
    assert pin_malloc_thresholds({"MALLOC_TOP_PAD_": "0"}) is False
