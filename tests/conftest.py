"""Shared fixtures: a small synthetic province and its compact graph, built once per session."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from geodata.compact import compact_graph
from geodata.synthetic import make_province

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince


@pytest.fixture(scope="session")
def province() -> SyntheticProvince:
    """A 2,000-node synthetic Kon Tum province (seeded)."""
    return make_province(2000, seed=7)


@pytest.fixture(scope="session")
def province_graph(province: SyntheticProvince) -> CompactGraph:
    """The compact graph of :func:`province`."""
    return compact_graph(province.graph)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Give the root logger back its handlers and level after each test.

    A test that configures the service's logging (``configure_logging``, the CLI in process)
    leaves a handler on that test's captured stderr, which pytest then closes: every later log
    line in the same process printed a "Logging error" traceback instead.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
