"""The difference between a running plan and an edited file's (topo apply): every kind of
change, from real YAML through the loader, and unchanged links equal whatever their address."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from topo.errors import UsageError
from topo.plan.diff import PlanDiff, diff, diff_plans
from topo.plan.diffview import diff_json, diff_text
from topo.file.model import Topology
from topo.plan.facts import BadFacts, checked, facts_of, kept_binds
from topo.plan.planner import Plan, make_plan

BASE = """\
topology: pipe
nodes:
  source: {run: m:source, args: {rate: 10}, sockets: {out: PUSH, news: PUB}}
  worker: {run: m:work, replicas: 2, sockets: {in: PULL, out: PUSH}}
  sink: {run: m:sink, sockets: {in: PULL}}
  reader: {run: m:read, sockets: {news: {type: SUB, subscribe: [a]}}}
links: [source.out -> worker.in, worker.out -> sink.in, source.news -> reader.news]
"""

Differ = Callable[[str, str], PlanDiff]


@pytest.fixture
def differ(plan: Callable[[str], Plan]) -> Differ:
    """``differ(old_yaml, new_yaml)``: the difference from the one's plan to the other's."""
    return lambda old, new: diff_plans(plan(old), plan(new))


@pytest.fixture
def applied(topology: Callable[[str], Topology]) -> Differ:
    """``applied(old_yaml, new_yaml)``: the difference as ``topo apply`` makes it, the new
    file planned keeping the running links' binding ends."""
    def compare(old: str, new: str) -> PlanDiff:
        running = facts_of(make_plan(topology(old)))
        return diff(running, facts_of(make_plan(topology(new), keep_binds=kept_binds(running))))
    return compare


def edited(*pairs: tuple[str, str], base: str = BASE) -> str:
    text = base
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def processes(d: PlanDiff, kind: str) -> set[str]:
    return {p.name for p in d.processes if p.kind == kind}


def test_the_same_file_planned_twice_changes_nothing(differ: Differ) -> None:
    d = differ(BASE, BASE)
    assert d.empty and not d.changed and not d.links and not d.processes
    assert set(d.unchanged) == {"source", "worker.0", "worker.1", "sink", "reader"}
    assert set(d.untouched) == {"source", "worker.0", "worker.1", "sink", "reader"}
    assert "nothing to apply" in diff_text(d)


def test_unchanged_links_compare_equal_though_the_planner_renumbered_their_ipc_files(
        plan: Callable[[str], Plan]) -> None:
    # a node added first in the file takes ipc file 0: every other endpoint is renumbered
    new_text = edited(("nodes:\n", "nodes:\n  early: {run: m:e, sockets: {out: PUSH}}\n"),
                      ("links: [", "links: [early.out -> sink.in, "))
    old, new = plan(BASE), plan(new_text)
    old_addr = {(ln.src_instance, ln.dst_instance): ln.endpoint for ln in old.links}
    new_addr = {(ln.src_instance, ln.dst_instance): ln.endpoint for ln in new.links}
    moved = [k for k in old_addr if old_addr[k] != new_addr[k]]
    assert moved, "the test needs an endpoint whose address the planner changed"
    d = diff_plans(old, new)
    assert d.added == ("early",)
    assert [(ln.kind, ln.src, ln.dst) for ln in d.links] == [("+", "early.out", "sink.in")]
    assert processes(d, "↻") == set() and processes(d, "+") == {"early"}
    assert d.endpoints_added == () and d.endpoints_removed == ()  # sink.in was bound already


def test_args_restart_only_the_process_of_that_node(differ: Differ) -> None:
    d = differ(BASE, edited(("args: {rate: 10}", "args: {rate: 20}")))
    assert [(c.name, [(x.what, x.restart, x.old, x.new) for x in c.changes]) for c in d.changed] == [
        ("source", [("args", True, {"rate": 10}, {"rate": 20})])]
    assert processes(d, "↻") == {"source"}
    assert set(d.untouched) == {"worker.0", "worker.1", "sink", "reader"}
    assert not d.links
    assert "~ source (args)" in diff_text(d) and "↻ process source (source: args)" in diff_text(d)


def test_args_that_only_differ_in_key_order_are_equal(differ: Differ) -> None:
    old = edited(("args: {rate: 10}", "args: {rate: 10, name: x}"))
    new = edited(("args: {rate: 10}", "args: {name: x, rate: 10}"))
    assert differ(old, new).empty


@pytest.mark.parametrize("old, new, what", [
    ("run: m:sink", "run: m:sink2", "run"),
    ("sink: {run: m:sink,", "sink: {run: m:sink, env: {LEVEL: debug},", "env"),
])
def test_run_and_env_restart_the_process(differ: Differ, old: str, new: str, what: str) -> None:
    d = differ(BASE, edited((old, new)))
    assert [(c.name, [x.what for x in c.changes]) for c in d.changed] == [("sink", [what])]
    assert [(p.kind, p.name, p.why) for p in d.processes] == [("↻", "sink", (f"sink: {what}",))]


@pytest.mark.parametrize("old, new, what", [
    ("sink: {run: m:sink,", "sink: {run: m:sink, restart: always,", "restart policy"),
    ("sink: {run: m:sink,", "sink: {run: m:sink, on_exit: stop,", "on_exit"),
    ("sink: {run: m:sink,", "sink: {run: m:sink, max_restarts: 9,", "max_restarts"),
    ("sink: {run: m:sink,", "sink: {run: m:sink, restart_window: 5,", "restart_window"),
])
def test_the_supervisors_own_settings_change_in_place(differ: Differ, old: str, new: str, what: str) -> None:
    d = differ(BASE, edited((old, new)))
    assert [(c.name, [(x.what, x.restart) for x in c.changes]) for c in d.changed] == [("sink", [(what, False)])]
    assert not d.processes and "sink" in d.untouched
    assert f"~ sink (in place: {what} " in diff_text(d)


@pytest.mark.parametrize("old, new, what", [
    ("subscribe: [a]", "subscribe: [a, b]", "socket news subscribe"),
    ("{type: SUB, subscribe: [a]}", "{type: SUB, subscribe: [a], options: {rcvhwm: 5}}", "socket news options"),
    ("{type: SUB, subscribe: [a]}", "{type: SUB, subscribe: [a], external: {connect: 'tcp://h:1'}}",
     "socket news external"),
])
def test_socket_changes_restart_the_process(differ: Differ, old: str, new: str, what: str) -> None:
    d = differ(BASE, edited((old, new)))
    assert [(c.name, [(x.what, x.restart) for x in c.changes]) for c in d.changed] == [("reader", [(what, True)])]
    assert processes(d, "↻") == {"reader"}


def test_a_socket_type_change_restarts_both_ends(differ: Differ) -> None:
    d = differ(BASE, edited(("news: PUB", "news: XPUB")))
    assert [(c.name, [x.what for x in c.changes]) for c in d.changed] == [("source", ["socket news type"])]
    assert processes(d, "↻") == {"source"}


def test_an_added_node_starts_its_process_and_its_peers_are_untouched(differ: Differ) -> None:
    new = edited(("nodes:\n", "nodes:\n  audit: {run: m:audit, sockets: {news: SUB}}\n"),
                 ("links: [", "links: [source.news -> audit.news, "))
    d = differ(BASE, new)
    assert d.added == ("audit",) and d.removed == () and d.changed == ()
    assert [(p.kind, p.name) for p in d.processes] == [("+", "audit")]
    (link,) = d.links
    assert (link.kind, link.src, link.dst, link.transport) == ("+", "source.news", "audit.news", "ipc")
    # source.news binds (two links now): the new SUB connects at its start, source is not touched
    assert [(a.socket, a.verb, a.in_place) for a in link.actions] == [("audit.news", "connect", False)]
    assert "source" in d.untouched
    assert "+ audit (process audit)" in diff_text(d, {"audit": "audit"})


def test_a_live_socket_connects_in_place_to_a_new_binding_node(differ: Differ) -> None:
    new = edited(("nodes:\n", "nodes:\n  hub: {run: m:hub, sockets: {in: {type: SUB, bind: true}}}\n"),
                 ("links: [", "links: [source.news -> hub.in, "))
    d = differ(BASE, new)
    acts = {(ln.src, ln.dst): [(a.socket, a.verb, a.in_place) for a in ln.actions] for ln in d.links}
    assert acts == {("source.news", "hub.in"): [("hub.in", "bind", False), ("source.news", "connect", True)]}
    assert "source" in d.untouched
    assert "+ link source.news -> hub.in (ipc): linked in place (source.news connects)" in diff_text(d)


def test_a_new_link_would_flip_which_end_of_a_kept_one_binds_but_apply_keeps_it(
        differ: Differ, applied: Differ) -> None:
    # worker.out gets a second link: 2 links each side, a tie, so the upstream end
    # (worker.out) would bind where sink.in bound, and the kept links be made again
    new = edited(("nodes:\n", "nodes:\n  hub: {run: m:hub, sockets: {in: {type: PULL, bind: true}}}\n"),
                 ("links: [", "links: [worker.out -> hub.in, "))
    flipped = {(ln.src, ln.dst): ln.why for ln in differ(BASE, new).links if ln.kind == "~"}
    assert flipped == {("worker.0.out", "sink.in"): ("binds sink.in → worker.0.out",),
                       ("worker.1.out", "sink.in"): ("binds sink.in → worker.1.out",)}
    d = applied(BASE, new)
    assert {(ln.kind, ln.src, ln.dst) for ln in d.links} == {
        ("+", "worker.0.out", "hub.in"), ("+", "worker.1.out", "hub.in")}
    assert not processes(d, "↻") and processes(d, "+") == {"hub"}
    assert {a.verb for ln in d.links for a in ln.actions if a.in_place} == {"connect"}


def test_a_bind_written_in_the_edit_wins_over_the_running_end(applied: Differ) -> None:
    d = applied(BASE, edited(("sink: {run: m:sink, sockets: {in: PULL}}",
                              "sink: {run: m:sink, sockets: {in: {type: PULL, bind: false}}}")))
    assert {(ln.kind, ln.src, ln.why) for ln in d.links} == {
        ("~", "worker.0.out", ("binds sink.in → worker.0.out",)),
        ("~", "worker.1.out", ("binds sink.in → worker.1.out",))}


def test_a_removed_node_stops_its_process_and_its_dialing_peer_disconnects_in_place(differ: Differ) -> None:
    base = edited(("nodes:\n", "nodes:\n  hub: {run: m:hub, sockets: {in: {type: PULL, bind: true}}}\n"),
                  ("links: [", "links: [sink.in -> hub.in, "), ("sink: {run: m:sink, sockets: {in: PULL}}",
                                                                 "sink: {run: m:sink, sockets: {in: PULL, fwd: PUSH}}"))
    base = base.replace("sink.in -> hub.in", "sink.fwd -> hub.in")
    new = base.replace("  hub: {run: m:hub, sockets: {in: {type: PULL, bind: true}}}\n", "") \
              .replace("sink.fwd -> hub.in, ", "").replace("in: PULL, fwd: PUSH", "in: PULL")
    d = differ(base, new)
    assert d.removed == ("hub",)
    assert [(p.kind, p.name) for p in d.processes if p.kind == "-"] == [("-", "hub")]
    # sink lost its socket fwd: it restarts; the link goes with the processes
    assert processes(d, "↻") == {"sink"}
    (link,) = d.links
    assert link.kind == "-" and [(a.socket, a.verb, a.in_place) for a in link.actions] == [
        ("sink.fwd", "disconnect", False), ("hub.in", "unbind", False)]
    assert d.endpoints_removed == ("hub.in/ipc",)


def test_a_removed_subscriber_leaves_the_publisher_untouched(differ: Differ) -> None:
    new = edited(("  reader: {run: m:read, sockets: {news: {type: SUB, subscribe: [a]}}}\n", ""),
                 (", source.news -> reader.news", ""), ("news: PUB}", "news: PUB, bind: true}"))
    new = new.replace("sockets: {out: PUSH, news: PUB, bind: true}", "sockets: {out: PUSH}")
    d = differ(BASE, new)
    assert d.removed == ("reader",)
    assert processes(d, "-") == {"reader"}
    assert processes(d, "↻") == {"source"}  # its socket news is gone: a socket removed restarts
    assert [c.changes[0].what for c in d.changed] == ["socket news removed"]


def test_more_replicas_add_instances_and_the_others_go_on(differ: Differ) -> None:
    d = differ(BASE, edited(("replicas: 2", "replicas: 3")))
    assert d.added == ("worker.2",)
    assert [(c.name, [(x.what, x.restart, x.old, x.new) for x in c.changes]) for c in d.changed] == [
        ("worker.0", [("replicas", False, 2, 3)]), ("worker.1", [("replicas", False, 2, 3)])]
    assert processes(d, "+") == {"worker.2"} and not processes(d, "↻")
    assert set(d.untouched) == {"source", "worker.0", "worker.1", "sink", "reader"}
    assert {(ln.kind, ln.src, ln.dst) for ln in d.links} == {
        ("+", "source.out", "worker.2.in"), ("+", "worker.2.out", "sink.in")}


def test_every_instance_of_a_node_changed_alike_is_said_once(differ: Differ) -> None:
    d = differ(BASE, edited(("run: m:work", "run: m:work2")))
    assert [c.name for c in d.changed] == ["worker.0", "worker.1"]
    text = diff_text(d)
    assert "~ worker (run)" in text and "↻ process worker.0 (worker: run)" in text
    assert "↻ process worker.1 (worker: run)" in text and "worker.0 (run)" not in text
    # some of them only: named one by one
    more = differ(BASE, edited(("replicas: 2", "replicas: 3")))
    assert "~ worker.0, worker.1 (in place: replicas 2 → 3)" in diff_text(more)


def test_fewer_replicas_remove_instances(differ: Differ) -> None:
    d = differ(edited(("replicas: 2", "replicas: 3")), BASE)
    assert d.removed == ("worker.2",) and processes(d, "-") == {"worker.2"}
    assert {(ln.kind, ln.src, ln.dst) for ln in d.links} == {
        ("-", "source.out", "worker.2.in"), ("-", "worker.2.out", "sink.in")}
    assert not processes(d, "↻")


def test_one_replica_to_two_renames_the_instance(differ: Differ) -> None:
    d = differ(edited(("replicas: 2", "replicas: 1")), BASE)
    assert d.removed == ("worker",) and set(d.added) == {"worker.0", "worker.1"}
    assert processes(d, "-") == {"worker"} and processes(d, "+") == {"worker.0", "worker.1"}


def test_moving_a_node_into_another_nodes_process_restarts_both(differ: Differ) -> None:
    old = edited(("sink: {run: m:sink,", "sink: {run: m:sink, process: back,"))
    new = edited(("sink: {run: m:sink,", "sink: {run: m:sink, process: back,"),
                 ("reader: {run: m:read,", "reader: {run: m:read, process: back,"))
    d = differ(old, new)
    assert [(c.name, [(x.what, x.old, x.new) for x in c.changes]) for c in d.changed] == [
        ("reader", [("process", "reader", "back")])]
    assert processes(d, "↻") == {"back"} and processes(d, "-") == {"reader"}
    assert "source" in d.untouched


def test_a_link_whose_transport_changes_is_made_again(differ: Differ) -> None:
    old = edited(("sink: {run: m:sink,", "sink: {run: m:sink, process: back,"),
                 ("reader: {run: m:read,", "reader: {run: m:read, process: back,"),
                 ("source: {run: m:source,", "source: {run: m:source, process: back,"))
    new = old.replace("reader: {run: m:read, process: back,", "reader: {run: m:read,")
    (link,) = differ(old, new).links
    assert (link.kind, link.src, link.dst, link.why) == ("~", "source.news", "reader.news",
                                                       ("transport inproc → ipc",))


def test_a_second_publisher_would_flip_the_first_ones_link_but_apply_keeps_it(
        differ: Differ, applied: Differ) -> None:
    # reader.news gets two publishers: by the counts it binds now, source.news connects
    new = edited(("nodes:\n", "nodes:\n  other: {run: m:o, sockets: {news: PUB}}\n"),
                 ("links: [", "links: [other.news -> reader.news, "))
    d = differ(BASE, new)
    flipped = [ln for ln in d.links if ln.kind == "~"]
    assert [(ln.src, ln.dst, ln.why) for ln in flipped] == [
        ("source.news", "reader.news", ("binds source.news → reader.news",))]
    assert [(a.socket, a.verb, a.in_place) for a in flipped[0].actions] == [
        ("reader.news", "disconnect", True), ("source.news", "unbind", True),
        ("reader.news", "bind", True), ("source.news", "connect", True)]
    assert d.endpoints_added == ("reader.news/ipc",) and d.endpoints_removed == ("source.news/ipc",)
    kept = applied(BASE, new)
    (link,) = kept.links
    assert (link.kind, link.src, link.dst) == ("+", "other.news", "reader.news")
    # the new link by the counts: reader.news binds (in place, while it still connects to
    # source.news), the new publisher connects as it starts
    assert [(a.socket, a.verb, a.in_place) for a in link.actions] == [
        ("reader.news", "bind", True), ("other.news", "connect", False)]
    assert "source" in kept.untouched and "reader" in kept.untouched


TWO_HOSTS = """\
topology: far
hosts:
  local: {address: 127.0.0.1}
  edge: {address: 10.0.0.2, launch: [ssh, edge]}
nodes:
  a: {run: m:a, sockets: {out: PUB}}
  b: {run: m:b, host: edge, sockets: {in: SUB}}
  c: {run: m:c, sockets: {in: SUB}}
links: [a.out -> b.in, a.out -> c.in]
"""


def test_a_node_moved_to_another_host_restarts_and_its_link_changes_transport(differ: Differ) -> None:
    d = differ(TWO_HOSTS, TWO_HOSTS.replace("c: {run: m:c,", "c: {run: m:c, host: edge,"))
    assert [(c.name, [x.what for x in c.changes]) for c in d.changed] == [("c", ["host"])]
    assert processes(d, "↻") == {"c"}
    assert [(ln.src, ln.dst, ln.why) for ln in d.links] == [("a.out", "c.in", ("transport ipc → tcp", "secure False → True"))]
    assert "max_message" not in str(d.links)  # (it follows security: not a change of its own)


def test_a_hosts_new_address_restarts_its_processes(differ: Differ) -> None:
    d = differ(TWO_HOSTS, TWO_HOSTS.replace("10.0.0.2", "10.0.0.3"))
    assert [(p.kind, p.name, p.why) for p in d.processes] == [("↻", "b", ("host edge changed",))]
    assert set(d.untouched) == {"a", "c"}


def test_another_topology_is_refused(differ: Differ) -> None:
    with pytest.raises(UsageError, match="the file is topology 'other', the run is 'pipe'"):
        differ(BASE, BASE.replace("topology: pipe", "topology: other"))


def test_python_path_is_a_note_and_restarts_nothing(differ: Differ) -> None:
    d = differ(BASE, BASE + "python_path: [lib]\n")
    assert not d.processes and d.notes and "python_path" in d.notes[0]
    assert not d.empty


def test_one_node_changed_among_many_touches_one_process(differ: Differ) -> None:
    nodes = "".join(f"  n{i}: {{run: m:f, sockets: {{in: PULL, out: PUSH}}}}\n" for i in range(50))
    links = ", ".join(f"n{i}.out -> n{i + 1}.in" for i in range(49))
    text = f"topology: chain\nnodes:\n  head: {{run: m:h, sockets: {{out: PUSH}}}}\n{nodes}" \
           f"  tail: {{run: m:t, sockets: {{in: PULL}}}}\nlinks: [head.out -> n0.in, {links}, n49.out -> tail.in]\n"
    d = differ(text, text.replace("n17: {run: m:f,", "n17: {run: m:f, args: {x: 1},"))
    assert processes(d, "↻") == {"n17"} and len(d.untouched) == 51 and len(d.unchanged) == 51


def test_facts_survive_json_and_are_checked(plan: Callable[[str], Plan]) -> None:
    facts = facts_of(plan(BASE))
    again = checked(json.loads(json.dumps(facts)))
    assert again == facts
    assert diff(again, facts).empty
    broken = json.loads(json.dumps(facts))
    broken["instances"]["sink"]["process"] = "nowhere"
    with pytest.raises(BadFacts, match="no process 'nowhere'"):
        checked(broken)
    broken["instances"]["sink"]["process"] = "sink"
    link = next(iter(broken["links"].values()))
    link["binds"] = "elsewhere.out"
    with pytest.raises(BadFacts, match="binds neither of its ends"):
        checked(broken)
    link["binds"], link["from"] = link["to"], "ghost.out"
    with pytest.raises(BadFacts, match="no instance for 'ghost.out'"):
        checked(broken)
    del broken["links"]
    with pytest.raises(BadFacts, match="'links' missing"):
        checked(broken)
    with pytest.raises(BadFacts):
        checked(["not", "facts"])


def test_the_json_form_names_every_part(differ: Differ) -> None:
    d = differ(BASE, edited(("replicas: 2", "replicas: 3"), ("args: {rate: 10}", "args: {rate: 20}")))
    out = json.loads(json.dumps(diff_json(d)))
    assert out["added"] == ["worker.2"]
    assert out["processes"]["started"] == ["worker.2"]
    assert out["processes"]["restarted"] == [{"name": "source", "why": ["source: args"]}]
    assert set(out["processes"]["untouched"]) == {"worker.0", "worker.1", "sink", "reader"}
    assert {ln["src"] for ln in out["links"]} == {"source.out", "worker.2.out"}
    assert out["empty"] is False


def test_args_json_cannot_say_still_compare(differ: Differ) -> None:
    """A YAML date in args (no JSON for it) is compared by its repr, on either side."""
    old = edited(("args: {rate: 10}", "args: {rate: 10, since: 2026-12-03}"))
    assert differ(old, old).empty
    d = differ(old, edited(("args: {rate: 10}", "args: {rate: 10, since: 2026-12-04}")))
    (change,) = d.changed[0].changes
    assert (change.what, change.old["since"], change.new["since"]) == (
        "args", "datetime.date(2026, 12, 3)", "datetime.date(2026, 12, 4)")
    json.dumps(diff_json(d))  # the machine form can say it
