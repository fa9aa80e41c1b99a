"""The test suite's own layout: a test module never imports another test
module (or a conftest). What tests share lives in helper modules under
tests/ (builders, pair, partners, ...), so moving or deleting one test file
never breaks another, and pytest never collects a test twice."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def _imported_test_modules(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, dotted name) of each test module of ours an import statement
    names, `from tests.x import test_y` included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if _is_test_module(node.module) else [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n.split(".")[0] == "tests" and _is_test_module(n)]
    return sorted(out)


def offences(root: Path = TESTS) -> list[str]:
    found = []
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [f"{path.relative_to(root.parent)}:{line} imports {name}"
                  for line, name in _imported_test_modules(tree)]
    return found


def test_no_test_module_imports_another():
    assert offences() == [], "move what they share into a helper module in tests/"


def test_the_check_sees_each_kind_of_import(tmp_path):
    pkg = tmp_path / "tests"
    pkg.mkdir()
    (pkg / "test_a.py").write_text(
        "from tests.integration.test_b import x\n"
        "import tests.test_c\n"
        "from tests.integration import test_d\n"
        "from tests.conftest import y\n"
        "def f():\n    from tests.test_e import z\n"
        "from tests.builders import location\n"
        "from tests import builders\n")
    names = [o.split(" imports ")[1] for o in offences(pkg)]
    assert names == ["tests.integration.test_b", "tests.test_c", "tests.integration.test_d", "tests.conftest",
                     "tests.test_e"]
