"""A node module whose import never finishes in time, like one stuck on a lock or a network."""

import time

time.sleep(60)  # stands for an import that hangs; the test's deadline is what is tested


def receive_one(node: object) -> None:  # pragma: no cover - never reached
    pass
