"""The nodes' code of a process, imported in the background from the process's first steps.

A node's module may take a second to import (a big library); the process meanwhile has zmq
and its runtime to import, sockets to bind and connect and a gate to pass. So each module
is imported in a thread of its own, started before the process imports zmq
(:mod:`topo.process.prelude`), and everything else goes on beside it. A module is imported once
however many nodes of the process run from it (the replicas of a node): one thread per
module, not per node. A failed import still fails its nodes at once: the wiring thread
looks at :attr:`NodeCode.error` in every wait, and is poked when an import ends.

No zmq here: this runs before the process has imported it.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable

from topo.plan.share import InstanceShare

if TYPE_CHECKING:
    from topo.process.capture import Capture


def resolve(reference: str) -> Callable[..., Any]:
    """``module:attr.path`` to the callable it names."""
    module_name, _, attr = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    return target  # type: ignore[no-any-return]


class ModuleImport(threading.Thread):
    """One module's import; its output is the first node's that runs from it."""

    def __init__(self, module: str, node: str, capture: Capture | None) -> None:
        super().__init__(name=f"topo:import:{module}", daemon=True)
        self.module = module
        self.node = node
        self.capture = capture
        self.done = threading.Event()
        self.error: BaseException | None = None
        #: Called when the import ends (the wiring thread's wake-up, set once it exists:
        #: an import that ends before is seen by its first look anyway).
        self.notify: Callable[[], None] | None = None

    def begin(self) -> None:
        """A module already imported is done at once, without a thread."""
        module = sys.modules.get(self.module)
        if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
            self.done.set()
            return
        self.start()

    def run(self) -> None:
        if self.capture is not None:
            self.capture.bind_thread(self.node)  # what an import prints is the node's
        try:
            importlib.import_module(self.module)
        except BaseException as err:  # noqa: BLE001 - reported as each of its nodes' failure
            self.error = err
        finally:
            if self.capture is not None:
                self.capture.unbind_thread()
            self.done.set()
            notify = self.notify
            if notify is not None:
                notify()


class NodeCode:
    """One node's function, once its module is imported: what the wiring thread waits for
    before it hands the node over."""

    def __init__(self, reference: str, module: ModuleImport) -> None:
        self.reference = reference
        self.module = module
        self.done = module.done
        self._fn: Callable[..., Any] | None = None
        self._error: BaseException | None = None
        self._resolved = False

    @property
    def error(self) -> BaseException | None:
        """The module's import error, or why the name does not resolve to a callable;
        None while the import runs."""
        if not self.done.is_set():
            return None
        self._resolve()
        return self._error

    @property
    def fn(self) -> Callable[..., Any] | None:
        self._resolve()
        return self._fn

    def _resolve(self) -> None:
        if self._resolved or not self.done.is_set():
            return
        self._resolved = True
        if self.module.error is not None:
            self._error = self.module.error
            return
        try:
            self._fn = resolve(self.reference)
        except BaseException as err:  # noqa: BLE001 - reported as the node's failure
            self._error = err


def start_imports(instances: Iterable[InstanceShare], capture: Capture | None) -> dict[str, NodeCode]:
    """Every node's code, by instance name, its module's import started (one per module)."""
    modules: dict[str, ModuleImport] = {}
    code: dict[str, NodeCode] = {}
    for inst in instances:
        name = inst.run.partition(":")[0]
        if name not in modules:
            modules[name] = ModuleImport(name, inst.name, capture)
        code[inst.name] = NodeCode(inst.run, modules[name])
    for module in modules.values():
        module.begin()
    return code
