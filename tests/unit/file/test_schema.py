"""The JSON Schema is valid, the shipped topologies satisfy it, and topo.file.structure agrees
with a real JSON Schema validator on what is structurally valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from topo.file.loader import load_text
from topo.file.schema import SCHEMA, schema_json
from topo.file.validate import load

from ..helpers import VALID_DOC, dump, mutated_docs

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_json_is_the_schema():
    assert json.loads(schema_json()) == SCHEMA


def test_every_ref_resolves_and_every_definition_is_used():
    text = json.dumps(SCHEMA)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    assert refs == {f"#/$defs/{name}" for name in SCHEMA["$defs"]}
    for ref in refs:
        target = SCHEMA
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)


def shipped_topologies() -> list[Path]:
    """The runnable topologies, and the examples that need other machines (docs/hosts.md)."""
    return [*sorted((ROOT / "topologies").glob("**/*.y*ml")), *sorted((ROOT / "examples").glob("**/*.y*ml"))]


def test_there_are_shipped_topologies():
    assert shipped_topologies()


def test_every_shipped_topology_is_valid_against_the_schema_and_loads():
    failures = []
    for path in shipped_topologies():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]
        if errors:
            failures.append(f"{path.name}: schema: {errors}")
        try:
            load(str(path))
        except Exception as err:  # noqa: BLE001 - every failure is reported with its file
            failures.append(f"{path.name}: {err}")
    assert not failures, "\n".join(failures)


# -- agreement between jsonschema and topo.file.structure ------------------------------------


def structure_problems(text: str) -> list[str]:
    """Only the structure checks (no semantic rule), as load_text runs them."""
    _, problems = load_text(text, "f.yaml")
    return [str(p) for p in problems]


def assert_agree(text: str) -> None:
    data = yaml.safe_load(text)
    schema_errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(data)]
    ours = structure_problems(text)
    assert bool(schema_errors) == bool(ours), (
        f"jsonschema and topo.file.structure disagree on:\n{text}\n"
        f"jsonschema: {schema_errors or 'valid'}\ntopo.structure: {ours or 'valid'}"
    )


def test_valid_document_is_valid_for_both():
    text = dump(VALID_DOC)
    assert structure_problems(text) == []
    assert VALIDATOR.is_valid(yaml.safe_load(text))


BROKEN = {
    "no topology": "nodes: {a: {run: m:f}}",
    "no nodes": "topology: t",
    "empty nodes": "topology: t\nnodes: {}",
    "nodes is a list": "topology: t\nnodes: [a]",
    "node is a string": "topology: t\nnodes: {a: m:f}",
    "node is null": "topology: t\nnodes: {a: }",
    # a missing `run` is not structural: `defaults` may supply it (see test_structure)
    "run pattern": "topology: t\nnodes: {a: {run: m.f}}",
    "topology upper case": "topology: T\nnodes: {a: {run: m:f}}",
    "topology number": "topology: 1\nnodes: {a: {run: m:f}}",
    "unknown top key": "topology: t\nnodes: {a: {run: m:f}}\nnode: 1",
    "unknown node key": "topology: t\nnodes: {a: {run: m:f, proces: p}}",
    "replicas 0": "topology: t\nnodes: {a: {run: m:f, replicas: 0}}",
    "replicas -1": "topology: t\nnodes: {a: {run: m:f, replicas: -1}}",
    "replicas 1.5": "topology: t\nnodes: {a: {run: m:f, replicas: 1.5}}",
    "replicas 0.0": "topology: t\nnodes: {a: {run: m:f, replicas: 0.0}}",
    "replicas huge": "topology: t\nnodes: {a: {run: m:f, replicas: 1000000}}",
    "replicas inf": "topology: t\nnodes: {a: {run: m:f, replicas: .inf}}",
    "replicas nan": "topology: t\nnodes: {a: {run: m:f, replicas: .nan}}",
    "replicas bool": "topology: t\nnodes: {a: {run: m:f, replicas: true}}",
    "replicas text": "topology: t\nnodes: {a: {run: m:f, replicas: '2'}}",
    "restart never": "topology: t\nnodes: {a: {run: m:f, restart: never}}",
    "restart yes": "topology: t\nnodes: {a: {run: m:f, restart: yes}}",
    "restart 0": "topology: t\nnodes: {a: {run: m:f, restart: 0}}",
    "on_exit": "topology: t\nnodes: {a: {run: m:f, on_exit: halt}}",
    "args list": "topology: t\nnodes: {a: {run: m:f, args: [1]}}",
    "env list value": "topology: t\nnodes: {a: {run: m:f, env: {A: [1]}}}",
    "env null value": "topology: t\nnodes: {a: {run: m:f, env: {A: }}}",
    "env boolean name": "topology: t\nnodes: {a: {run: m:f, env: {OFF: x}}}",
    "env number name": "topology: t\nnodes: {a: {run: m:f, env: {1: x}}}",
    "env name with =": "topology: t\nnodes: {a: {run: m:f, env: {'A=B': x}}}",
    "env value with NUL": 'topology: t\nnodes: {a: {run: m:f, env: {A: "x\\0y"}}}',
    "socket type case": "topology: t\nnodes: {a: {run: m:f, sockets: {s: pub}}}",
    "socket number": "topology: t\nnodes: {a: {run: m:f, sockets: {s: 1}}}",
    "socket null": "topology: t\nnodes: {a: {run: m:f, sockets: {s: }}}",
    "socket no type": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {bind: true}}}}",
    "socket unknown key": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, subscibe: x}}}}",
    "socket name dot": "topology: t\nnodes: {a: {run: m:f, sockets: {s.t: PUB}}}",
    "socket name boolean": "topology: t\nnodes: {a: {run: m:f, sockets: {on: PUB}}}",
    "socket name number": "topology: t\nnodes: {a: {run: m:f, sockets: {1: PUB}}}",
    "node name boolean": "topology: t\nnodes: {no: {run: m:f}}",
    "node name number": "topology: t\nnodes: {7: {run: m:f}}",
    "host name boolean": "topology: t\nhosts: {yes: {address: x}}\nnodes: {a: {run: m:f}}",
    "subscribe number": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, subscribe: 1}}}}",
    "subscribe list of numbers": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, subscribe: [1]}}}}",
    "bind text": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, bind: maybe}}}}",
    "option unknown": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, options: {sndhmw: 1}}}}}",
    "option list value": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, options: {linger: [1]}}}}}",
    "option float value": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, options: {linger: 1.5}}}}}",
    "option number name": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, options: {1: 1}}}}}",
    "hosts list": "topology: t\nhosts: [a]\nnodes: {a: {run: m:f}}",
    "host no address": "topology: t\nhosts: {h: {launch: [ssh]}}\nnodes: {a: {run: m:f}}",
    "host launch empty": "topology: t\nhosts: {h: {address: x, launch: []}}\nnodes: {a: {run: m:f}}",
    "host launch string": "topology: t\nhosts: {h: {address: x, launch: ssh}}\nnodes: {a: {run: m:f}}",
    "host unknown key": "topology: t\nhosts: {h: {address: x, adress: y}}\nnodes: {a: {run: m:f}}",
    "defaults unknown key": "topology: t\ndefaults: {restrat: always}\nnodes: {a: {run: m:f}}",
    "defaults bad restart": "topology: t\ndefaults: {restart: sometimes}\nnodes: {a: {run: m:f}}",
    "links mapping": "topology: t\nnodes: {a: {run: m:f}}\nlinks: {a: b}",
    "link number": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [1]",
    "link short syntax": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [a.b => c.d]",
    "link no to": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [{from: a.b}]",
    "link bad ref": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [{from: a, to: b.c}]",
    "link transport": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [{from: a.b, to: c.d, transport: udp}]",
    "link unknown key": "topology: t\nnodes: {a: {run: m:f}}\nlinks: [{from: a.b, to: c.d, via: x}]",
    "links null": "topology: t\nnodes: {a: {run: m:f}}\nlinks:",
    "run with a newline": "topology: t\nnodes: {a: {run: \"m:f\\n\"}}",
    "name with a newline": "topology: t\nnodes: {\"a\\n\": {run: m:f}}",
    "top-level date": "topology: 2024-01-01\nnodes: {a: {run: m:f}}",
    "env date value": "topology: t\nnodes: {a: {run: m:f, env: {D: 2024-01-01}}}",
}

VALID = {
    "minimal": "topology: t\nnodes: {a: {run: m:f}}",
    "restart no": "topology: t\nnodes: {a: {run: m:f, restart: no}}",
    "replicas 2.0": "topology: t\nnodes: {a: {run: m:f, replicas: 2.0}}",
    "replicas at the bound": "topology: t\nnodes: {a: {run: m:f, replicas: 1000}}",
    "x keys": "topology: t\nx-a: {b: [1, 2]}\nnodes: {a: {run: m:f}}",
    "args anything": "topology: t\nnodes: {a: {run: m:f, args: {1: [null, 2.5, {x: 2024-01-01}], true: no}}}",
    "env scalars": "topology: t\nnodes: {a: {run: m:f, env: {A: 1, B: 1.5, C: true, D: x}}}",
    "option whole float": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, options: {linger: 0.0}}}}}",
    "subscribe text": "topology: t\nnodes: {a: {run: m:f, sockets: {s: {type: SUB, subscribe: x}}}}",
    "links empty": "topology: t\nnodes: {a: {run: m:f}}\nlinks: []",
    "hosts empty": "topology: t\nhosts: {}\nnodes: {a: {run: m:f}}",
    "defaults full": "topology: t\ndefaults: {run: m:f, replicas: 2, env: {A: x}, sockets: {s: PUB}}\nnodes: {a: {run: m:f}}",
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_structure_and_jsonschema_agree_on_broken_documents(name):
    text = BROKEN[name] + "\n"
    assert structure_problems(text), f"topo.file.structure accepts {name!r}"
    assert_agree(text)


@pytest.mark.parametrize("name", list(VALID))
def test_structure_and_jsonschema_agree_on_valid_documents(name):
    text = VALID[name] + "\n"
    assert structure_problems(text) == []
    assert_agree(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_docs())
def test_structure_and_jsonschema_agree_on_mutations(doc):
    assert_agree(dump(doc))
