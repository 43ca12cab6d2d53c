"""What an exec node's program is given: its environment, its arguments, when it starts.

A program in any language finds its sockets without reading YAML: ``TOPO_SOCKETS`` holds
``{"NAME": {"type": "PUB", "bind": [...], "connect": [...]}, ...}`` as JSON, and for
programs that would rather not parse JSON (a shell script, a small C program) each socket
has plain variables too (:func:`exec_env`). Its arguments may say ``{sockets.NAME}``
(:func:`expand_args`). Endpoint addresses are only known once the run's directory exists
and its tcp ports are bound, so these functions take the final address of every endpoint
key; the runtime calls them when it starts the program. :func:`instance_waits` is the start
rule: an exec instance starts once every instance it sends to is ready.

Everything here is pure: data in, data out.
"""

from __future__ import annotations

import json
import re
from typing import Mapping, NamedTuple

from topo.file.execnodes import PLACEHOLDER, socket_var
from topo.plan.execplan import exec_waits
from topo.plan.planner import Plan
from topo.plan.share import InstanceShare

#: How the endpoints of one socket are joined in a ``{sockets.NAME}`` argument (one
#: argument, which a program splits) and in a plain variable (a shell's ``for ep in $V``).
ARG_SEPARATOR = ","
VAR_SEPARATOR = " "


class Wiring(NamedTuple):
    """One socket as its program sees it: its type, what it binds, what it connects to."""

    type: str
    bind: tuple[str, ...]
    connect: tuple[str, ...]
    #: A SUB's topics as the file declares them (the program subscribes to them itself).
    subscribe: tuple[str, ...] = ()
    #: The file's ``options:`` (zmq option name → value), for the program to set itself.
    options: Mapping[str, object] = {}


def wiring(inst: InstanceShare, addresses: Mapping[str, str]) -> dict[str, Wiring]:
    """Each socket of the instance with its final endpoints: the plan's, by key in
    ``addresses`` (the bound, real address of each), then its ``external:`` ones, which
    the program binds or connects itself. A key missing from ``addresses`` is a bug of
    the caller: KeyError, not a socket quietly connected to less."""
    return {
        s.name: Wiring(s.type, tuple(addresses[k] for k in s.binds) + tuple(s.external_binds),
                       tuple(addresses[k] for k in s.connects) + tuple(s.external_connects),
                       tuple(s.subscribe), dict(s.options))
        for s in inst.sockets
    }


def exec_env(topology: str, inst: InstanceShare, addresses: Mapping[str, str]) -> dict[str, str]:
    """The variables topo sets for an exec instance (over the node's own ``env:``):

    - ``TOPO_SOCKETS``: JSON, ``{"NAME": {"type", "bind": [...], "connect": [...]}}`` (a
      SUB's with ``"subscribe": [...]``, a socket with options with ``"options": {...}``);
    - ``TOPO_SOCKET_<NAME>_TYPE``, ``_BIND``, ``_CONNECT`` per socket, endpoints separated
      by a space, NAME upper-cased with '-' as '_' (:func:`topo.file.execnodes.socket_var`);
    - ``TOPO_TOPOLOGY``, ``TOPO_NODE``, ``TOPO_INSTANCE``, ``TOPO_REPLICA``, ``TOPO_REPLICAS``.

    ``NOTIFY_SOCKET`` (``ready: notify``) is the runtime's: it names a socket it made.
    """
    sockets = wiring(inst, addresses)
    env = {
        "TOPO_TOPOLOGY": topology,
        "TOPO_NODE": inst.node,
        "TOPO_INSTANCE": inst.name,
        "TOPO_REPLICA": str(inst.replica),
        "TOPO_REPLICAS": str(inst.replicas),
        "TOPO_SOCKETS": json.dumps(
            {name: _socket_json(w) for name, w in sockets.items()},
            separators=(",", ":")),
    }
    for name, w in sockets.items():
        stem = socket_var(name)
        env[f"{stem}_TYPE"] = w.type
        env[f"{stem}_BIND"] = VAR_SEPARATOR.join(w.bind)
        env[f"{stem}_CONNECT"] = VAR_SEPARATOR.join(w.connect)
    return env


def _socket_json(w: Wiring) -> dict[str, object]:
    """``type``, ``bind``, ``connect``; and, only when the file says them, a SUB's
    ``subscribe`` topics and the socket's ``options``: the program applies them itself."""
    out: dict[str, object] = {"type": w.type, "bind": list(w.bind), "connect": list(w.connect)}
    if w.type == "SUB":
        out["subscribe"] = list(w.subscribe)
    if w.options:
        out["options"] = dict(w.options)
    return out


def expand_args(args: tuple[str, ...] | list[str], sockets: Mapping[str, Wiring]) -> list[str]:
    """The program's arguments with each placeholder replaced: ``{sockets.NAME}`` by all
    its endpoints (those it binds, then those it connects to), ``{sockets.NAME.bind}`` and
    ``{sockets.NAME.connect}`` by one kind only, endpoints joined by ','; and
    ``{sockets.NAME.type}`` by its type. The file was checked (every NAME is a socket of
    the node), so a name without wiring is the caller's bug: KeyError."""
    def one(m: re.Match[str]) -> str:
        w = sockets[m.group(1)]
        part = m.group(2)
        if part == "type":
            return w.type
        chosen = w.bind if part == "bind" else w.connect if part == "connect" else w.bind + w.connect
        return ARG_SEPARATOR.join(chosen)
    return [PLACEHOLDER.sub(one, arg) for arg in args]


def instance_waits(plan: Plan) -> dict[str, frozenset[str]]:
    """Each exec instance → the instances it starts after: the receiving (or serving) end
    of each of its links, Python or exec (not its own node's instances); see
    :func:`topo.plan.execplan.exec_waits`."""
    exec_nodes = list(dict.fromkeys(i.node for i in plan.instances.values() if i.exec))
    return exec_waits(exec_nodes, {name: i.node for name, i in plan.instances.items()},
                      [(ln.src_instance.rpartition(".")[0], ln.dst_instance.rpartition(".")[0]) for ln in plan.links])
