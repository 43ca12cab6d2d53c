"""The `topo` command line for check, plan, graph and schema.

Most cases run in-process with click's CliRunner; a few run the real interpreter and the
installed script, to prove start-up, exit statuses and the absence of tracebacks there.
"""

from __future__ import annotations

import gc
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import topo
from topo.cli import main as cli_module
from topo.cli.main import cli
from topo.errors import LaunchError

REPO = Path(__file__).resolve().parents[2]

VALID = """\
topology: weather
nodes:
  server:
    run: weather.nodes:server
    sockets: {updates: PUB}
  client:
    run: weather.nodes:client
    replicas: 2
    process: clients
    sockets:
      updates: {type: SUB, subscribe: ["100"]}
  ventilator:
    run: weather.nodes:vent
    process: clients
    sockets: {tasks: PUSH}
  worker:
    run: weather.nodes:work
    replicas: 3
    sockets: {tasks: PULL}
links:
  - server.updates -> client.updates
  - {from: ventilator.tasks, to: worker.tasks, transport: ipc}
"""

INVALID = """\
topology: broken
nodes:
  a:
    run: m:f
    sockets: {out: PUB, inp: SUB}
    colour: red
links:
  - a.out -> b.inp
  - a.inp -> a.out
"""

HEAVY = ("yaml", "zmq", "psutil", "jsonschema", "asyncio", "multiprocessing", "mcap")


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()


def run(*args: str) -> Result:
    return runner().invoke(cli, list(args), prog_name="topo")


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> str:
    """The file, and beside it the node code VALID and INVALID name (``topo check``
    resolves every ``run:``)."""
    (tmp_path / "weather").mkdir(exist_ok=True)
    (tmp_path / "weather" / "nodes.py").write_text("def server(): ...\ndef client(): ...\ndef vent(): ...\ndef work(): ...\n")
    (tmp_path / "m.py").write_text("def f(): ...\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- the group ---------------------------------------------------------------------------

def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:")[1]
    for name in ("check", "plan", "graph", "schema"):
        assert re.search(rf"^\s+{name}\s", commands, re.MULTILINE), name


def test_short_help_option() -> None:
    assert run("-h").stdout == run("--help").stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"topo {topo.__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = run("launch", "x.yaml")
    assert result.exit_code == 2
    no_traceback(result)


# -- check -------------------------------------------------------------------------------

def test_check_valid(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = run("check", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ok")
    assert "4 nodes" in result.stdout and "2 links" in result.stdout
    assert result.stderr == ""
    assert gc.isenabled(), "the collector is back on after a command"


def test_check_invalid_prints_every_problem_located(tmp_path: Path) -> None:
    path = write(tmp_path, INVALID)
    result = run("check", path)
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    located = [line for line in lines if line.startswith(f"{path}:")]
    # each located problem is followed by its source line and a caret (2 lines)
    assert len(lines) == 3 * len(located) + 1 and lines[0:-1:3] == located
    assert all(re.match(r"^  \d+ \| ", s) and re.match(r"^  +\| +\^$", c) for s, c in zip(lines[1::3], lines[2::3]))
    warned = sum(": warning: " in line for line in located)
    assert lines[-1] == f"{len(located) - warned} problems, {warned} warning"
    assert len(located) - warned >= 3
    for line in located:
        assert re.match(rf"^{re.escape(path)}:\d+:\d+: \S", line), line
    text = result.stderr
    assert f"{path}:6:5: " in text and "colour" in text          # unknown key
    assert f"{path}:8:14: " in text and "'b'" in text             # missing node
    assert f"{path}:9:5: " in text and "a.out -> a.inp" in text   # reversed pair
    positions = [tuple(int(x) for x in line[len(path) + 1:].split(":")[:2]) for line in located]
    assert positions == sorted(positions), "problems read top-down"


def test_check_one_problem_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "topology: x\nnodes:\n  a: {run: m:f, replicas: 0}\n")
    result = run("check", path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "1 problem"


def test_check_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    result = run("check", path)
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stderr.startswith(f"{path}: cannot read")


def test_check_a_directory(tmp_path: Path) -> None:
    result = run("check", str(tmp_path))
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stderr.startswith(f"{tmp_path}: a directory: a topology file is a regular file")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# only a comment\n", b"- a list\n", b"\xff\xfe", b"a: [\n"])
def test_check_degenerate_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    result = run("check", str(path))
    assert result.exit_code == 2
    no_traceback(result)
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: ", result.stderr)


def test_check_deeply_nested_file(tmp_path: Path) -> None:
    path = write(tmp_path, "topology: x\nnodes: " + "[" * 3000 + "]" * 3000 + "\n")
    result = run("check", path)
    no_traceback(result)
    assert result.exit_code == 2


def test_check_the_example_topologies() -> None:
    files = sorted((REPO / "topologies").glob("*.yaml"))
    if not files:
        pytest.skip("no example topologies")
    for path in files:
        result = run("check", str(path))
        assert result.exit_code == 0, result.stderr


# -- plan --------------------------------------------------------------------------------

def test_plan_table(tmp_path: Path) -> None:
    result = run("plan", write(tmp_path, VALID))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("topology weather (")
    for heading in ("PROCESSES", "LINKS", "FROM", "TO", "PATTERN", "TRANSPORT", "BINDS", "ENDPOINT"):
        assert heading in out
    rows = [line.split() for line in out.splitlines()]
    links = [r for r in rows if len(r) == 6 and r[2] in ("PUB→SUB", "PUSH→PULL")]
    assert len(links) == 2 + 3
    assert {r[3] for r in links if r[2] == "PUB→SUB"} == {"ipc"}
    assert {r[4] for r in links if r[2] == "PUSH→PULL"} == {"ventilator.tasks"}


def test_plan_json(tmp_path: Path) -> None:
    result = run("plan", write(tmp_path, VALID), "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["topology"] == "weather"
    links = data["links"]
    assert len(links) == 5
    ref = re.compile(r"^[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*$")
    for link in links:
        assert ref.match(link["from"]) and ref.match(link["to"])
        assert link["transport"] in ("inproc", "ipc", "tcp")
        assert link["endpoint"].startswith(link["transport"] + "://")
        assert link["bind"] in (link["from"], link["to"])
    pubsub = [ln for ln in links if ln["from"] == "server.updates"]
    assert {ln["to"] for ln in pubsub} == {"client.updates"}
    assert all(ln["bind"] == "server.updates" and ln["transport"] == "ipc" for ln in pubsub)


def test_plan_invalid(tmp_path: Path) -> None:
    for extra in ((), ("--json",)):
        result = run("plan", write(tmp_path, INVALID), *extra)
        assert result.exit_code == 2
        no_traceback(result)
        assert result.stdout == ""
        assert result.stderr.splitlines()[-1].endswith("problems, 1 warning")


# -- graph -------------------------------------------------------------------------------

def test_graph_mermaid_is_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = run("graph", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == run("graph", path, "--format", "mermaid").stdout
    assert "flowchart LR" in result.stdout
    assert "subgraph h_local" in result.stdout and "subgraph p_clients" in result.stdout
    assert 'n_server -.->|"updates→updates PUB→SUB ipc; topics: #quot;100#quot;"| n_client_d0' in result.stdout
    assert result.stdout.count("PUSH→PULL ipc") == 3


def test_graph_dot(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    result = run("graph", path, "--format", "dot")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith('digraph "weather" {') and out.rstrip().endswith("}")
    assert out.count("{") == out.count("}")
    assert "subgraph cluster_h_local {" in out and "subgraph cluster_p_clients {" in out
    assert 'n_ventilator -> n_worker_d2 [label="tasks→tasks PUSH→PULL ipc", style=dashed];' in out
    assert run("graph", path, "--format", "DOT").stdout == out


def test_graph_bad_format_and_invalid_file(tmp_path: Path) -> None:
    result = run("graph", write(tmp_path, VALID), "--format", "svg")
    assert result.exit_code == 2
    no_traceback(result)
    result = run("graph", write(tmp_path, INVALID))
    assert result.exit_code == 2
    no_traceback(result)


# -- schema ------------------------------------------------------------------------------

def test_schema_is_json_schema_2020_12() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "topology" in schema["properties"] and "nodes" in schema["properties"]


def test_schema_accepts_a_valid_file(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    schema = json.loads(run("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(VALID))


# -- the one place where errors become exit statuses ------------------------------------

def test_any_topo_error_exits_with_its_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fail(path: str, **_: object) -> None:
        raise LaunchError("could not start: no luck")

    monkeypatch.setattr("topo.file.validate.load", fail)
    result = run("check", write(tmp_path, VALID))
    assert result.exit_code == LaunchError.exit_code == 1
    assert result.stderr == "could not start: no luck\n"


def test_a_bug_is_reported_without_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def crash(path: str, **_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("topo.file.validate.load", crash)
    monkeypatch.delenv("TOPO_DEBUG", raising=False)
    result = run("check", write(tmp_path, VALID))
    assert result.exit_code == cli_module.EXIT_INTERNAL
    no_traceback(result)
    assert "internal error: RuntimeError: boom" in result.stderr
    monkeypatch.setenv("TOPO_DEBUG", "1")
    result = run("check", write(tmp_path, VALID))
    assert isinstance(result.exception, RuntimeError)


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(path: str, **_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("topo.file.validate.load", interrupted)
    result = run("check", write(tmp_path, VALID))
    assert result.exit_code == 130
    no_traceback(result)


# -- real processes ---------------------------------------------------------------------

def topo_cmd() -> list[str]:
    return [sys.executable, "-c", "from topo.cli.main import main; main()"]


def test_subprocess_exit_statuses(tmp_path: Path) -> None:
    good, bad = write(tmp_path, VALID, "good.yaml"), write(tmp_path, INVALID, "bad.yaml")
    cases = {
        ("check", good): 0,
        ("check", bad): 2,
        ("check", str(tmp_path / "missing.yaml")): 2,
        ("plan", good, "--json"): 0,
        ("graph", bad): 2,
        ("schema",): 0,
    }
    for args, code in cases.items():
        proc = subprocess.run(topo_cmd() + list(args), capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr


def test_cli_import_stays_light() -> None:
    """`topo --help` must start fast: the CLI's import path holds no heavy module."""
    code = f"import sys, topo.cli.main; print([m for m in {HEAVY!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_installed_script(tmp_path: Path) -> None:
    script = shutil.which("topo", path=str(Path(sys.executable).parent)) or shutil.which("topo")
    if script is None:
        pytest.skip("the topo script is not installed (pip install -e .)")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "check" in proc.stdout and "graph" in proc.stdout
    proc = subprocess.run([script, "check", write(tmp_path, VALID)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert ": ok" in proc.stdout
    proc = subprocess.run([script, "check", write(tmp_path, INVALID)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
