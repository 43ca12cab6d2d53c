"""The commands that edit a running topology: ``topo restart [RUN] NODE...`` and ``topo
apply [RUN] FILE`` (the difference applied by the run's supervisor,
:mod:`topo.supervisor.applying`; ``--dry-run`` only shows it).

Both name the run as ``topo down`` does (a topology name or ``NAME/RUN_ID``; left out,
the only running one) but before other words, so a first word is taken for the run only
when it is one: for ``restart`` when it names a live run and nodes follow, for ``apply``
when it is not a file (nor named like one, ``.yaml``) and a file follows. Added to the
command group by :mod:`topo.cli.main`; only click is imported until a command runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from topo.cli.sourceopts import Checking, checking_options, topology_options

if TYPE_CHECKING:
    from topo.cli.client import Run
    from topo.file.sources import Sources


@click.command(short_help="Restart nodes of a running topology (their processes).")
@click.argument("names", nargs=-1, required=True, metavar="[RUN] NODE...")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the nodes to be ready again.")
def restart(names: tuple[str, ...], timeout: float) -> None:
    """Restart the processes holding each NODE (every instance of it) or INSTANCE
    of RUN (the only running topology if not named) as a restart policy would,
    whatever the nodes' policy: stopped with the grace period, started again,
    gated again; the other nodes of a restarted process restart with it, every
    other process goes on and reconnects. Waits until they are ready again.

    Exit status: 0 ready again; 1 one failed to come back (or the run stopped);
    2 no such run or node.
    """
    from topo.cli.client import live_runs, one_run

    selector: str | None = None
    runs, _ = live_runs(None)
    if len(names) > 1 and any(names[0] in (r.topology, r.identity, r.run_id) for r in runs):
        selector, names = names[0], names[1:]
    run = _ready_run(one_run(selector))
    reply = _ask(run, {"cmd": "restart", "nodes": list(names)}, timeout,
                 "its nodes to be ready again (topo ps shows where they are)")
    ready_in = float(reply.get("ready_in", 0.0))
    for proc in reply.get("processes", []):
        where = f" on {proc['host']}" if proc.get("host") not in (None, "local") else ""
        click.echo(f"restarted {', '.join(proc['instances'])} (process {proc['name']}{where}, "
                   f"pid {proc.get('pid')})")
    click.echo(f"{run.identity}: ready again in {ready_in:.2f}s")


@click.command(short_help="Change a running topology to FILE's (only what differs).")
@topology_options
@checking_options()
@click.option("--dry-run", is_flag=True, help="Print the difference; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the started and restarted nodes to be ready.")
def apply(file: Sources, checking: Checking, dry_run: bool, as_json: bool, timeout: float) -> None:
    """Change the running topology RUN (the only one if not named; written before
    FILE) to FILE (read as topo up reads it: -f overlays, --set, --profile),
    touching only what differs, and print what was done: + node added (started,
    gated), - node removed (stopped with the grace period), ~ node changed (what),
    links made or dropped, ↻ process restarted (why), = what stays untouched; then
    how long it took. --dry-run prints the difference and changes nothing. An
    invalid FILE prints its problems and changes nothing.

    Exit status: 0 applied (every started node ready); 1 a node failed to come up
    (named); 2 FILE invalid, another topology, no such run, or a change not done
    yet (nodes on other hosts): nothing changed.
    """
    import dataclasses
    import json

    from topo.cli import sourceopts as reading
    from topo.cli.client import one_run
    from topo.errors import TopoError
    from topo.plan.diff import diff
    from topo.plan.diffview import diff_json, diff_text
    from topo.plan.facts import BadFacts, checked, facts_of, kept_binds
    from topo.plan.planner import make_plan

    selector: str | None = None
    first = file.files[0]
    if len(file.files) > 1 and not os.path.exists(first) and not first.endswith((".yaml", ".yml")):
        selector, file = file.files[0], dataclasses.replace(file, files=file.files[1:])
    topology = reading.load(file, checking)  # an invalid file: its problems, exit 2, nothing asked
    run = _ready_run(one_run(selector))
    if not dry_run:
        _apply(run, file, checking, as_json, timeout)
        return
    reply = _ask(run, {"cmd": "facts"}, 10.0, "the run's plan")
    try:
        running = checked(reply.get("facts"))
    except BadFacts as err:
        raise TopoError(f"run {run.identity} sent a plan topo cannot read: {err}") from None
    with reading.no_gc():  # the running links keep their binding ends (make_plan's keep_binds)
        new_plan = make_plan(topology, keep_binds=kept_binds(running))
    d = diff(running, facts_of(new_plan), link_restarts=True)  # what apply would do, to the letter
    if as_json:
        click.echo(json.dumps({"run": run.identity, "dry_run": True, **diff_json(d)}, indent=2))
    else:
        homes = {name: new_plan.instances[name].process for name in d.added}
        click.echo(diff_text(d, homes))


for _param in apply.params:  # its own FILE argument (topology_options makes one per command)
    if _param.name == "files":
        _param.metavar = "[RUN] FILE..."


def _apply(run: Run, file: Sources, checking: Checking, as_json: bool, timeout: float) -> None:
    """The run's supervisor reads FILE again itself (it trusts no plan it is sent), applies
    the difference and answers once the started nodes are ready."""
    import json

    from topo.cli.client import request
    from topo.errors import TopoError

    payload = {"cmd": "apply", "files": [os.path.abspath(f) for f in file.files], "sets": list(file.sets),
               "profiles": [name for name, _ in file.profiles], "strict": checking.strict,
               "lenient": checking.lenient, "run_check": checking.run_check}
    try:
        reply = request(run, payload, timeout)
    except TopoError as err:
        if "did not answer within" in err.message:
            raise TopoError(f"run {run.identity}: no answer within {timeout:g}s waiting for the applied "
                            "nodes to be ready (topo ps shows where they are)") from None
        raise
    if as_json:
        click.echo(json.dumps({"run": run.identity, "dry_run": False, **reply["diff"],
                               "took": reply.get("took"), "pids": reply.get("pids", {})}, indent=2))
    else:
        click.echo(reply["text"])
        click.echo(f"{run.identity}: applied in {float(reply.get('took', 0.0)):.2f}s")


def _ready_run(run: Run) -> Run:
    from topo.errors import UsageError

    if run.info.get("starting"):
        raise UsageError(f"run {run.identity} is still starting its processes; try again once it runs")
    return run


def _ask(run: Run, payload: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
    from topo.cli.client import request
    from topo.errors import TopoError

    try:
        return request(run, payload, timeout)
    except TopoError as err:
        if "did not answer within" in err.message:
            raise TopoError(f"run {run.identity}: no answer within {timeout:g}s waiting for {what}") from None
        raise


#: Added to the ``topo`` group by :mod:`topo.cli.main`.
COMMANDS = (restart, apply)
