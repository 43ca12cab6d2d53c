"""A node module slow to import (a big library's stand-in), for the go signal's test."""

import time

from itnodes import receive_one as receive_one  # noqa: F401

time.sleep(0.3)  # stands for a heavy import
