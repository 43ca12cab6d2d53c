"""The ``topo`` command line: the command group, and the commands that read a topology
file (those that act on a run are :mod:`topo.cli.runcmds`'s, added to the group here).

Each command is a small function that loads what it needs and hands it to a module that
does the work (:mod:`topo.plan.planview`, :mod:`topo.plan.graph`, ...). Errors are mapped to exit
codes in one place, :meth:`_TopoGroup.invoke`: a :class:`topo.errors.TopoError` prints its
message to stderr and exits with its ``exit_code``; nothing a user types or writes in a
file ever ends in a Python traceback. A reader that has gone (``topo logs RUN | head``)
ends the command without a word, by SIGPIPE as ``cat`` ends (:mod:`topo.cli.epipe`).

Start-up stays fast (``topo --help`` well under 0.3 s): only click and :mod:`topo` itself
are imported here; each command imports the modules it uses (yaml, zmq, psutil...) inside
its function.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from topo.cli import early  # first: Ctrl-C handled from here on (see there)
from topo.cli import epipe, runcmds
from topo.cli import editcmds
from topo.cli import sourceopts as reading
from topo.cli.sourceopts import Checking, checking_options, topology_options

import click

from topo import __version__

if TYPE_CHECKING:
    from topo.errors import TopoError
    from topo.file.sources import Sources

#: Exit status of a bug in topo itself (sysexits' EX_SOFTWARE), kept apart from the
#: statuses the commands document. ``TOPO_DEBUG=1`` shows the traceback instead.
EXIT_INTERNAL = 70
#: Exit status after Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = early.EXIT_INTERRUPTED
#: Exit status when stdout's (or stderr's) reader has gone: the ``topo`` command dies
#: by SIGPIPE, as ``cat`` does (:mod:`topo.cli.epipe`).
EXIT_PIPE = epipe.EXIT_PIPE


class _TopoGroup(click.Group):
    """The one place where errors become exit statuses."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _reader_gone_ends_quietly(ctx):  # `topo --help | head` prints here, before invoke
            return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                          list[str]]:
        """The command found, it gets Python's Ctrl-C handler back (:mod:`topo.cli.early`),
        except ``topo up``, which keeps the early one until its own take over."""
        name, command, rest = super().resolve_command(ctx, args)
        if name != "up" and signal.getsignal(signal.SIGINT) is early.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        from topo.errors import TopoError

        with _reader_gone_ends_quietly(ctx):  # around the reports below too: stderr may be gone
            try:
                return super().invoke(ctx)
            except TopoError as err:
                _report(err)
                ctx.exit(err.exit_code)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(EXIT_INTERRUPTED)
            except Exception as err:  # the last line of defence against tracebacks
                if epipe.reader_gone(err):
                    raise
                if _interrupted(err):
                    click.echo("interrupted", err=True)
                    ctx.exit(EXIT_INTERRUPTED)
                if os.environ.get("TOPO_DEBUG"):
                    raise
                click.echo(
                    f"topo: internal error: {type(err).__name__}: {err}\n"
                    "This is a bug in topo; run again with TOPO_DEBUG=1 to see the traceback.",
                    err=True,
                )
                ctx.exit(EXIT_INTERNAL)


def _interrupted(err: BaseException) -> bool:
    """A Ctrl-C that Python wrapped in another exception on its way up: one landing while
    a class is made (during an import) comes out as ``RuntimeError: Error calling
    __set_name__`` with the KeyboardInterrupt as its cause (Python 3.11; seen in CI for a
    Ctrl-C in topo up's first second, reported as an internal error, exit 70)."""
    seen = 0
    cause: BaseException | None = err
    while cause is not None and seen < 16:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


@contextmanager
def _reader_gone_ends_quietly(ctx: click.Context) -> Iterator[None]:
    """stdout's or stderr's reader has gone (``topo logs RUN | head``): no message, the
    streams silenced, status :data:`topo.cli.epipe.EXIT_PIPE` (see there)."""
    try:
        yield
    except BrokenPipeError as err:
        if not epipe.reader_gone(err):
            raise
        epipe.silence()
        ctx.exit(EXIT_PIPE)


def _report(err: TopoError) -> None:
    from topo.errors import InvalidTopology

    message = err.format_message()
    if message:
        click.echo(message, err=True)
    if isinstance(err, InvalidTopology):
        count, warned = len(err.errors), len(err.warnings)
        also = f", {warned} warning{'' if warned == 1 else 's'}" if warned else ""
        click.echo(f"{count} problem{'' if count == 1 else 's'}{also}" if count else "invalid topology", err=True)


@click.group(
    cls=_TopoGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", "-V", prog_name="topo", message="%(prog)s %(version)s")
def cli() -> None:
    """Launch a ZeroMQ system described in one YAML file.

    Nodes get ready, wired pyzmq sockets; topo picks each link's transport,
    starts the processes and tears everything down afterwards.
    """
    if "SLURM_JOB_ID" in os.environ:  # hosts: {from: slurm} asks Slurm (imported only here)
        from topo.hosts.slurm import install

        install()


@cli.command(short_help="Validate FILE and print every problem.")
@topology_options
@checking_options()
@click.option("--import", "import_", is_flag=True,
              help="Also import each node's run: module, each in a child process, for what "
                   "reading the code cannot tell (runs the modules' top-level code).")
@click.option("--import-timeout", type=click.FloatRange(min=0.0, min_open=True), default=30.0,
              show_default=True, metavar="SECONDS", help="How long the imports may take together.")
def check(file: Sources, checking: Checking, import_: bool, import_timeout: float) -> None:
    """Validate FILE; print every problem as FILE:LINE:COL: message. Each
    node's run: is resolved on the path its process will import from (the
    current directory, FILE's directory, PYTHONPATH), its code not executed.
    Warnings (FILE:LINE:COL: warning: message) do not fail the file unless
    --strict is given; --lenient makes a socket with no link a warning.

    Exit status: 0 valid (warnings or not), 2 invalid.
    """
    from topo.plan.planview import check_summary

    topology = reading.load(file, checking)
    if import_:
        reading.imports(file, topology, import_timeout)
    click.echo(check_summary(file.describe(), topology))


@cli.command(short_help="Print the wiring: transports, endpoints, binding ends.")
@topology_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@checking_options()
def plan(file: Sources, as_json: bool, checking: Checking) -> None:
    """Print the wiring of FILE: processes, and per link its transport,
    endpoint and binding end.

    Exit status: 0, or 2 if FILE is invalid.
    """
    from topo.plan.planview import plan_json, plan_table

    p = reading.plan(file, checking)
    click.echo(plan_json(p) if as_json else plan_table(p), nl=as_json)


@cli.command(short_help="Draw nodes, processes, hosts and links (mermaid or dot).")
@topology_options
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"], case_sensitive=False),
    default="mermaid", show_default=True, help="Mermaid flowchart or Graphviz dot.",
)
@checking_options(run_check=False)
def graph(file: Sources, fmt: str, checking: Checking) -> None:
    """Draw the nodes of FILE inside their processes and hosts, and the links
    between them with their transports.

    Exit status: 0, or 2 if FILE is invalid.
    """
    from topo.plan.graph import to_dot, to_mermaid

    p = reading.plan(file, checking)
    click.echo(to_dot(p) if fmt.lower() == "dot" else to_mermaid(p), nl=False)


@cli.command(short_help="Launch FILE: spawn, wire, gate, run, stop.")
@topology_options
@click.option("--ready-timeout", type=click.FloatRange(min=0.0, min_open=True), default=30.0,
              show_default=True, metavar="SECONDS",
              help="Fail the run if a node is not ready (imported, wired, subscribed) by then.")
@click.option("--grace", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
              metavar="SECONDS", help="Time nodes get to end after a stop, before SIGTERM/SIGKILL.")
@click.option("--color/--no-color", default=None,
              help="Colour the node prefixes (default: on a terminal, unless NO_COLOR is set).")
@checking_options()
@click.option("-d", "--detach", is_flag=True,
              help="Run in the background: return once every node is ready, printing the run id.")
@click.option("--record", "record", metavar="OUT.mcap",
              help="Record every socket's messages, from the first one, to an MCAP file.")
@click.option("--record-only", "record_only", multiple=True, metavar="NODE.SOCKET[,...]",
              help="With --record: only these sockets (repeatable, or a comma list).")
@click.option("--watch", is_flag=True,
              help="Apply each saved version of FILE (and overlays); restart nodes whose code is saved.")
@click.option("--status-fd", type=int, hidden=True)  # the background half of -d (topo.cli.detach)
@click.option("--status-tty", is_flag=True, hidden=True)
@click.pass_context
def up(ctx: click.Context, file: Sources, ready_timeout: float, grace: float, color: bool | None,
       checking: Checking, detach: bool, record: str | None, record_only: tuple[str, ...], watch: bool,
       status_fd: int | None, status_tty: bool) -> None:
    """Launch the topology in FILE and stream every node's output, prefixed
    with its name, until every node has returned or the run is stopped.

    With -d, the same until every node is ready; then the run goes on in the
    background (follow it with `topo logs -f` or `topo attach`, stop it with
    `topo down`) and its TOPOLOGY/RUN_ID is printed.

    With --record OUT.mcap, what every socket (or each --record-only one)
    sends and receives is recorded from the first message (docs/recording.md).

    With --watch (in the foreground only), each saved version of FILE is
    applied as `topo apply` applies it, and nodes whose module (or a local
    module it imports) is saved are restarted (docs/editing.md).

    Exit status: 0 all went well (or stopped by `topo down`; with -d: all
    ready); 1 a node failed; 2 FILE is invalid; 130 Ctrl-C; 143 SIGTERM.
    """
    if watch and detach:
        from topo.errors import UsageError

        raise UsageError("--watch stays in the foreground (what each save does is printed there): "
                         "leave out -d, or use topo apply on a detached run")
    if detach and status_fd is None:
        from topo.cli.detach import up_detached

        ctx.exit(up_detached(file, ready_timeout=ready_timeout, grace=grace, color=color, checking=checking,
                             record=record, record_only=record_only))
    from topo.cli.launch import up as launch
    from topo.supervisor.recorder import split_targets

    ctx.exit(launch(file, ready_timeout=ready_timeout, grace=grace, color=color, checking=checking,
                    status_fd=status_fd, status_tty=status_tty, record=record,
                    record_only=split_targets(record_only), watch=watch))


@cli.command(short_help="Print FILE as it runs: overlays merged, values set, profiles applied.")
@topology_options
@checking_options(run_check=False)
def config(file: Sources, checking: Checking) -> None:
    """Print the topology that FILE (with its -f overlays, --set values and
    --profile selection) resolves to, as YAML: the files merged, ${VAR}
    substituted, nodes of unselected profiles and their links left out.
    The result is validated as topo check does (run: is not looked up).

    Exit status: 0, or 2 if the result is invalid.
    """
    from topo.file.sources import dump
    from topo.file.validate import resolve

    with reading.no_gc():
        resolved = resolve(file, strict=checking.strict, lenient=checking.lenient)
    assert resolved.topology is not None
    for warning in resolved.topology.warnings:
        click.echo(warning.render(), err=True)
    click.echo(dump(resolved.data), nl=False)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the topology file, for editors."""
    from topo.file.schema import schema_json

    click.echo(schema_json())


for _command in runcmds.COMMANDS:
    cli.add_command(_command)
for _command in editcmds.COMMANDS:  # topo restart, topo apply
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``topo`` console script (and of ``python -m topo``)."""
    early.install()  # (again: imported by a program other than the command itself)
    try:
        cli.main(prog_name="topo")
    except SystemExit as done:
        if done.code is not None and not isinstance(done.code, int):
            raise  # a message to print: the interpreter's own exit does that
        _exit_now(done.code or 0)
    except BrokenPipeError as err:  # click reporting a wrong command line to a gone stderr
        if not epipe.reader_gone(err):
            raise
        epipe.silence()
        _exit_now(EXIT_PIPE)
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """Ends the process once the command is done, skipping the interpreter's teardown.

    That teardown (every module's namespace cleared, a last garbage collection over all
    that click, yaml, zmq and psutil created) does nothing a finished command needs, and
    costs ``topo up`` some 50 ms between its summary and its exit. What the ordinary exit
    does that matters is kept: ``atexit`` handlers run and the standard streams are
    flushed. A non-daemon thread still running, or a stream that cannot be flushed,
    leaves the exit to the interpreter, which waits for the one and reports the other as
    it always does. A reader that has gone (:data:`EXIT_PIPE`, or found by the last flush)
    ends the process by SIGPIPE, as it ends ``cat`` (:mod:`topo.cli.epipe`).
    """
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # and clears them: a fallback exit below does not run them twice
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError as err:
        if not epipe.reader_gone(err):
            sys.exit(code)
        epipe.silence()
        code = EXIT_PIPE
    except (OSError, ValueError, AttributeError):
        sys.exit(code)
    if code == EXIT_PIPE:
        epipe.die()
    os._exit(code)


if __name__ == "__main__":
    main()
