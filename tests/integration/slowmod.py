"""A node module that takes a second to import, like one loading a big library."""

import time

from itnodes import receive_one as receive_one  # noqa: F401

time.sleep(1.0)  # stands for a heavy import; this delay is what the test is about
