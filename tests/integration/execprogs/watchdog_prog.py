"""An exec program that says READY=1 and WATCHDOG=1 once, then hangs (no topo import)."""

import os
import signal
import socket

with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1\nWATCHDOG=1", os.environ["NOTIFY_SOCKET"])
print("watchdog usec", os.environ["WATCHDOG_USEC"], flush=True)
signal.pause()
