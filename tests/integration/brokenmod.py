"""A node module whose import raises: its node fails before it is ready."""

raise RuntimeError("brokenmod cannot be imported")


def run(node: object) -> None:  # pragma: no cover - never reached
    pass
