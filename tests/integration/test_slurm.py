"""``hosts: {from: slurm}`` on a real Slurm cluster of three nodes (:mod:`slurmcluster`):
``topo up`` under ``salloc -N 3`` and as an ``sbatch`` script, the agents job steps."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from conftest import HERE, ROOT, Topo, wait_until
from hostnet import Network, namespace_pids
from slurmcluster import Cluster, requires_slurm, slurm_cluster

pytestmark = [requires_slurm, pytest.mark.slow]

PIPELINE = """
    topology: spipe
    hosts: {from: slurm}
    nodes:
      vent:
        run: itnodes:vent
        host: slurm[0]
        args: {tasks: 30}
        sockets: {out: PUSH}
      worker:
        run: itnodes:work
        replicas: 3
        hosts: all
        sockets: {in: PULL, out: PUSH}
      sink:
        run: itnodes:collect
        host: slurm[2]
        args: {tasks: 30}
        on_exit: stop
        sockets: {in: PULL}
    links:
      - vent.out -> worker.in
      - worker.out -> sink.in
    """

FOREVER = """
    topology: sforever
    hosts: {from: slurm}
    nodes:
      pub: {run: itnodes:publish_forever, host: "slurm[0]", sockets: {out: PUB}}
      show: {run: itnodes:print_received, host: "slurm[1]", sockets: {in: {type: SUB, subscribe: [""]}}}
    links:
      - pub.out -> show.in
    """


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with slurm_cluster(3) as c:
        yield c


def env(topo: Topo, cluster: Cluster) -> dict[str, str]:
    return {**{k: v for k, v in topo.env.items() if not k.startswith("SLURM")}, "SLURM_CONF": str(cluster.conf)}


def salloc_up(topo: Topo, cluster: Cluster, path: str) -> subprocess.Popen[str]:
    """``salloc -N 3 topo up PATH``, its output read as topo.start's."""
    proc = subprocess.Popen(["salloc", "-N", "3", "--quiet", sys.executable, "-m", "topo", "up", path,
                             "--ready-timeout", "30"], env=env(topo, cluster), cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    topo.procs.append(proc)
    return proc


def left_on_nodes(cluster: Cluster) -> list[str]:
    """Every process on the nodes but the slurmd daemons themselves."""
    out = []
    for pid in namespace_pids_of(cluster):
        try:
            name = psutil.Process(pid).name()
        except psutil.Error:
            continue
        if name != "slurmd":
            out.append(f"{pid} {name}")
    return out


def namespace_pids_of(cluster: Cluster) -> list[int]:
    return namespace_pids(Network(cluster.controller_address, [n.host for n in cluster.nodes]))


def test_the_pipeline_spreads_over_the_allocation_and_every_task_is_counted(topo: Topo, cluster: Cluster) -> None:
    path = topo.file(PIPELINE)
    proc = salloc_up(topo, cluster, path)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err
    counts = re.search(r"^sink@n3 +\| counts (.*)$", out, re.M)
    assert counts, out + err
    assert counts.group(1).split() == ["worker.0=10", "worker.1=10", "worker.2=10"]
    # salloc ran here, outside the allocation: every node of the file is on one of its nodes
    for name in ("host n1: starting its agent: srun", "host n2: starting", "host n3: starting"):
        assert name in out, out
    # the plan inside the allocation shows the placement: workers in turn over n1..n3
    plan = subprocess.run(["salloc", "-N", "3", "--quiet", sys.executable, "-m", "topo", "plan", path, "--json"],
                          env=env(topo, cluster), cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    hosts = {p["name"]: p["host"] for p in json.loads(plan.stdout)["processes"]}
    assert hosts == {"vent": "n1", "worker.0": "n1", "worker.1": "n2", "worker.2": "n3", "sink": "n3"}
    # interface: the nodes' addresses read on each of them; one that is not there is said
    bad = topo.file(PIPELINE.replace("hosts: {from: slurm}", "hosts: {from: slurm, interface: nope0}"), "bad.yaml")
    plan = subprocess.run(["salloc", "-N", "3", "--quiet", sys.executable, "-m", "topo", "plan", bad],
                          env=env(topo, cluster), cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert plan.returncode == 2 and "no IPv4 address on interface 'nope0' on node(s) n1, n2, n3" in plan.stderr, \
        plan.stdout + plan.stderr
    wait_until(lambda: left_on_nodes(cluster) == [], 15, "every process on the nodes to be gone")
    cluster.wait_no_jobs(15)


@pytest.mark.parametrize("how", ["scancel", "kill -9 topo up", "Ctrl-C"])
def test_scancel_ctrl_c_or_a_killed_topo_up_leaves_nothing_on_any_node(topo: Topo, cluster: Cluster,
                                                                       how: str) -> None:
    proc = salloc_up(topo, cluster, topo.file(FOREVER))
    topo.wait_for_line(proc, r"show@n2 +\| received tick")
    assert len(left_on_nodes(cluster)) >= 4  # two steps, an agent in each, their node processes
    started = time.monotonic()
    if how == "scancel":
        (job,) = cluster.jobs()
        cluster.run("scancel", job)
    else:
        up = next(p for p in psutil.Process(proc.pid).children(recursive=True)
                  if "up" in p.cmdline() and "topo" in p.cmdline())
        up.send_signal(signal.SIGKILL if how.startswith("kill") else signal.SIGINT)
    wait_until(lambda: left_on_nodes(cluster) == [], 15, f"every process on the nodes to end after {how}")
    assert time.monotonic() - started < 8
    out, err = proc.communicate(timeout=30)
    if how == "scancel":
        assert "CANCELLED" in out and "stopping show" in out, out + err
    if how == "Ctrl-C":
        assert "stopped: Ctrl-C" in out and "(exit 130)" in out and re.search(r"show +stopped", out), out + err
    cluster.wait_no_jobs(15)


@pytest.mark.parametrize("how", ["fails", "down"])
def test_a_failed_or_downed_node_is_a_lost_host(topo: Topo, cluster: Cluster, how: str) -> None:
    """fails: n2's slurmd, the step's slurmstepd, the agent and its node processes die at
    once. down: scontrol marks n2 down, and Slurm ends the job's steps (the whole job)."""
    proc = salloc_up(topo, cluster, topo.file(FOREVER))
    topo.wait_for_line(proc, r"show@n2 +\| received tick")
    if how == "fails":
        n2 = cluster.nodes[1].host.name
        for pid in subprocess.run(["ip", "netns", "pids", n2], capture_output=True, text=True,
                                  check=True).stdout.split():
            # one killed before it may take it with it (an agent's nodes follow their agent)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    else:
        cluster.run("scontrol", "update", "nodename=n2", "state=down", "reason=topo-test")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    lost = re.search(r"host (n[12]) lost: ", out)
    assert lost, out + err
    node = {"n1": "pub", "n2": "show"}[lost.group(1)]
    assert re.search(rf"{node} failed: its host {lost.group(1)} was lost", out), out
    if how == "fails":
        assert lost.group(1) == "n2", out  # by its silence (srun waits on the dead slurmstepd)
    wait_until(lambda: left_on_nodes(cluster) == [], 15, "every process on the nodes to be gone")


def test_topo_up_as_the_body_of_an_sbatch_script(topo: Topo, cluster: Cluster, tmp_path: Path) -> None:
    # interface: eth0, each node's address read there (the namespace's own eth0)
    path = topo.file(PIPELINE.replace("host: slurm[2]", "host: slurm[1]")
                     .replace("hosts: {from: slurm}", "hosts: {from: slurm, interface: eth0}"))
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m topo up {path} --ready-timeout 30\n")
    output = tmp_path / "job.out"
    job = subprocess.run(["sbatch", "--parsable", "-N", "3", "-o", str(output), str(script)],
                         env=env(topo, cluster), cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert job.returncode == 0, job.stderr
    wait_until(lambda: job.stdout.strip() not in cluster.jobs(), 60, "the batch job to end")
    text = output.read_text()
    # the script runs on n1: that is the host `local`, where vent (slurm[0]) and worker.0 run
    assert "vent returned" in text, text
    assert re.search(r"^sink@n2 +\| counts worker\.0=10 worker\.1=10 worker\.2=10$", text, re.M), text
    assert re.search(r"stopped: sink returned \(on_exit: stop\) after .* \(exit 0\)", text), text
    assert "starting its agent" in text and "host n1:" not in text  # no agent where topo up runs
    wait_until(lambda: left_on_nodes(cluster) == [], 15, "every process on the nodes to be gone")
