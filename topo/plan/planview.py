"""Plain-text views of a topology and its plan, for ``topo check`` and ``topo plan``.

Pure functions from data to text: no I/O, no colour, no terminal width guessing, so the
output can be piped, diffed and tested as strings.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from topo.plan.share import RUN_DIR

if TYPE_CHECKING:
    from topo.file.model import SocketType, Topology
    from topo.plan.planner import Instance, Plan

ARROW = "→"
_GAP = "  "


def check_summary(file: str, topology: Topology) -> str:
    """``FILE: ok (N nodes, M links)``, with instances and hosts when they differ, and
    `` (K warnings)`` when the file has warnings (printed before it)."""
    nodes = len(topology.nodes)
    instances = sum(n.replicas for n in topology.nodes.values())
    parts = [_count(nodes, "node")]
    if instances != nodes:
        parts.append(_count(instances, "instance"))
    parts.append(_count(len(topology.links), "link"))
    if len(topology.hosts) > 1:
        parts.append(_count(len(topology.hosts), "host"))
    warned = f" ({_count(len(topology.warnings), 'warning')})" if topology.warnings else ""
    return f"{file}: ok: topology {topology.name} ({', '.join(parts)}){warned}"


def plan_json(plan: Plan) -> str:
    """The plan as one JSON object (``topo plan --json``)."""
    return json.dumps(plan.to_json(), indent=2)


def socket_types(plan: Plan) -> dict[str, SocketType]:
    """The type of every ``INSTANCE.SOCKET`` of the plan."""
    return {
        f"{inst.name}.{sock.name}": sock.type
        for inst in plan.instances.values()
        for sock in inst.sockets
    }


def pattern(types: dict[str, SocketType], src: str, dst: str) -> str:
    """``PUB→SUB``: the socket types at both ends of an instance-level link."""
    return f"{types[src].value}{ARROW}{types[dst].value}"


def plan_table(plan: Plan) -> str:
    """``topo plan``: hosts (when there is more than the default one), processes with
    their instances, and every instance-level link with its pattern, transport, binding
    end and endpoint. Columns are aligned; every line ends with a newline."""
    out: list[str] = [f"topology {plan.topology} ({' -f '.join((plan.file, *plan.overlays))})", ""]
    rows: list[tuple[str, ...]]

    if _show_hosts(plan):
        out.append("HOSTS")
        rows = [("HOST", "ADDRESS", "LAUNCH")]
        rows += [(h.name, h.address, " ".join(h.launch) if h.launch else "-") for h in plan.hosts]
        out += table(rows)
        out.append("")

    out.append("PROCESSES (in start order)")
    rows = [("PROCESS", "HOST", "NODE", "RUN")]
    for proc in plan.processes:
        for i, name in enumerate(proc.instances):
            inst = plan.instances[name]
            rows.append((proc.name if i == 0 else "", proc.host if i == 0 else "", name, run_text(inst)))
    out += table(rows)
    out.append("")

    out.append("LINKS")
    if plan.links:
        types = socket_types(plan)
        rows = [("FROM", "TO", "PATTERN", "TRANSPORT", "BINDS", "ENDPOINT")]
        rows += [
            (
                ln.src_instance, ln.dst_instance, pattern(types, ln.src_instance, ln.dst_instance),
                ln.transport.value + ("+curve" if ln.secure else ""), ln.bind_instance, ln.endpoint,
            )
            for ln in plan.links
        ]
        out += table(rows)
        notes = _endpoint_notes(ln.endpoint for ln in plan.links)
        if notes:
            out.append("")
            out += notes
    else:
        out.append("  (none)")
    out += external_table(plan)
    return "".join(line + "\n" for line in out)


def external_table(plan: Plan) -> list[str]:
    """The endpoints outside the topology, one per line with the socket that binds or
    connects it; nothing at all when there are none (the table of a file without them
    stays as it was)."""
    rows: list[tuple[str, ...]] = [
        (f"{inst.name}.{sock.name}", sock.type.value, inst.host, verb, address,
         address.partition("://")[0] + ", plain")
        for inst in plan.instances.values() for sock in inst.sockets
        for verb, addresses in (("binds", sock.external_binds), ("connects", sock.external_connects))
        for address in addresses
    ]
    if not rows:
        return []
    out = ["", "EXTERNAL (peers topo does not start: not waited for, and plain: no CURVE)",
           *table([("SOCKET", "TYPE", "HOST", "ACTION", "ENDPOINT", "SECURITY"), *rows])]
    if any(verb == "binds" and _open_to_network(address) for _, _, _, verb, address, _ in rows):
        out += ["", "  a plain tcp bind beyond loopback: every machine that reaches the port may "
                    "connect, read and send, unauthenticated"]
    return out


def _open_to_network(address: str) -> bool:
    """A tcp endpoint bound on something other than the loopback interface."""
    if not address.startswith("tcp://"):
        return False
    host = address[len("tcp://"):].rpartition(":")[0]
    return host not in ("127.0.0.1", "localhost", "[::1]") and not host.startswith("127.")


def run_text(inst: Instance) -> str:
    """What an instance runs: its ``run:``, or ``exec: PROGRAM ARGS`` (shell-quoted), with
    ``(ready: notify)`` when it is not ready once started."""
    if not inst.exec:
        return inst.run
    notify = " (ready: notify)" if inst.ready == "notify" else ""
    return f"exec: {shlex.join(inst.exec)}{notify}"


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows as lines with left-aligned columns; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths)] + [row[-1]]
        lines.append((indent + _GAP.join(cells)).rstrip())
    return lines


def _show_hosts(plan: Plan) -> bool:
    if len(plan.hosts) != 1:
        return True
    host = plan.hosts[0]
    return host.name != "local" or host.address != "127.0.0.1" or host.launch is not None


def _endpoint_notes(endpoints: Iterable[str]) -> list[str]:
    ipc = tcp = False
    for ep in endpoints:
        ipc = ipc or RUN_DIR in ep
        tcp = tcp or ep.endswith(":*")
    notes = []
    if ipc:
        notes.append(f"  {RUN_DIR}: the run's private directory, made when the run starts")
    if tcp:
        notes.append("  :*: a port the kernel picks at bind time, told to the connecting end")
    return notes


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
