"""Overlays, ``!reset``/``!override``, ``--set`` and profiles (topo.file.layers, topo.file.sources)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from topo.errors import InvalidTopology, Pos, Problem, UsageError
from topo.file.loader import load_text
from topo.file.sources import PROFILES_ENV, Resolved, Sources, dump, profiles_from, read
from topo.file.validate import load, resolve

BASE = """\
    topology: demo
    x-common: &common {run: m:f, args: {period: 0.5, tags: [a, b]}, sockets: {in: PULL}}
    nodes:
      sender:
        run: m:send
        args: {count: 3, nested: {a: 1, b: 2}}
        sockets: {out: PUSH}
      receiver: *common
      spare: *common
      debugger:
        run: m:debug
        profiles: [debug]
        sockets: {in: PULL}
    links:
      - sender.out -> receiver.in
      - sender.out -> spare.in
      - sender.out -> debugger.in
    """


def files(tmp_path: Path, *texts: str) -> tuple[str, ...]:
    out = []
    for i, text in enumerate(texts):
        path = tmp_path / ("base.yaml" if i == 0 else f"over{i}.yaml")
        path.write_text(textwrap.dedent(text))
        out.append(str(path))
    return tuple(out)


def resolved(tmp_path: Path, *texts: str, sets: tuple[str, ...] = (), profiles: tuple[str, ...] = ()) -> Resolved:
    return read(Sources(files(tmp_path, *texts), sets, profiles_from(profiles, {})), environ={})


def data(tmp_path: Path, *texts: str, **kwargs: Any) -> Any:
    result = resolved(tmp_path, *texts, **kwargs)
    assert result.problems == []
    return result.data


def problems(tmp_path: Path, *texts: str, **kwargs: Any) -> list[str]:
    """Problems as ``FILE:LINE:COL: message`` with the file's base name."""
    found = resolved(tmp_path, *texts, **kwargs).problems
    return [f"{Path(p.pos.file).name}:{p.pos.line}:{p.pos.col}: {p.message}" for p in sorted(found)]


# -- merging ------------------------------------------------------------------------


def test_mappings_merge_key_by_key_and_the_later_file_wins(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, """\
        nodes:
          sender:
            replicas: 2
            args: {count: 5, nested: {b: 3, c: 4}}
        """)
    sender = out["nodes"]["sender"]
    assert sender["run"] == "m:send"
    assert sender["replicas"] == 2
    assert sender["args"] == {"count": 5, "nested": {"a": 1, "b": 3, "c": 4}}


def test_lists_other_than_links_are_replaced(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {receiver: {args: {tags: [c]}}}\n")
    assert out["nodes"]["receiver"]["args"]["tags"] == ["c"]


def test_links_are_appended_without_duplicates(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, """\
        nodes: {extra: {run: m:f, sockets: {in: PULL}}}
        links:
          - "sender.out->receiver.in"
          - sender.out -> extra.in
        """)
    assert out["links"] == ["sender.out -> receiver.in", "sender.out -> spare.in", "sender.out -> extra.in"]


def test_an_overlay_changes_one_alias_not_the_anchor_it_shares(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {receiver: {args: {period: 2}}}\n")
    assert out["nodes"]["receiver"]["args"]["period"] == 2
    assert out["nodes"]["spare"]["args"]["period"] == 0.5
    assert out["x-common"]["args"]["period"] == 0.5


def test_three_layers_apply_in_order(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {sender: {replicas: 2}}\n", "nodes: {sender: {replicas: 3}}\n")
    assert out["nodes"]["sender"]["replicas"] == 3


def test_an_empty_overlay_changes_nothing(tmp_path: Path) -> None:
    assert data(tmp_path, BASE, "") == data(tmp_path, BASE)


def test_the_topology_knows_its_overlays(tmp_path: Path) -> None:
    paths = files(tmp_path, BASE, "nodes: {sender: {replicas: 2}}\n")
    topology = load(Sources(paths))
    assert topology.file == paths[0]
    assert topology.overlays == paths[1:]
    assert topology.nodes["sender"].replicas == 2


# -- !reset and !override ---------------------------------------------------------------


def test_reset_removes_a_node_and_the_links_that_name_it(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {spare: !reset null}\n")
    assert "spare" not in out["nodes"]
    assert out["links"] == ["sender.out -> receiver.in"]  # debugger: no profile selected


def test_reset_removes_a_key_so_defaults_apply_again(tmp_path: Path) -> None:
    paths = files(tmp_path, BASE.replace("nodes:\n", "defaults: {args: {from_defaults: true}}\n    nodes:\n"),
                  "nodes: {sender: {args: !reset {}}}\n")
    assert load(Sources(paths)).nodes["sender"].args == {"from_defaults": True}


def test_override_replaces_a_mapping_and_a_list_whole(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, """\
        nodes: {sender: {args: !override {count: 1}}}
        links: !override [sender.out -> spare.in]
        """)
    assert out["nodes"]["sender"]["args"] == {"count": 1}
    assert out["links"] == ["sender.out -> spare.in"]


def test_override_of_a_scalar_keeps_its_type(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {sender: {replicas: !override 4, run: !override 'm:other'}}\n")
    assert out["nodes"]["sender"]["replicas"] == 4
    assert out["nodes"]["sender"]["run"] == "m:other"


def test_a_node_reset_then_written_again_keeps_its_links(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {spare: !reset null}\n", "nodes: {spare: {run: m:g, sockets: {in: PULL}}}\n")
    assert out["nodes"]["spare"] == {"run": "m:g", "sockets": {"in": "PULL"}}
    assert "sender.out -> spare.in" in out["links"]


def test_reset_in_the_first_file_removes_its_own_key(tmp_path: Path) -> None:
    out = data(tmp_path, BASE.replace("run: m:send", "run: m:send\n        replicas: !reset 3"))
    assert "replicas" not in out["nodes"]["sender"]


# -- positions ----------------------------------------------------------------------


def test_a_value_an_overlay_wrote_is_located_in_the_overlay(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE, """\
        nodes:
          sender:
            replicas: 0
            replcas: 2
        links:
          - sender.out -> ghost.in
        """) == [
        "over1.yaml:3:15: nodes.sender.replicas must be at least 1; got 0",
        "over1.yaml:4:5: unknown key 'replcas' in nodes.sender (did you mean 'replicas'?)",
    ]
    with pytest.raises(InvalidTopology) as err:
        load(Sources(files(tmp_path, BASE, "links: [sender.out -> ghost.in]\n")))
    assert [str(p.pos).rsplit("/", 1)[-1] for p in err.value.problems] == ["over1.yaml:1:23"]


def test_a_value_the_base_wrote_stays_located_in_the_base(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE.replace("count: 3", "count: ${MISSING}"), "nodes: {sender: {replicas: 2}}\n")
    assert found == ["base.yaml:6:19: variable MISSING is not set (add it to the environment or to .env next to the file)"]


def test_variables_in_an_overlay_come_from_the_first_files_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("N=4\n")
    out = data(tmp_path, BASE, "nodes: {sender: {replicas: ${N}}}\n")
    assert out["nodes"]["sender"]["replicas"] == 4


def test_an_overlay_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE, "- a\n") == [
        "over1.yaml:1:1: an overlay must be a mapping of the keys it changes, not a list or a value"]


def test_no_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Sources(())


# -- --set --------------------------------------------------------------------------


@pytest.mark.parametrize(("arg", "key", "expected"), [
    ("sender.replicas=4", "replicas", 4),
    ("sender.args.count=true", ("args", "count"), True),
    ("sender.args.count='4'", ("args", "count"), "4"),
    ("sender.args.count=[1, x]", ("args", "count"), [1, "x"]),
    ("sender.args.count=", ("args", "count"), None),
    ("sender.args.new=a=b", ("args", "new"), "a=b"),
    ("sender.args.nested.c=1.5", ("args", "nested"), {"a": 1, "b": 2, "c": 1.5}),
    ("sender.args.price=$5", ("args", "price"), "$5"),
])
def test_set_reads_its_value_as_yaml(tmp_path: Path, arg: str, key: Any, expected: Any) -> None:
    node = data(tmp_path, BASE, sets=(arg,))["nodes"]["sender"]
    value = node[key] if isinstance(key, str) else node[key[0]][key[1]]
    assert value == expected and type(value) is type(expected)


def test_set_comes_after_every_file(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, "nodes: {sender: {replicas: 2}}\n", sets=("sender.replicas=5",))
    assert out["nodes"]["sender"]["replicas"] == 5


def test_set_can_reset_a_node(tmp_path: Path) -> None:
    out = data(tmp_path, BASE, sets=("spare=!reset",))
    assert "spare" not in out["nodes"]


@pytest.mark.parametrize(("arg", "expected"), [
    ("sender.replicas=0", "--set:1:17: nodes.sender.replicas must be at least 1; got 0"),
    ("sender.replicas=x", "--set:1:17: nodes.sender.replicas must be an integer, not a string"),
    ("sendr.replicas=2", "--set:1:1: --set 'sendr.replicas=2': no node 'sendr' in the topology (did you mean 'sender'?)"),
    ("sender.replicas", "--set:1:1: --set 'sender.replicas': expected NODE.KEY=VALUE (such as sender.args.count=5)"),
    ("sender..x=1", "--set:1:8: --set 'sender..x=1': an empty name in 'sender..x' (expected NODE.KEY=VALUE)"),
    ("sender=1", "--set:1:7: --set 'sender=1': a key of the node is needed (NODE.KEY=VALUE, such as sender.replicas=2; NODE=!reset removes the node)"),
    ("sender.replcas=2", "--set:1:8: unknown key 'replcas' in nodes.sender (did you mean 'replicas'?)"),
    ("sender.args.x=[1", "--set:1:15: this `[` is never closed: add `]` after its last item"),
    ("sender.args.x={a: 1, a: 2}", "--set:1:22: duplicate key 'a' (first written on line 1)"),
    ("sender.args.x=" + "[" * 300 + "]" * 300,
     "--set:1:215: the file is nested too deep to read (more than 200 levels of mappings and lists)"),
    ("sender" + ".a" * 150 + "=1", "--set:1:1: --set: a path of 151 keys is deeper than a topology goes"),
])
def test_a_set_problem_points_into_the_set(tmp_path: Path, arg: str, expected: str) -> None:
    assert problems(tmp_path, BASE, sets=(arg,)) == [expected]


def test_set_problems_name_which_set(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE, sets=("sender.replicas=2", "receiver.replicas=0")) == [
        "--set:2:19: nodes.receiver.replicas must be at least 1; got 0"]


# -- profiles -------------------------------------------------------------------------


def test_a_node_with_profiles_is_left_out_unless_one_is_selected(tmp_path: Path) -> None:
    out = data(tmp_path, BASE)
    assert list(out["nodes"]) == ["sender", "receiver", "spare"]
    assert out["links"] == ["sender.out -> receiver.in", "sender.out -> spare.in"]
    selected = data(tmp_path, BASE, profiles=("debug",))
    assert list(selected["nodes"]) == ["sender", "receiver", "spare", "debugger"]
    assert len(selected["links"]) == 3
    assert list(data(tmp_path, BASE, profiles=("*",))["nodes"]) == list(selected["nodes"])


def test_one_of_a_nodes_profiles_is_enough(tmp_path: Path) -> None:
    out = data(tmp_path, BASE.replace("[debug]", "[debug, trace]"), profiles=("trace",))
    assert "debugger" in out["nodes"]


def test_the_plain_loader_selects_no_profile(tmp_path: Path) -> None:
    topology, found = load_text(textwrap.dedent(BASE), "t.yaml", environ={})
    assert found == [] and topology is not None
    assert "debugger" not in topology.nodes
    assert len(topology.links) == 2


def test_an_unknown_profile_is_located_where_it_was_asked_for(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE, profiles=("debug", "debgu")) == [
        "--profile:2:1: unknown profile 'debgu' (did you mean 'debug'?)"]
    assert problems(tmp_path, BASE, profiles=("zzz",)) == [
        "--profile:1:1: unknown profile 'zzz' (profiles in the file: debug)"]


def test_profiles_come_from_the_environment_when_no_option_names_one() -> None:
    assert profiles_from([], {PROFILES_ENV: "a, b,,c"}) == (
        ("a", Pos(PROFILES_ENV, 1, 1)), ("b", Pos(PROFILES_ENV, 1, 4)), ("c", Pos(PROFILES_ENV, 1, 7)))
    assert profiles_from(["x"], {PROFILES_ENV: "a"}) == (("x", Pos("--profile", 1, 1)),)
    assert profiles_from([], {}) == ()


def test_profiles_are_a_list_of_names_on_nodes_only(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE.replace("[debug]", "debug")) == [
        "base.yaml:12:15: nodes.debugger.profiles must be a list, not a string"]
    assert problems(tmp_path, BASE.replace("nodes:\n", "defaults: {profiles: [x]}\n    nodes:\n", 1)) == [
        "base.yaml:3:12: unknown key 'profiles' in defaults (did you mean 'process'?)"]


def test_a_socket_keeps_its_other_links_when_a_peer_is_left_out(tmp_path: Path) -> None:
    topology = load(Sources(files(tmp_path, BASE)))
    assert sorted(str(link.dst) for link in topology.links) == ["receiver.in", "spare.in"]


# -- topo config ------------------------------------------------------------------------


def test_config_prints_the_merged_file_in_written_order_without_anchors(tmp_path: Path) -> None:
    text = dump(resolve(Sources(files(tmp_path, BASE, "nodes: {spare: !reset null}\n"), ("sender.replicas=2",))).data)
    assert "&" not in text and "*" not in text
    assert text.splitlines()[:3] == ["topology: demo", "x-common:", "  run: m:f"]
    assert "  sender:\n    run: m:send\n    args:\n      count: 3\n" in text
    assert "    replicas: 2\n" in text
    assert "spare" not in text


def test_resolve_raises_with_every_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidTopology) as err:
        resolve(Sources(files(tmp_path, BASE), ("sender.replicas=0", "receiver.replicas=0")))
    assert [p.pos for p in err.value.problems] == [Pos("--set", 1, 17), Pos("--set", 2, 19)]
    assert all(isinstance(p, Problem) for p in err.value.problems)


TAPPED = """\
    topology: tapped
    nodes:
      source: {run: m:f, sockets: {out: PUB, debug: PUB}}
      sink: {run: m:f, sockets: {in: SUB}}
      spy: {run: m:f, profiles: [debug], sockets: {in: SUB}}
    links:
      - source.out -> sink.in
      - source.debug -> spy.in
    """


def test_a_socket_whose_links_went_with_its_peers_profile_is_a_warning_not_an_error(tmp_path: Path) -> None:
    paths = files(tmp_path, TAPPED)
    topology = load(Sources(paths))  # no profile: spy is left out, and source.debug's link with it
    [w] = [p for p in topology.warnings if "no link" in p.message]
    assert w.pos == Pos(paths[0], 3, 42)
    assert w.message.startswith("socket source.debug (PUB) has no link in this selection: its links go to spy")
    assert not [p for p in load(Sources(paths, (), profiles_from(["debug"], {}))).warnings if "no link" in p.message]
    with pytest.raises(InvalidTopology, match="source.debug .PUB. has no link: add one"):
        load(Sources(files(tmp_path, TAPPED.replace("      - source.debug -> spy.in\n", ""))))  # no link at all
