"""What every program start of a run shares (topo.supervisor.execspawn.Starts): made once."""

from __future__ import annotations

import os

import pytest

from topo.supervisor import execspawn
from topo.supervisor.execspawn import Starts


def test_the_environment_is_the_supervisors_at_the_runs_start_with_layers_over_it_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_TEST_BEFORE", "1")
    starts = Starts()
    monkeypatch.setenv("TOPO_TEST_AFTER", "1")  # set once the run began: not a program's
    env = starts.env({"A": "node", "B": "node"}, {"B": "topo", "C": "topo"}, {"C": "notify"})
    assert env[b"TOPO_TEST_BEFORE"] == b"1" and b"TOPO_TEST_AFTER" not in env
    assert (env[b"A"], env[b"B"], env[b"C"]) == (b"node", b"topo", b"notify")
    assert starts.env() == starts.environ and starts.env() is not starts.environ  # a copy each time


def test_a_program_is_looked_for_once_per_path(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    calls: list[tuple[str, str | None]] = []
    real = execspawn.resolve_program

    def counted(program: str, topology_file: str, path: str | None = None) -> str | None:
        calls.append((program, path))
        return real(program, topology_file, path)

    monkeypatch.setattr(execspawn, "resolve_program", counted)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "prog").write_text("#!/bin/sh\n")
    (bin_dir / "prog").chmod(0o755)
    file = str(tmp_path / "topo.yaml")
    starts = Starts()
    assert starts.resolve("prog", file, str(bin_dir)) == str(bin_dir / "prog")
    assert starts.resolve("prog", file, str(bin_dir)) == str(bin_dir / "prog")
    assert calls == [("prog", str(bin_dir))]
    assert starts.resolve("prog", file, os.defpath) is None  # another PATH: looked for there
    assert starts.resolve("prog", file, os.defpath) is None  # not found: looked for again (it may come)
    assert len(calls) == 3
