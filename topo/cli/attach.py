"""``topo attach``: a running run's output, as ``topo up`` shows it, until the run ends.

What ``topo up -d`` leaves in the background (or a foreground run in another terminal)
can be followed again: from now, or from its last N lines (``--tail``), with the run's
exit status at its end (``outcome.json``, next to its logs).

Ctrl-C is passed on, as ``docker attach`` passes SIGINT on to its container: the run
gets the Ctrl-C a foreground ``topo up`` would get (it stops, 130; a second one cuts the
grace period short) and ``topo attach`` follows it to its end. ``--no-stop`` only
detaches: the run goes on and ``topo attach`` exits 130 at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from topo.cli import epipe
from topo.cli.client import Run, one_run, request
from topo.cli.logview import Source, logged, records
from topo.errors import TopoError
from topo.supervisor import rundir
from topo.supervisor.output import SYSTEM_NAME, Printer

#: The status of a run that ended without recording how (its supervisor was killed).
EXIT_UNKNOWN = 1


def attach(selector: str | None, *, tail: int, stop: bool, color: bool | None) -> int:
    """Follows the one running run ``selector`` names (TOPOLOGY or TOPOLOGY/RUN_ID; none:
    the only run going on) and returns its exit status."""
    run = one_run(selector)
    source = Source(run.identity, Path(str(run.info["log_dir"])), run)
    names = [name for name in logged(source.directory, None) if name != SYSTEM_NAME]
    printer = Printer(sys.stdout, names, color)
    previous = signal.getsignal(signal.SIGINT)
    if stop:
        signal.signal(signal.SIGINT, lambda signum, frame: _pass_on(source, frame))
    try:
        for rec in records(source.directory, None, tail=tail, follow=True, stop=lambda: not source.running(),
                           reader_gone=lambda: epipe.stream_gone(sys.stdout)):
            if rec.name == SYSTEM_NAME:
                printer.system(rec.text)
            else:
                printer.line(rec.name, rec.text, rec.err)
    finally:
        signal.signal(signal.SIGINT, previous)
    return _outcome(source)


def _pass_on(source: Source, frame: FrameType | None) -> None:
    """Ctrl-C to the run: over its control socket, or, while it is still starting (none
    bound yet: only ``topo up`` says so in its ``run.json``), as SIGINT to its ``topo up``,
    once it is still the process ``run.json`` names (a pid reused is someone else's)."""
    assert source.run is not None
    info = rundir.read_info(source.run.path) or source.run.info
    if not rundir.supervisor_alive(info):
        return  # ended meanwhile: the end of the output says how
    try:
        if info.get("starting"):
            os.kill(int(info["pid"]), signal.SIGINT)
        else:
            request(Run(source.run.topology, source.run.run_id, source.run.path, info), {"cmd": "interrupt"})
    except (ProcessLookupError, TopoError) as err:
        os.write(2, f"topo: Ctrl-C not passed on to {source.identity}: {err}\n".encode())
        return
    os.write(2, f"topo: Ctrl-C passed on to {source.identity} (`topo attach --no-stop` only detaches)\n".encode())


def _outcome(source: Source) -> int:
    try:
        outcome = json.loads((source.directory / rundir.OUTCOME_FILE).read_text())
        code = outcome["code"]
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except (OSError, ValueError, KeyError, TypeError):
        pass
    print(f"topo: {source.identity} ended without saying how (its supervisor was killed?)", file=sys.stderr)
    return EXIT_UNKNOWN
