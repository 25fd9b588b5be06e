from __future__ import annotations

import ast
from pathlib import Path

import routing

PACKAGE = Path(routing.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_solver_imports_ortools() -> None:
    """No routing module but solver.py imports OR-Tools; the checker imports no solver code."""
    for path in PACKAGE.glob("*.py"):
        imported = _imports(path)
        if path.name != "solver.py":
            assert not any(n.startswith("ortools") for n in imported), path.name
    check = _imports(PACKAGE / "check.py")
    assert "routing.solver" not in check
    assert not any(
        n.startswith(("api", "geodata")) for p in PACKAGE.glob("*.py") for n in _imports(p)
    )
