"""topo: a declarative launcher for ZeroMQ systems.

Public names only; the pipeline lives in its modules: loader → validate → plan →
supervisor → runtime, with the CLI and the test harness on top.
"""

__version__ = "0.1.0"
