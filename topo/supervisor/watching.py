"""``topo up --watch FILE``: each saved version of FILE (and of its ``-f`` overlays) applied
to the live run as ``topo apply`` applies it, and the nodes whose code changed restarted
as ``topo restart`` restarts them.

A thread of the ``topo up`` process (which is the run's supervisor) waits on the file
system (:mod:`watchfiles`: inotify, no polling) and does the slow part itself: reading and
checking the saved file, planning it, reading the node modules' imports. The supervisor's
loop is only handed the result (:meth:`Supervisor.call_soon`, :meth:`Applier.post`), so it
never waits on a file; and everything that prints or touches the run's state happens in
the loop's thread, as for a ``topo apply`` from another terminal.

What is watched is the directories holding the files of interest (an editor's save by
writing a temporary file and renaming it over the old one replaces the file, and a watch
on the file itself would be lost with it), filtered to those files. One save is one
batch: the events of a save (truncate and write; write a temporary file, rename it;
several writes) come within milliseconds and are grouped until none has come for
:data:`STEP_MS`; and a batch whose files read the same as the last one seen does
nothing, so a save that changes nothing, or a second batch of the same save, is not
applied twice.

A module's files are found by reading the source (:mod:`topo.file.localcode`), not by
importing it. A saved module that does not compile is reported with its line and its
nodes are left running; the next save that compiles restarts them.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.errors import InvalidTopology, TopoError

if TYPE_CHECKING:
    from topo.file.sources import Sources
    from topo.plan.planner import Plan
    from topo.supervisor.supervise import Supervisor

#: A save's events are grouped until none has come for this long (milliseconds)...
STEP_MS = 100
#: ...or for at most this long.
DEBOUNCE_MS = 400
#: How often the watching thread looks whether it is to stop (milliseconds).
TIMEOUT_MS = 200


class Watcher:
    """The watching thread of one ``topo up --watch``."""

    def __init__(self, sup: Supervisor, file: Sources, checking: dict[str, Any]) -> None:
        """``checking``: ``strict``, ``lenient``, ``run_check``, as ``topo apply`` sends them."""
        self.sup = sup
        self.sources = [str(Path(f).resolve()) for f in file.files]
        # read as named (its problems' locations then read as topo check's): this process's
        # directory is the one they were named in
        self.request: dict[str, Any] = {"files": list(file.files), "sets": list(file.sets),
                                        "profiles": [name for name, _ in file.profiles], **checking}
        self._stop = threading.Event()
        self._remap = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topo-watch", daemon=True)
        #: Each module file → the instances whose code it is part of.
        self.users: dict[str, set[str]] = {}
        self._seen: dict[str, str] = {}  # each watched file's content, as last acted on (digest)

    def start(self) -> None:
        """Watching from now on (what to watch is read by the thread: the loop starts now)."""
        import watchfiles  # noqa: F401 - missing, it says so before the run starts

        self._seen.update({p: self._digest(p) for p in self.sources})
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread (within :data:`TIMEOUT_MS` or one apply's reading)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        import watchfiles

        self._map_modules(self.sup.plan)
        while not self._stop.is_set():
            dirs = self._dirs()
            wanted = set(self.sources) | set(self.users)
            first = True
            try:
                for changes in watchfiles.watch(
                        *dirs, watch_filter=lambda _c, path: path in wanted, debounce=DEBOUNCE_MS, step=STEP_MS,
                        stop_event=self._stop, rust_timeout=TIMEOUT_MS, yield_on_timeout=True, recursive=False,
                        raise_interrupt=False):
                    if self.sup.code is not None:  # the run stops: nothing more to hand its loop
                        return
                    paths = {path for _, path in changes}
                    if first:  # watching (again): a save made meanwhile is seen by its content
                        paths, first = paths | wanted, False
                    if paths:
                        self._changed(paths)
                    if self._remap.is_set():  # an apply changed the nodes or the path
                        self._remap.clear()
                        self._map_modules(self.sup.plan)
                    if self._dirs() != dirs or set(self.sources) | set(self.users) != wanted:
                        break  # other files to watch: watched anew
            except Exception as err:  # noqa: BLE001 - the watch ends; the run goes on
                if not self._stop.is_set():
                    self._say(f"--watch: stopped watching: {type(err).__name__}: {err}")
                return

    def _dirs(self) -> list[str]:
        return sorted({os.path.dirname(p) for p in (*self.sources, *self.users) if os.path.isdir(os.path.dirname(p))})

    def _changed(self, paths: set[str]) -> None:
        seen = time.monotonic()
        digests = {p: self._digest(p) for p in self.sources}
        saved = [p for p in self.sources if p in paths and digests[p] != self._seen.get(p)]
        if saved and "" not in digests.values():  # (one in the middle of its rename: its next event comes)
            self._seen.update(digests)
            self._apply(seen, [os.path.basename(p) for p in saved])
        modules = sorted(p for p in paths if p in self.users and self._digest(p) != self._seen.get(p))
        if modules:
            self._restart(modules)

    def _apply(self, seen: float, saved: list[str]) -> None:
        """The saved files read, checked and planned here; the plan handed to the loop."""
        from topo.supervisor.applying import read

        name, what = os.path.basename(self.sources[0]), ", ".join(saved)
        try:
            plan = read(self.request, self.sup.plan)
        except TopoError as err:
            count = len(err.errors) if isinstance(err, InvalidTopology) else 0
            tally = f"\n{count} problem{'' if count == 1 else 's'}" if count else ""
            self._say(f"{what} saved: not applied, the run goes on as it was:\n{err.format_message()}{tally}")
            return
        except Exception as err:  # noqa: BLE001 - a save must never end the run it edits
            self._say(f"{what} saved: not applied: cannot read it: {type(err).__name__}: {err}")
            return

        def done(reply: dict[str, Any]) -> None:  # in the loop's thread
            took = time.monotonic() - seen
            if reply.get("ok"):
                self.sup.reporter.system(f"{name} applied in {took:.2f}s:")
                self._remap.set()  # the thread reads the new nodes' modules
            else:
                self.sup.reporter.system(f"{what} saved: not applied: {reply.get('error')}")
            if reply.get("text"):
                self.sup.reporter.system(str(reply["text"]))

        self._say(f"{what} saved: applying")
        self.sup.edits.applier.post(plan, done, by="topo up --watch")
        self._map_modules(plan)  # its new nodes' code watched from now on, not once applied

    def _restart(self, paths: list[str]) -> None:
        """The nodes whose code one of ``paths`` is restarted, unless one does not compile."""
        broken = []
        for path in paths:
            self._seen[path] = self._digest(path)
            try:
                compile(Path(path).read_bytes(), path, "exec", dont_inherit=True)
            except SyntaxError as err:
                broken.append(f"{path}:{err.lineno}:{err.offset}: {err.msg}")
            except (OSError, ValueError) as err:
                broken.append(f"{path}: {err}")
        names = [os.path.basename(p) for p in paths]
        if broken:
            self._say(f"{', '.join(names)} saved: nodes not restarted, the run goes on as it was:\n"
                      + "\n".join(broken))
            return
        instances = sorted({i for p in paths for i in self.users.get(p, ())})

        def restart() -> None:  # in the loop's thread
            sup = self.sup
            live = tuple(i for i in instances if i in sup.plan.instances)
            if sup.code is not None or not live:
                return
            sup.reporter.system(f"{', '.join(names)} saved: restarting {', '.join(live)}")
            sup.edits.restart(live, by="topo up --watch")

        self.sup.call_soon(restart)
        self._map_modules(self.sup.plan)  # what they import now

    # -- what is watched -------------------------------------------------------------------

    def _map_modules(self, plan: Plan) -> None:
        """Which file is whose code in ``plan``'s local nodes (the modules found where the
        node processes import from: ``plan``'s ``python_path:``, then the run's path)."""
        import topo
        from topo.file.localcode import node_files

        roots = list(dict.fromkeys([*plan.python_path, *self.sup.sys_path]))
        own = [str(Path(topo.__file__).resolve().parent)]
        by_module: dict[str, frozenset[str]] = {}
        users: dict[str, set[str]] = {}
        for name, inst in plan.instances.items():
            if inst.host != plan.local_host or inst.process in self.sup.external:
                continue
            module = inst.run.partition(":")[0]
            if module not in by_module:
                by_module[module] = node_files(module, roots, skip=own)
            for path in by_module[module]:
                users.setdefault(path, set()).add(name)
        for path in users:
            self._seen.setdefault(path, self._digest(path))
        self.users = users

    @staticmethod
    def _digest(path: str) -> str:
        """The file's content, as a digest; "" if it cannot be read (gone, in the middle
        of a save by rename)."""
        try:
            return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
        except OSError:
            return ""

    def _say(self, text: str) -> None:
        """A message of topo's, written by the loop's thread (the reporter is its own)."""
        self.sup.call_soon(lambda: self.sup.reporter.system(text))
