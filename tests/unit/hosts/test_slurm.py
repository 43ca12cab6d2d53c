"""Learning the allocation: from the environment Slurm sets and from scontrol's answers."""

from __future__ import annotations

import stat

import pytest

from topo.errors import UsageError
from topo.file.model import AllocationSpec
from topo.errors import Pos
from topo.hosts import slurm

SPEC = AllocationSpec("slurm", Pos("f.yaml", 2, 1))


def fake_scontrol(tmp_path, script: str) -> str:
    path = tmp_path / "scontrol"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(tmp_path)


def test_outside_an_allocation_there_is_none():
    assert slurm.discover(SPEC, {}) is None
    assert slurm.discover(SPEC, {"SLURM_JOB_ID": "3"}) is None


def test_names_and_addresses_come_from_scontrol(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path, """\
case "$1 $2" in
  "show hostnames") echo cn01; echo cn02 ;;
  "-o show") echo "NodeName=cn01 Arch=x86_64 NodeAddr=10.1.0.1 NodeHostName=cn01"
             echo "NodeName=cn02 Arch=x86_64 NodeAddr=localhost NodeHostName=cn02" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""))
    found = slurm.discover(SPEC, {"SLURM_JOB_ID": "9", "SLURM_JOB_NODELIST": "cn[01-02]", "SLURMD_NODENAME": "cn02"})
    assert found is not None
    assert [(n.name, n.address) for n in found.nodes] == [("cn01", "10.1.0.1"), ("cn02", "127.0.0.1")]
    assert found.job == "9" and found.here == "cn02" and found.local_address == "127.0.0.1"


def test_without_scontrol_the_list_is_expanded_here(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol in it
    found = slurm.discover(SPEC, {"SLURM_JOB_ID": "9", "SLURM_JOB_NODELIST": "localhost,no-such-node-[1-2]"})
    assert found is not None and found.here is None
    assert [(n.name, n.address) for n in found.nodes] == [
        ("localhost", "127.0.0.1"), ("no-such-node-1", "no-such-node-1"), ("no-such-node-2", "no-such-node-2")]
    assert found.local_address == "127.0.0.1"  # the way to the first node


def test_a_failing_scontrol_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path, "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1\n"))
    with pytest.raises(UsageError, match="scontrol show hostnames n1 failed .*Unable to contact"):
        slurm.discover(SPEC, {"SLURM_JOB_ID": "9", "SLURM_JOB_NODELIST": "n1"})


def test_the_harness_refuses_an_allocation_it_does_not_run_in(tmp_path, monkeypatch):
    from topo.testing.source import read_source

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text("topology: t\nhosts: {from: slurm}\nnodes:\n  a: {run: m:f, host: any}\n")
    with pytest.raises(UsageError, match=r"hosts: \{from: slurm\} .*\(no SLURM_JOB_ID\)"):
        read_source(str(path), probes={}, overrides={}, overlays=(), sets=(), profiles=(), strict=False, lenient=False)
