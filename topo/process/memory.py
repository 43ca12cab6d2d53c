"""glibc's malloc thresholds, pinned in a node process so message buffers stay mapped.

Why: libzmq allocates every message of more than 33 bytes with ``malloc`` in the sending
thread and frees it in the receiving one. With glibc's start-up thresholds (a trim
threshold of 128 KB, raised only as far as the biggest ``mmap``-ed block a process happens
to have freed so far), each burst of 64 KB messages that a receiver drains leaves the
sender's arena with a large free top, which glibc hands back to the kernel
(``madvise(MADV_DONTNEED)``); the next sends fault those pages in again. Measured on the
inproc 64 KB data path (bench/dp_inproc64.py): ~3 page faults per message, a sender at
~15-20 µs of CPU per message instead of ~10 µs, topo's throughput 0.7-0.9x the hand-wired
baseline's. Both processes pay it; by how much depends on the process's history.

The values pinned are the ceiling glibc's own dynamic rule reaches once a process has freed
a 32 MB block: blocks up to 32 MB come from the arenas, and up to 64 MB of free memory at an
arena's top is kept. A user who tunes malloc through the environment keeps their settings.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the highest mmap threshold mallopt accepts,
#: and where the dynamic threshold stops.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Twice that, as glibc's dynamic rule sets it.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

_USER_TUNING = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                "MALLOC_ARENA_MAX")


def user_tunes_malloc(environ: Mapping[str, str]) -> bool:
    """The environment sets glibc's malloc parameters itself: leave them alone."""
    return any(name in environ for name in _USER_TUNING) or "glibc.malloc." in environ.get("GLIBC_TUNABLES", "")


def pin_malloc_thresholds(environ: Mapping[str, str] = os.environ) -> bool:
    """Sets the thresholds (see the module); True if glibc took them. Process-wide: called
    once, first thing in a node process. A no-op off glibc or when the user tunes malloc."""
    if user_tunes_malloc(environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the mmap threshold first: setting either one turns glibc's dynamic rule off
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
