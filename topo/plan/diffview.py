"""A plan difference (:mod:`topo.plan.diff`) as ``topo apply`` prints it: one line per
change (``+ node``, ``- node``, ``~ node (args, env)``, ``↻ process NAME``), then what
stays (``= N unchanged``); or one JSON object for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from topo.plan.diff import Change, LinkChange, PlanDiff, grouped, who


def diff_text(d: PlanDiff, processes: dict[str, str] | None = None) -> str:
    """The lines of ``d``. ``processes``: instance → process, to say where an added node
    starts."""
    lines = [f"+ {name}" + (f" (process {processes[name]})" if processes and name in processes else "")
             for name in d.added]
    lines += [f"- {name}" for name in d.removed]
    lines += [f"~ {who(group)} ({words})" for group, words in grouped(d.changed, _words)]
    lines += [_link(ln, d) for ln in d.links]
    for p in d.processes:
        why = f" ({'; '.join(p.why)})" if p.why else ""
        lines.append(f"{p.kind} process {p.name}{why}")
    lines += [f"! {note}" for note in d.notes]
    if d.empty:
        lines.append("nothing to apply: the file's plan is the run's")
    kept = len(d.untouched)
    lines.append(f"= {len(d.unchanged)} unchanged" + (f" ({kept} process{'es' if kept != 1 else ''} untouched)"))
    return "\n".join(lines)


def _words(changes: tuple[Change, ...]) -> str:
    restart = [c.what for c in changes if c.restart]
    in_place = [f"{c.what} {_short(c.old)} → {_short(c.new)}" for c in changes if not c.restart]
    parts = [", ".join(restart)] if restart else []
    if in_place:
        parts.append("in place: " + ", ".join(in_place))
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _link(ln: LinkChange, d: PlanDiff) -> str:
    head = f"{ln.kind} link {ln.src} -> {ln.dst} ({ln.transport}"
    head += f"; {', '.join(ln.why)})" if ln.why else ")"
    how = link_how(ln, d)
    if how == "in place":
        live = ", ".join(f"{a.socket} {a.verb}s" for a in ln.actions if a.in_place)
        return f"{head}: {'unlinked' if ln.kind == '-' else 'linked'} in place ({live})"
    if how == "restart":
        return f"{head}: ↻ restarted (process {', '.join(_restarted_for(ln, d))})"
    return f"{head}: with the processes that {'stop or restart' if ln.kind == '-' else 'start or restart'}"


def link_how(ln: LinkChange, d: PlanDiff) -> str:
    """``in place`` (a running socket connects or disconnects), ``restart`` (a process
    restarted because of this link), or ``with processes`` (those that start, stop or
    restart anyway have it or drop it)."""
    if any(a.in_place for a in ln.actions):
        return "in place"
    return "restart" if _restarted_for(ln, d) else "with processes"


def _restarted_for(ln: LinkChange, d: PlanDiff) -> list[str]:
    label = f"link {ln.src} -> {ln.dst}"
    return [p.name for p in d.processes if p.kind == "↻" and any(w.startswith(label + ":") or w == label
                                                                  for w in p.why)]


def diff_json(d: PlanDiff) -> dict[str, Any]:
    """``d`` for ``topo apply --json``."""
    return {
        "added": list(d.added), "removed": list(d.removed),
        "changed": [{"name": c.name, "node": c.node, "restart": c.restarts,
                     "changes": [asdict(x) for x in c.changes]} for c in d.changed],
        "unchanged": list(d.unchanged),
        "links": [{**asdict(ln), "actions": [asdict(a) for a in ln.actions], "how": link_how(ln, d)}
                  for ln in d.links],
        "processes": {
            "started": [p.name for p in d.processes if p.kind == "+"],
            "stopped": [p.name for p in d.processes if p.kind == "-"],
            "restarted": [{"name": p.name, "why": list(p.why)} for p in d.processes if p.kind == "↻"],
            "untouched": list(d.untouched),
        },
        "endpoints": {"added": list(d.endpoints_added), "removed": list(d.endpoints_removed)},
        "notes": list(d.notes),
        "empty": d.empty,
    }
