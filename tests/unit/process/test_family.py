"""A node process's group and the descriptors it does not hand on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from topo.process import family

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc here")


def test_group_members_are_found_by_group_id() -> None:
    sleeper = subprocess.Popen(["sleep", "1000"], process_group=0)
    try:
        assert family.group_members(sleeper.pid) == [sleeper.pid]
        assert family.group_members(sleeper.pid, exclude=[sleeper.pid]) == []
    finally:
        sleeper.kill()
        sleeper.wait(30)


def test_inherited_descriptors_become_close_on_exec_but_0_1_2() -> None:
    # in a child: the test process's own descriptors are not this test's to change
    code = (
        "import os; from topo.process import family\n"
        "r, w = os.pipe(); os.set_inheritable(w, True)\n"
        "family.keep_inherited_fds()\n"
        "print(os.get_inheritable(w), all(os.get_inheritable(fd) for fd in (0, 1, 2)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_a_process_that_reaped_a_child_is_told_from_one_that_never_had_one() -> None:
    """The runtime walks /proc for what is left in its group only when something can be
    (a child reaped, or one still there); a child that ran a moment, as a shell does
    before it leaves a background job behind, is enough. In a child interpreter: the
    test process has reaped children of its own."""
    code = (
        "import os, subprocess; from topo.process import family\n"
        "print(family._reaped_no_child())\n"
        "pid = os.fork()\n"
        "if pid == 0: os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(family._reaped_no_child())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "False"]
