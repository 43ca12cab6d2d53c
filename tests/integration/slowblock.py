"""A node module slow to import (a big library's stand-in): a run with it cannot be ready
within a second of its process's start, so a stop sent at once lands during start-up."""

import time

from itnodes import block_forever as block_forever  # noqa: F401

time.sleep(1.0)  # stands for a heavy import
