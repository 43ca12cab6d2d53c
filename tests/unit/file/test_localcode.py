"""The local files of a node's code, read from its imports without running them."""

from __future__ import annotations

import sys
from pathlib import Path

from topo.file.localcode import node_files


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_module_its_local_imports_and_their_packages_not_the_standard_library(tmp_path: Path) -> None:
    write(tmp_path, {
        "nodes.py": "import os\nimport json\nfrom pkg import helper\nfrom pkg.sub import deep\nimport zmq\n",
        "pkg/__init__.py": "",
        "pkg/helper.py": "from . import shared\nfrom .sub.deep import f\n",
        "pkg/shared.py": "def g():\n    import late  # inside a function: counted too\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "from ..shared import g\n",
        "late.py": "",
        "unused.py": "",
    })
    got = node_files("nodes", [str(tmp_path)])
    assert got == {str((tmp_path / n).resolve()) for n in (
        "nodes.py", "pkg/__init__.py", "pkg/helper.py", "pkg/shared.py", "pkg/sub/__init__.py",
        "pkg/sub/deep.py", "late.py")}


def test_a_dotted_run_module_a_cycle_and_a_broken_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "app/__init__.py": "import app.nodes\n",
        "app/nodes.py": "import app\nimport broken\n",
        "broken.py": "def f(:\n",
    })
    got = node_files("app.nodes", [str(tmp_path)])
    assert got == {str((tmp_path / n).resolve()) for n in ("app/__init__.py", "app/nodes.py", "broken.py")}


def test_nothing_outside_the_roots_and_nothing_under_skip(tmp_path: Path) -> None:
    write(tmp_path, {"mine.py": "import json\nimport own\n", "own/__init__.py": "import json\n"})
    assert node_files("json", [str(tmp_path)]) == frozenset()  # stdlib: not on these roots
    assert node_files("mine", [str(tmp_path)], skip=[str(tmp_path / "own")]) == {str((tmp_path / "mine.py").resolve())}
    assert node_files("no such", [str(tmp_path)]) == frozenset()
    assert node_files("json", sys.path[:0]) == frozenset()
