"""What an edit does to the run's hosts: the agents ``topo apply`` launches, stops or
launches again, and the running processes that must restart to admit a new host.

Pure (no zmq, no process), on :func:`topo.plan.facts.facts_of`'s facts, as
:mod:`topo.plan.diff` is; the diff calls it.

- A host that runs a process in the new plan and none in the old one gets its agent
  launched (as at ``topo up``) when its first process starts.
- A host that ran processes and runs none any more has its agent stopped once the last
  of them has ended: nothing of the run is left on it.
- A host in use whose ``address``, ``launch`` or ``python`` changed runs its processes
  under a new agent: :mod:`topo.plan.diff` restarts every process there already
  (``host H changed``); this only says that the agent goes with them.
- A running process that serves CURVE (binds a secure tcp endpoint) admits the hosts its
  ZAP handler knows (:mod:`topo.process.curve`). One that a process of a host new to the
  run will dial is given that host's key in place (the supervisor tells every running
  process, :meth:`topo.supervisor.processes.Processes.admit_keys`): it goes on, and the
  diff only says so. One dialling a new host's endpoint needs that host's key too, but
  it dials a new link: the diff restarts it anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from topo.plan.planner import Plan

#: Host fields whose change means a new agent (the facts of a host).
AGENT_FIELDS = ("address", "launch", "python")


def local_host(facts: Mapping[str, Any]) -> str:
    """The host ``topo up`` runs on, as :attr:`topo.plan.planner.Plan.local_host` says."""
    names = list(facts["hosts"])
    return "local" if "local" in names or len(names) != 1 else names[0]


def used_hosts(facts: Mapping[str, Any]) -> set[str]:
    """The hosts other than the local one that run a process (and so have an agent)."""
    return {p["host"] for p in facts["processes"].values()} - {local_host(facts)}


def host_notes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The lines ``topo apply`` prints about agents (``! host h3 added: ...``)."""
    before, after = used_hosts(old), used_hosts(new)
    notes = [f"host {h} added: its agent is launched" for h in sorted(after - before)]
    notes += [f"host {h} no longer used: its agent is stopped once its processes have ended"
              for h in sorted(before - after)]
    for h in sorted(before & after):
        changed = [f for f in AGENT_FIELDS if old["hosts"][h].get(f) != new["hosts"][h].get(f)]
        if changed:
            notes.append(f"host {h} changed ({', '.join(changed)}): its processes restart under a new agent")
    return notes


def curve_admits(old: Mapping[str, Any], new: Mapping[str, Any], moving: set[str]) -> list[str]:
    """The notes ``topo apply`` prints for each running process left alone (not in
    ``moving``) that binds a CURVE endpoint a process of a host new to the run will dial:
    it admits that host in place."""
    known = {p["host"] for p in old["processes"].values()} | {local_host(old)}
    instances = new["instances"]
    why: dict[str, list[str]] = {}
    for ln in new["links"].values():
        if not ln["secure"] or ln["transport"] != "tcp":
            continue
        dialer = ln["to"] if ln["binds"] == ln["from"] else ln["from"]
        binder = ln["binds"].rpartition(".")[0]
        far = instances[dialer.rpartition(".")[0]]["host"]
        process = instances[binder]["process"]
        if far in known or process in moving or process not in old["processes"]:
            continue
        if far not in why.setdefault(process, []):
            why[process].append(far)
    return [f"process {p} admits new host{'s' if len(h) > 1 else ''} {', '.join(h)} in place "
            "(its CURVE server is given the key)" for p, h in sorted(why.items())]


def host_refusal(old: Plan, new: Plan) -> str | None:
    """Why the hosts of a run cannot become ``new``'s (None: they can): the supervisor
    stays where it runs, and its agents reach it at the address they started with."""
    if new.local_host != old.local_host:
        return (f"the file's local host is {new.local_host!r}, the run's {old.local_host!r}: "
                "the supervisor cannot move; nothing was changed")
    if new.remote_hosts and new.local_host not in {h.name for h in new.hosts}:
        return (f"{new.file}: nodes run on other hosts, so the file needs a host named 'local' "
                "(this machine) whose address the other hosts can reach; nothing was changed")
    if old.remote_hosts and new.remote_hosts and old.host(old.local_host).address != new.host(new.local_host).address:
        return (f"the local host's address changed ({old.host(old.local_host).address} → "
                f"{new.host(new.local_host).address}): the agents reach the supervisor at the one "
                "it started with; nothing was changed")
    return None
