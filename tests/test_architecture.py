"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and
they do catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import evroam

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    # --no-cache: the graph is built from the files as they are now, and no cache is left behind.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_import_contracts_hold(tmp_path: Path) -> None:
    run = lint_imports(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    shutil.copytree(Path(evroam.__file__).parent, tmp_path / "evroam",
                    ignore=shutil.ignore_patterns("__pycache__"))
    base = tmp_path / "evroam" / "ocpi" / "base.py"
    base.write_text(base.read_text() + "\nimport evroam.node  # an upward import\n")
    run = lint_imports(tmp_path, pythonpath=tmp_path)
    assert run.returncode != 0, run.stdout
    assert "evroam.ocpi.base -> evroam.node" in run.stdout
    assert "ocpi is the pure protocol: it imports nothing of ours outside itself BROKEN" in run.stdout
