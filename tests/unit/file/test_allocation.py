"""hosts: {from: slurm}: Slurm's host lists, and the placement over an allocation's nodes."""

from __future__ import annotations

from typing import Iterator

import pytest

from topo.file import allocation
from topo.file.allocation import Allocation, SlurmNode, expand_nodelist
from topo.plan.planner import make_plan

THREE = Allocation("42", (SlurmNode("n1", "10.0.0.1"), SlurmNode("n2", "10.0.0.2"), SlurmNode("n3", "10.0.0.3")),
                   None, "10.0.0.254", "/opt/venv/bin/python")


@pytest.fixture
def discovered() -> Iterator[list[Allocation | None]]:
    """What the installed discovery returns (as topo.hosts.slurm would, without Slurm)."""
    box: list[Allocation | None] = [THREE]
    allocation.use(lambda spec: box[0])
    try:
        yield box
    finally:
        allocation.use(None)


@pytest.mark.parametrize("text,names", [
    ("n1", ["n1"]),
    ("node[01-04],x", ["node01", "node02", "node03", "node04", "x"]),
    ("a[1,3-4]", ["a1", "a3", "a4"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("gpu[8-10]", ["gpu8", "gpu9", "gpu10"]),
    ("c[098-101],d[1]", ["c098", "c099", "c100", "c101", "d1"]),
])
def test_host_lists_expand_as_slurm_expands_them(text, names):
    assert expand_nodelist(text) == names


@pytest.mark.parametrize("text", ["n[1-", "n]1", "n[a-b]", "n[3-1]"])
def test_what_is_not_a_host_list_is_refused(text):
    with pytest.raises(ValueError):
        expand_nodelist(text)


FILE = """\
topology: t
hosts: {from: slurm}
nodes:
  first: {run: m:f, host: "slurm[0]", sockets: {out: PUSH}}
  spread: {run: m:f, replicas: 5, hosts: all, sockets: {in: PULL, out: PUSH}}
  a: {run: m:f, host: any, sockets: {in: PULL}}
  b: {run: m:f, host: any}
  c: {run: m:f, host: any}
  d: {run: m:f, host: any}
  here: {run: m:f}
links:
  - first.out -> spread.in
  - spread.out -> a.in
"""


def test_nodes_are_placed_by_index_on_the_least_loaded_node_and_spread(topology, discovered):
    t = topology(FILE)
    plan = make_plan(t)
    hosts = {name: inst.host for name, inst in plan.instances.items()}
    assert hosts == {"first": "n1", "spread.0": "n1", "spread.1": "n2", "spread.2": "n3", "spread.3": "n1",
                     "spread.4": "n2", "a": "n3", "b": "n2", "c": "n3", "d": "n1", "here": "local"}
    # the agents are job steps of the allocation, with topo up's Python
    n2 = plan.host("n2")
    assert n2.launch == ("srun", "--jobid=42", "--nodes=1", "--ntasks=1", "-w", "n2", "--overlap", "--quiet")
    assert n2.python == "/opt/venv/bin/python" and n2.address == "10.0.0.2"
    assert plan.host("local").address == "10.0.0.254"
    assert t.allocation is not None and t.allocation.nodes == ("n1", "n2", "n3") and not t.allocation.stand_in


def test_the_node_topo_up_runs_on_is_local(topology, discovered):
    discovered[0] = Allocation(THREE.job, THREE.nodes, "n1", "", "/usr/bin/python3")
    t = topology(FILE.replace('topology: t', 'topology: t').replace("hosts: {from: slurm}",
                                                                   "hosts: {from: slurm, python: /srv/py}"))
    plan = make_plan(t)
    assert plan.instances["first"].host == "local" and plan.instances["spread.1"].host == "n2"
    assert plan.host("local").address == "10.0.0.1"  # where the others reach it
    assert {h.name for h in plan.hosts} == {"local", "n2", "n3"}
    assert plan.host("n3").python == "/srv/py"
    # named as Slurm names it, the node topo up runs on is still local
    t = topology(FILE.replace('host: "slurm[0]"', "host: n1"))
    assert make_plan(t).instances["first"].host == "local"


def test_an_index_beyond_the_allocation_is_a_located_problem(problems, discovered):
    found = problems(FILE.replace('host: "slurm[0]"', 'host: "slurm[3]"'))
    assert len(found) == 1
    assert (found[0].pos.line, found[0].pos.col) == (4, 27)  # the value
    assert "the allocation has 3 node(s) (slurm[0] to slurm[2])" in found[0].message


def test_outside_an_allocation_stand_ins_are_planned_with_a_warning(tmp_path):
    from topo.file.validate import load
    path = tmp_path / "t.yaml"
    path.write_text(FILE.replace('host: "slurm[0]"', 'host: "slurm[4]"'))
    t = load(str(path), strict=False)
    assert t.allocation is not None and t.allocation.stand_in
    assert t.allocation.nodes == ("node0", "node1", "node2", "node3", "node4")
    assert [w.pos.line for w in t.warnings] == [2]
    assert "does not run in a Slurm allocation" in t.warnings[0].message


@pytest.mark.parametrize("node,wanted", [
    ('{run: m:f, host: "slurm[0]"}', "needs `hosts: {from: slurm}`"),
    ("{run: m:f, replicas: 2, hosts: all}", "needs `hosts: {from: slurm}`"),
])
def test_allocation_words_need_an_allocation(problems, node, wanted):
    found = problems(f"topology: t\nnodes:\n  a: {node}\n")
    assert found and wanted in found[0].message and found[0].pos.line == 3


def test_host_and_hosts_all_together_are_refused(problems, discovered):
    found = problems("topology: t\nhosts: {from: slurm}\nnodes:\n  a: {run: m:f, host: any, replicas: 2, hosts: all}\n")
    assert len(found) == 1 and "keep one" in found[0].message


def test_a_misspelt_allocation_is_told_as_one(problems):
    found = problems("topology: t\nhosts: {from: slrum}\nnodes:\n  a: {run: m:f}\n")
    assert len(found) == 1 and "hosts.from must be one of slurm" in found[0].message, found
    found = problems("topology: t\nhosts: {from: slurm, pyton: x}\nnodes:\n  a: {run: m:f}\n")
    assert len(found) == 1 and "unknown key 'pyton'" in found[0].message, found
    # a mapping of hosts is still told as one
    found = problems("topology: t\nhosts: {h: {adress: x, lanch: y, pyton: z}}\nnodes:\n  a: {run: m:f, host: h}\n")
    assert [p.message.split(" (")[0] for p in found if p.pos.line == 2] == [
        "hosts.h: missing required key 'address'", "unknown key 'adress' in hosts.h",
        "unknown key 'lanch' in hosts.h", "unknown key 'pyton' in hosts.h"]


def test_curve_on_a_link_to_nodes_spread_over_the_allocation_is_a_tcp_link(problems, discovered):
    """A node spread with ``hosts: all`` runs on several hosts: its links cross hosts, so
    ``curve: true`` is right there (it was refused as if all ran on 'local')."""
    spread = ("topology: t\nhosts: {from: slurm}\nnodes:\n  feed: {run: m:f, sockets: {out: PUSH}}\n"
              "  worker: {run: m:f, %s sockets: {in: PULL}}\n"
              "links:\n  - {from: feed.out, to: worker.in, curve: true}\n")
    assert problems(spread % "replicas: 4, hosts: all,") == []
    found = problems(spread % "")  # both on local: not tcp, refused as before
    assert len(found) == 1 and "`curve: true` on a link that is not tcp (both ends run on host 'local')" in \
        found[0].message
