"""The weather example's subscriber in a module slow to import (a big library's
stand-in): it is late to bind, and the C publisher's first update must still reach it."""

import time

from examples.weather import client as client  # noqa: F401

time.sleep(0.3)  # stands for a heavy import; this delay is what the test is about
