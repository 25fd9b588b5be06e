"""Shared fixtures: a small synthetic province and its compact graph, built once per session."""

from __future__ import annotations

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
