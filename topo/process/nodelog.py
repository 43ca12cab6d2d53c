"""``node.log``: a logger per node whose records are shown under the node's name.

Apart from :mod:`topo.process.capture` so that a node process imports :mod:`logging` only when a
node first uses ``node.log``: every millisecond of a child's imports is paid by every
process of every run.
"""

from __future__ import annotations

import logging
import sys

from topo.process.capture import _LOG_FORMAT, Capture, _active


class _NodeHandler(logging.Handler):
    def __init__(self, node: str, capture: Capture | None) -> None:
        super().__init__()
        self._node = node
        self._capture = capture
        self.setFormatter(logging.Formatter(_LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)
            return
        err = record.levelno >= logging.WARNING
        try:
            capture = self._capture or _active[-1]
        except IndexError:  # no capture: a node run by hand, without topo
            capture = None
        if capture is not None:
            capture.write_line(self._node, text, err)
        else:
            (sys.stderr if err else sys.stdout).write(text + "\n")


def log_handler(name: str, capture: Capture | None = None) -> logging.Handler:
    """Shows records as ``LEVEL message`` under ``name``, through ``capture`` (default: the
    newest open one, looked up per record so a logger outlives a restarted capture).
    WARNING and above are flagged as stderr, where a console handler would put them."""
    return _NodeHandler(name, capture)


def node_logger(
    name: str, level: int = logging.INFO, capture: Capture | None = None
) -> logging.Logger:
    """``node.log``: logger ``topo.node.<name>``, not propagating, so a record shows once,
    under its node, whatever the root logger is set to. Asking again for the same name
    replaces the handler rather than doubling every line."""
    logger = logging.getLogger(f"topo.node.{name}")
    for old in [h for h in logger.handlers if isinstance(h, _NodeHandler)]:
        logger.removeHandler(old)
    logger.addHandler(log_handler(name, capture))
    logger.setLevel(level)
    logger.propagate = False
    return logger
