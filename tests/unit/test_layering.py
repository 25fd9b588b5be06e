"""The packages depend one way: api -> routing -> geodata; geodata imports neither; only solver imports ortools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"), [("geodata", {"routing", "api"}), ("routing", {"api"})]
)
def test_no_upward_imports(package: str, forbidden: set[str]) -> None:
    """Geodata never imports routing or api; routing never imports api."""
    offenders = {
        str(p.relative_to(ROOT)): _imports(p) & forbidden for p in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_solver_imports_ortools() -> None:
    """OR-Tools stays behind routing/solver.py."""
    users = [
        str(p.relative_to(ROOT))
        for pkg in ("routing", "geodata", "api")
        for p in (ROOT / pkg).rglob("*.py")
        if "ortools" in _imports(p)
    ]
    assert set(users) <= {"routing/solver.py"}


def test_the_checker_is_independent_of_the_solver() -> None:
    """routing/check.py recomputes plans without solver code."""
    assert not {"routing.solver", "ortools"} & {
        n.split(".")[0] if n == "ortools" else n
        for n in _module_imports(ROOT / "routing" / "check.py")
    }


def _module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names
