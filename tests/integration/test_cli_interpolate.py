"""``${VAR}`` through the real command: the environment over ``.env`` next to the file,
typed values in the plan, every missing variable a located problem with exit 2."""

from __future__ import annotations

import json

from conftest import Topo

FILE = """\
    topology: ${NAME:-vars}
    nodes:
      tick:
        run: itnodes:${FUNC}
        replicas: ${N}
        env: {PERIOD: ${PERIOD:-0.5}, PRICE: $$5}
        sockets: {out: PUB}
      sink:
        run: itnodes:print_received
        env: {PORT: "${PORT}", HOST: "${HOST:?the host to listen on}"}
        sockets: {in: SUB}
    links:
      - tick.out -> sink.in
    """


def test_values_come_from_the_environment_over_dotenv(topo: Topo) -> None:
    path = topo.file(FILE)
    (topo.tmp / ".env").write_text("# what a run uses\nN=2\nFUNC=tick\nPORT=1\nHOST='from file'\nPERIOD=0.25\n")
    topo.env.update({"N": "3", "PORT": "5555"})
    for name in ("NAME", "HOST", "PERIOD", "FUNC"):
        topo.env.pop(name, None)
    result = topo.run("plan", path, "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["topology"] == "vars"
    assert [n["name"] for n in plan["nodes"] if n["node"] == "tick"] == ["tick.0", "tick.1", "tick.2"]
    assert {n["run"] for n in plan["nodes"]} == {"itnodes:tick", "itnodes:print_received"}
    env = {p["name"]: p["env"] for p in plan["processes"]}
    assert env["tick.0"] == {"PERIOD": "0.25", "PRICE": "$5"}
    assert env["sink"] == {"PORT": "5555", "HOST": "from file"}


def test_every_missing_variable_is_located(topo: Topo) -> None:
    path = topo.file(FILE)
    for name in ("NAME", "FUNC", "N", "PERIOD", "PORT", "HOST"):
        topo.env.pop(name, None)
    topo.env["FUNC"] = "tick"
    result = topo.run("check", path)
    assert result.code == 2
    assert result.out == ""
    # each problem's source line and caret (indented) are left out here
    assert [line for line in result.err.splitlines() if not line.startswith(" ")] == [
        f"{path}:5:15: variable N is not set (add it to the environment or to .env next to the file)",
        f"{path}:10:18: variable PORT is not set (add it to the environment or to .env next to the file)",
        f"{path}:10:35: variable HOST is not set: the host to listen on",
        f"{path}:11:15: warning: SUB socket sink.in has no `subscribe:`, so it subscribes to nothing: it receives no message unless the node's code subscribes; `subscribe: \"\"` receives everything",
        "3 problems, 1 warning",
    ]
