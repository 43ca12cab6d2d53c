"""The commands that act on a run, from any terminal: ``topo ps``, ``down``, ``logs``,
``attach`` and ``record`` (and ``sockets``, ``echo``, ``hz``: :mod:`topo.cli.observe`;
``send``: :mod:`topo.cli.send`).

Kept apart from :mod:`topo.cli.main`, which holds the command group, the commands that
read a topology file and the one place where errors become exit statuses; these are added
to that group there (:data:`COMMANDS`). As there, only click is imported at first: each
command imports what it uses when it runs.
"""

from __future__ import annotations

import sys

import click

from topo.cli import epipe
from topo.cli.observe import echo, hz, sockets
from topo.cli.send import send_command


@click.command(short_help="Running topologies and their nodes.")
@click.argument("topology", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ps(topology: str | None, as_json: bool) -> None:
    """Show running topologies (or only TOPOLOGY, or TOPOLOGY/RUN_ID): per node
    instance its process, pid, state (an ended node's exit and when), restarts,
    uptime, CPU and memory. Runs of the current project (file or start in this
    directory or below) come first, the others are marked [other project]."""
    import json

    from topo.cli.client import format_ps
    from topo.cli.client import ps as list_runs

    entries = list_runs(topology)
    click.echo(json.dumps(entries, indent=2) if as_json else format_ps(entries))


@click.command(short_help="Stop a running topology from another terminal.")
@click.argument("topology", required=False)
@click.option("--timeout", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the run to end.")
def down(topology: str | None, timeout: float) -> None:
    """Stop the running TOPOLOGY (the only one if not named) as Ctrl-C would, wait
    until it has ended, and say how it ended."""
    from topo.cli.client import down as stop_run

    result = stop_run(topology, timeout)
    if result.get("code") is None:
        click.echo(f"{result['run']}: {result.get('reason')}")
    else:
        click.echo(f"{result['run']}: {result.get('reason', 'stopped')} (exit {result.get('code')})")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--since``: a duration back from now or a time, as the log stamp it starts at."""
    from topo.cli.logview import since_stamp

    if value is None:
        return None
    try:
        return since_stamp(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx, param) from None


@click.command(short_help="The log of a running or finished run.")
@click.argument("topology", required=False)
@click.argument("node", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("-n", "--tail", type=click.IntRange(min=0), metavar="N",
              help="Only the last N lines (of all nodes merged, or of NODE), then -f's new ones.")
@click.option("--since", callback=_since, metavar="DURATION|TIME",
              help="Only lines of the last DURATION (90s, 10m, 1h30m, 2d) or since TIME "
                   "(2026-12-03T12:00:00: local time unless it ends in Z or +HH:MM).")
@click.option("-t", "--timestamps", is_flag=True,
              help="Show when each line was written (UTC, as the log files keep it).")
@click.option("--color/--no-color", default=None, help="Colour the node prefixes.")
def logs(topology: str | None, node: str | None, follow: bool, tail: int | None, since: str | None,
         timestamps: bool, color: bool | None) -> None:
    """Print the log of TOPOLOGY's running run, or of its last finished one, for
    every node or only NODE (a replicated node's name covers all its instances).

    Without TOPOLOGY: the only run going on, or, when none is, the last run of the
    only topology with logs (several: an error lists them); `topo logs NODE` is a
    node of that run.

    Exit status: 0 (a node that has not printed yet is no error); 2 no such run or
    node; 141 the reader went away (`| head`).
    """
    from topo.cli import logview
    from topo.supervisor.output import SYSTEM_NAME, Printer

    source, node = logview.resolve(topology, node)
    note = logview.check_node(source, node)
    if note:
        click.echo(f"topo: {note}", err=True)
    # every name that has lines already: one width for the prefixes from the first line on
    names = [name for name in logview.logged(source.directory, node) if name != SYSTEM_NAME]
    printer = Printer(sys.stdout, names, color)
    for rec in logview.records(source.directory, node, tail=tail, since=since, follow=follow,
                               stop=lambda: not source.running(),
                               reader_gone=lambda: epipe.stream_gone(sys.stdout)):
        text = f"{rec.stamp} {rec.text}" if timestamps and rec.stamp else rec.text
        if rec.name == SYSTEM_NAME:
            printer.system(text)
        else:
            printer.line(rec.name, text, rec.err)


@click.command(short_help="Follow a running topology's output until it ends.")
@click.argument("topology", required=False)
@click.option("-n", "--tail", type=click.IntRange(min=0), default=0, metavar="N",
              help="Start with the last N lines (of all nodes merged).")
@click.option("--no-stop", is_flag=True, help="Ctrl-C only detaches; the run goes on.")
@click.option("--color/--no-color", default=None, help="Colour the node prefixes.")
@click.pass_context
def attach(ctx: click.Context, topology: str | None, tail: int, no_stop: bool, color: bool | None) -> None:
    """Follow the output of the running TOPOLOGY (the only one if not named;
    TOPOLOGY/RUN_ID for one of several) as `topo up` shows it, from now until
    the run ends. Ctrl-C stops the run as in `topo up` (--no-stop: only detach).

    Exit status: the run's; 2 no such run; 130 Ctrl-C with --no-stop.
    """
    from topo.cli.attach import attach as follow

    ctx.exit(follow(topology, tail=tail, stop=not no_stop, color=color))


@click.command(short_help="Record a run's messages to MCAP; --info FILE: what a recording holds.")
@click.argument("targets", nargs=-1, metavar="[RUN [NODE.SOCKET]...]")
@click.option("-o", "--output", metavar="FILE.mcap", help="Where the recording goes.")
@click.option("--info", "info_file", metavar="FILE", help="Show FILE's topology, channels, counts and times.")
@click.option("--json", "as_json", is_flag=True, help="With --info: one JSON object.")
@click.option("--count", "-n", type=click.IntRange(min=1), help="End after N messages.")
@click.option("--duration", type=click.FloatRange(min=0.0, min_open=True), metavar="SECONDS",
              help="End after this long.")
def record(targets: tuple[str, ...], output: str | None, info_file: str | None, as_json: bool,
           count: int | None, duration: float | None) -> None:
    """Record what RUN's sockets (every socket of its nodes on this host, or only
    NODE.SOCKET...) send and receive, to -o FILE.mcap, until Ctrl-C, the run's end,
    --count or --duration. With --info FILE, show a recording: its topology, its
    channels (INSTANCE/SOCKET/DIRECTION) with their message counts, sizes and times, and
    whether it is complete (a cut-off recording is read up to where it ends).

    Exit status: 0; 2 a wrong command line, no such run or socket, or FILE is not a
    recording.
    """
    from topo.cli import record as recording

    recording.check_usage(targets, output, info_file)
    if info_file is not None:
        click.echo(recording.info(info_file, as_json))
        return
    assert output is not None
    recording.record_run(targets, output, count=count, duration=duration,
                         say=lambda text: click.echo(f"topo: {text}", err=True))


#: Added to the ``topo`` group by :mod:`topo.cli.main` (``--help`` lists them by name).
COMMANDS = (ps, down, logs, attach, record, sockets, echo, hz, send_command)
