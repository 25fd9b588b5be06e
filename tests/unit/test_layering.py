"""The packages depend one way: api -> routing -> geodata; geodata imports neither; only solver imports ortools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _package_of(path: Path) -> list[str]:
    """Return the package a module file belongs to, as parts (``routing/check.py`` -> routing)."""
    return list(path.resolve().relative_to(ROOT).parts[:-1])


def _imported(source: str, package: list[str]) -> set[str]:
    """Return every module a source may import, fully qualified.

    Covers ``import a.b``, ``from a import b`` (both ``a`` and ``a.b``, since ``b`` may be a
    module), relative imports resolved against ``package`` (``from . import solver`` in
    ``routing`` is ``routing.solver``) and ``importlib.import_module("a.b")`` / ``__import__``
    with a literal name.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                names.add(base)
            names.update(f"{base}.{a.name}" if base else a.name for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("__import__", "import_module")
                )
            )
        ):
            names.add(node.args[0].value)
    return names


def _imports(path: Path) -> set[str]:
    return _imported(path.read_text(encoding="utf-8"), _package_of(path))


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from routing import solver", ["geodata"], "routing.solver"),
        ("import routing.solver", ["geodata"], "routing.solver"),
        ("import routing.solver as s", ["geodata"], "routing.solver"),
        ("from api import live", ["routing"], "api.live"),
        ("from api.live import publish", ["routing"], "api.live"),
        ("from . import solver", ["routing"], "routing.solver"),
        ("from .solver import solve", ["routing"], "routing.solver"),
        ("from .. import api", ["routing", "sub"], "routing.api"),
        ("import importlib\nimportlib.import_module('api.worker')", ["routing"], "api.worker"),
        ("def f():\n    from api import worker\n", ["routing"], "api.worker"),
    ],
)
def test_the_scanner_sees_every_import_form(source: str, package: list[str], expected: str) -> None:
    """Each way of writing an import is seen, so the layering tests below can fail."""
    assert expected in _imported(source, package)


@pytest.mark.parametrize(
    ("package", "forbidden"), [("geodata", {"routing", "api"}), ("routing", {"api"})]
)
def test_no_upward_imports(package: str, forbidden: set[str]) -> None:
    """Geodata never imports routing or api; routing never imports api."""
    offenders = {
        str(p.relative_to(ROOT)): _top(_imports(p)) & forbidden
        for p in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_solver_imports_ortools() -> None:
    """OR-Tools stays behind routing/solver.py."""
    users = [
        str(p.relative_to(ROOT))
        for pkg in ("routing", "geodata", "api")
        for p in (ROOT / pkg).rglob("*.py")
        if "ortools" in _top(_imports(p))
    ]
    assert set(users) <= {"routing/solver.py"}


def test_the_checker_is_independent_of_the_solver() -> None:
    """routing/check.py recomputes plans without solver code (in any import form) or OR-Tools."""
    names = _imports(ROOT / "routing" / "check.py")
    assert names, "the scanner found no imports at all in routing/check.py"
    offending = {
        n for n in names if n == "routing.solver" or n.startswith(("routing.solver.", "ortools"))
    }
    assert offending == set()
