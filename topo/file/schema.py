"""The structure of a topology file, as one JSON Schema (draft 2020-12).

This dict is the single source of truth for structure: ``topo schema`` prints it for
editors (yaml-language-server), and :mod:`topo.file.structure` walks the same dict to check a
file with positions and friendly messages. Rules that relate one part of the file to
another (links to real sockets, valid pairs, hosts that exist) live in :mod:`topo.file.validate`.
"""

from __future__ import annotations

import json
from typing import Any

from topo.file.model import MIN_MAX_MESSAGE, OnExit, Ready, Restart, SocketType, Transport

SCHEMA_ID = "https://topo.dev/schema/topology.json"

#: End of the text. Python's ``$`` also matches before a final newline (ECMA's does not),
#: so ``(?!\n)`` keeps "m:f\n" (a YAML block scalar) out, the same in Python and editors.
_END = r"(?!\n)$"
#: Names of nodes, sockets, processes and hosts: no dots (links use ``NODE.SOCKET``).
NAME_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_-]*{_END}"
TOPOLOGY_NAME_PATTERN = rf"^[a-z0-9_-]+{_END}"
#: A node's ``host:``: a host's name, or ``slurm[N]``, the Nth node of a Slurm allocation
#: (``hosts: {from: slurm}``, :mod:`topo.file.allocation`).
HOST_REF_PATTERN = rf"^([A-Za-z_][A-Za-z0-9_-]*|slurm\[[0-9]+\]){_END}"
#: Every name becomes part of a file name: the topology a directory of logs, a node
#: instance ``NAME.REPLICA.log``. A file name has at most 255 bytes (NAME_MAX); the names
#: are ASCII, so this many characters leave room for the replica and the suffix.
NAME_MAX_LENGTH = 200
RUN_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*{_END}"
_REF = r"[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_-]*"
REF_PATTERN = rf"^{_REF}{_END}"
SHORT_LINK_PATTERN = rf"^\s*{_REF}\s*->\s*{_REF}\s*$"
#: What the OS accepts as an environment variable: no '=' in the name, no NUL anywhere.
ENV_NAME_PATTERN = r"^[^=\u0000]+$"
ENV_VALUE_PATTERN = r"^[^\u0000]*$"

#: zmq socket options a file may set, by lower-case name. Options topo manages itself
#: (subscriptions, CURVE keys, routing of XPUB subscriptions) and read-only ones are absent.
SOCKET_OPTIONS = (
    "affinity", "backlog", "bindtodevice", "conflate", "connect_routing_id",
    "connect_timeout", "handshake_ivl", "heartbeat_ivl", "heartbeat_timeout",
    "heartbeat_ttl", "immediate", "invert_matching", "ipv6", "linger", "maxmsgsize",
    "multicast_hops", "probe_router", "rate", "rcvbuf", "rcvhwm", "rcvtimeo",
    "reconnect_ivl", "reconnect_ivl_max", "recovery_ivl", "req_correlate", "req_relaxed",
    "router_handover", "router_mandatory", "routing_id", "sndbuf", "sndhwm", "sndtimeo",
    "tcp_keepalive", "tcp_keepalive_cnt", "tcp_keepalive_idle", "tcp_keepalive_intvl",
    "tcp_maxrt", "tos", "xpub_manual", "xpub_nodrop", "xpub_verbose", "xpub_verboser",
    "xpub_welcome_msg", "xsub_verbose_unsubscribe", "only_first_subscribe",
)

#: Each replica is a process of its own by default: a bound that no real system reaches,
#: so that a typo (an extra few digits) is an error, not an attempt to fork forever.
MAX_REPLICAS = 1000

#: Options whose value is text (sent to zmq as UTF-8 bytes).
TEXT_OPTIONS = frozenset({"routing_id", "connect_routing_id", "bindtodevice", "xpub_welcome_msg"})

_SOCKET_TYPES = [t.value for t in SocketType]
_ENV_VALUE = {"type": ["string", "number", "boolean"], "pattern": ENV_VALUE_PATTERN}

#: An external endpoint: its form is checked by :mod:`topo.file.external`, with a message
#: that says what is wrong with it.
_ENDPOINT: dict[str, Any] = {"type": "string"}

_SOCKET_LONG: dict[str, Any] = {
    "type": "object",
    "description": "A socket in long form.",
    "properties": {
        "type": {"enum": _SOCKET_TYPES, "description": "The zmq socket type."},
        "subscribe": {
            "description": "SUB only: topics to subscribe to (default: nothing).",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "bind": {
            "type": "boolean",
            "description": "true: this end binds; false: this end connects (overrides the rule).",
        },
        "external": {
            "type": "object",
            "description": "Endpoints outside the topology: bound for peers topo does not start, "
                           "or connected out to (plain tcp or ipc, not CURVE).",
            "properties": {
                "bind": {"description": "Endpoints this socket binds: tcp://HOST:PORT, tcp://*:PORT, ipc://PATH.",
                         "anyOf": [_ENDPOINT, {"type": "array", "minItems": 1, "items": _ENDPOINT}]},
                "connect": {"description": "Endpoints this socket connects to: tcp://HOST:PORT, ipc://PATH.",
                            "anyOf": [_ENDPOINT, {"type": "array", "minItems": 1, "items": _ENDPOINT}]},
            },
            "minProperties": 1,
            "additionalProperties": False,
        },
        "options": {
            "type": "object",
            "description": "zmq socket options by lower-case name.",
            "propertyNames": {"type": "string", "enum": list(SOCKET_OPTIONS)},
            # text for identities and names, a number (or true/false for flags) for the rest
            "properties": {
                name: {"type": "string"} if name in TEXT_OPTIONS else {"type": ["integer", "boolean"]}
                for name in SOCKET_OPTIONS
            },
        },
    },
    "required": ["type"],
    "additionalProperties": False,
}

_NODE_PROPERTIES: dict[str, Any] = {
    "run": {
        "type": "string",
        "pattern": RUN_PATTERN,
        "description": 'The node function, "module:callable" (def or async def).',
    },
    "process": {
        "type": "string",
        "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH,
        "description": "Nodes naming the same process share one OS process.",
    },
    "host": {"type": "string", "pattern": HOST_REF_PATTERN, "maxLength": NAME_MAX_LENGTH,
             "description": "The host it runs on; with hosts: {from: slurm}, also slurm[N] (the "
                            "allocation's Nth node) or any (its node with the fewest instances)."},
    "hosts": {"enum": ["all"],
              "description": "all: the replicas spread over the Slurm allocation's nodes in turn "
                             "(hosts: {from: slurm})."},
    "replicas": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_REPLICAS,
        "description": "Number of instances.",
    },
    "args": {"type": "object", "description": "Any mapping, handed to the node as node.args."},
    "env": {
        "type": "object",
        "description": "Environment variables of the node's process.",
        "propertyNames": {"type": "string", "pattern": ENV_NAME_PATTERN},
        "additionalProperties": _ENV_VALUE,
    },
    "restart": {
        "enum": [r.value for r in Restart] + [False],
        "description": "Restart policy (a bare YAML `no` reads as false: both mean no).",
    },
    "max_restarts": {
        "type": "integer", "minimum": 0,
        "description": "Restarts allowed within restart_window before topo gives up (default 5).",
    },
    "restart_window": {
        "type": "number", "minimum": 0.1, "maximum": 31_536_000,
        "description": "Seconds over which restarts are counted for max_restarts (default 60).",
    },
    "on_exit": {
        "enum": [o.value for o in OnExit],
        "description": "stop: when this node returns, stop the topology.",
    },
    "sockets": {
        "type": "object",
        "description": "The node's sockets by name: a socket type, or the long form.",
        "propertyNames": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
        "additionalProperties": {
            "anyOf": [{"enum": _SOCKET_TYPES}, {"$ref": "#/$defs/socket"}]
        },
    },
}

#: A node in any language (node-only keys: a ``defaults: run:`` must not turn every exec
#: node into a node with both).
_EXEC: dict[str, Any] = {
    "exec": {
        "type": "array", "minItems": 1,
        "items": {"type": "string", "minLength": 1, "pattern": ENV_VALUE_PATTERN},
        "description": "A program and its arguments, instead of run: (relative programs resolve "
                       "against this file's directory; {sockets.NAME} is replaced by the socket's endpoints).",
    },
    "ready": {
        "enum": [r.value for r in Ready],
        "description": "Exec nodes: started (default) or notify (waits for READY=1 on NOTIFY_SOCKET).",
    },
    "watchdog": {
        "type": "number", "minimum": 0.01, "maximum": 31_536_000,
        "description": "Exec nodes: seconds within which the program sends WATCHDOG=1 on NOTIFY_SOCKET, "
                       "again and again once ready (WATCHDOG_USEC tells it); a miss fails the node.",
    },
}

#: A node's profiles (a node, not ``defaults``: a profile says which nodes a run has).
_PROFILES: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
    "description": "The node runs only when one of these profiles is selected (--profile NAME, TOPO_PROFILES); "
                   "a node without profiles always runs.",
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "topo topology",
    "description": "A ZeroMQ system: nodes, their sockets, where they run and their links.",
    "type": "object",
    "properties": {
        "topology": {
            "type": "string",
            "pattern": TOPOLOGY_NAME_PATTERN, "maxLength": NAME_MAX_LENGTH,
            "description": "Names the run, its ipc files and its logs.",
        },
        "hosts": {
            "anyOf": [
                {"$ref": "#/$defs/allocation"},
                {
                    "type": "object",
                    "propertyNames": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
                    "additionalProperties": {"$ref": "#/$defs/host"},
                },
            ],
        },
        "defaults": {
            "type": "object",
            "description": "Node keys applied to every node (args and env merge key by key).",
            "properties": _NODE_PROPERTIES,
            "additionalProperties": False,
        },
        "nodes": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
            "additionalProperties": {"$ref": "#/$defs/node"},
        },
        "links": {
            "type": "array",
            "items": {"anyOf": [{"$ref": "#/$defs/short_link"}, {"$ref": "#/$defs/link"}]},
        },
        "python_path": {
            "anyOf": [
                {"type": "string", "minLength": 1, "pattern": ENV_VALUE_PATTERN},
                {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": ENV_VALUE_PATTERN}},
            ],
            "description": "Directories (relative to this file) that node processes import "
                           "their run: modules from, before the current directory: a src/ layout.",
        },
        "security": {
            "type": "object",
            "description": "How tcp links are protected (every one is CURVE unless said otherwise).",
            "properties": {
                "curve": {
                    "type": "boolean",
                    "description": "false: tcp links are plain, unauthenticated and unencrypted, "
                                   "unless a link says curve: true (default true).",
                },
                "max_message": {
                    "type": "integer", "minimum": MIN_MAX_MESSAGE, "maximum": 2**62,
                    "description": "Bytes: the largest frame an endpoint served with CURVE takes, "
                                   "before and after authentication (default 64 MiB); a socket's "
                                   "own maxmsgsize option wins.",
                },
            },
            "additionalProperties": False,
        },
    },
    "patternProperties": {"^x-": {"description": "Free for YAML anchors; ignored."}},
    "required": ["topology", "nodes"],
    "additionalProperties": False,
    "$defs": {
        "node": {
            "type": "object",
            "properties": {**_NODE_PROPERTIES, **_EXEC, "profiles": _PROFILES},
            # `run` may come from `defaults`: its absence is checked after merging
            "additionalProperties": False,
        },
        "socket": _SOCKET_LONG,
        "host": {
            "type": "object",
            "properties": {
                "address": {
                    "type": "string",
                    "description": "The address its tcp endpoints bind to and peers dial.",
                },
                "launch": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string"},
                    "description": "Command prefix that starts topo's agent there.",
                },
                "python": {"type": "string", "description": "The Python that runs topo there."},
            },
            "required": ["address"],
            "additionalProperties": False,
        },
        "allocation": {
            "type": "object",
            "description": "The hosts are the nodes of the Slurm allocation topo up runs in.",
            "properties": {
                "from": {"enum": ["slurm"], "description": "slurm: the allocation of salloc or sbatch."},
                "python": {"type": "string",
                           "description": "The Python that runs topo on the nodes (default: topo up's own)."},
                "interface": {"type": "string", "minLength": 1,
                              "description": "Each node's address is its address on this network interface "
                                             "(ib0), read on the node; default: Slurm's NodeAddr."},
            },
            "required": ["from"],
            "additionalProperties": False,
        },
        "short_link": {
            "type": "string",
            "pattern": SHORT_LINK_PATTERN,
            "description": '"NODE.SOCKET -> NODE.SOCKET", from sender (or client) to receiver.',
        },
        "link": {
            "type": "object",
            "properties": {
                "from": {"type": "string", "pattern": REF_PATTERN},
                "to": {"type": "string", "pattern": REF_PATTERN},
                "transport": {"enum": [t.value for t in Transport]},
                "curve": {
                    "type": "boolean",
                    "description": "A tcp link: CURVE-encrypted with the run's keys (true, the "
                                   "default unless security.curve is false) or plain (false).",
                },
            },
            "required": ["from", "to"],
            "additionalProperties": False,
        },
    },
}


def schema_json() -> str:
    return json.dumps(SCHEMA, indent=2)


#: What each pattern means, in words, for messages about values that do not match.
PATTERN_HINTS: dict[str, str] = {
    NAME_PATTERN: "a name of letters, digits, '_' and '-' that starts with a letter or '_'",
    HOST_REF_PATTERN: "a host's name, or slurm[N] for a node of a Slurm allocation",
    TOPOLOGY_NAME_PATTERN: "lower-case letters, digits, '_' and '-'",
    RUN_PATTERN: 'an importable "module:callable", such as mypkg.nodes:server',
    REF_PATTERN: '"NODE.SOCKET"',
    SHORT_LINK_PATTERN: '"NODE.SOCKET -> NODE.SOCKET"',
    ENV_NAME_PATTERN: "an environment variable name (not empty, no '=', no NUL)",
    ENV_VALUE_PATTERN: "text without NUL characters",
}
