"""A node module slow to import (a big library's stand-in): a run with it is never ready
while a test lasts, so a stop lands during start-up however late it comes (with a second's
import, a loaded machine delivered the test's Ctrl-C after every node was ready)."""

import time

from itnodes import block_forever as block_forever  # noqa: F401

time.sleep(30.0)  # stands for a heavy import
