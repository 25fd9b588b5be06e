"""The synthetic province: deterministic, sized by a parameter, shaped like Kon Tum."""

from __future__ import annotations

import networkx as nx
import pytest

from geodata.synthetic import TOWNS, make_province


def test_same_seed_same_province() -> None:
    """A seed fixes the graph: same nodes, edges and travel times."""
    a, b = make_province(1200, seed=4), make_province(1200, seed=4)
    assert list(a.graph.nodes(data="x")) == list(b.graph.nodes(data="x"))
    ta = sorted(round(d["travel_time"], 6) for _, _, d in a.graph.edges(data=True))
    tb = sorted(round(d["travel_time"], 6) for _, _, d in b.graph.edges(data=True))
    assert ta == tb
    c = make_province(1200, seed=5)
    assert list(c.graph.nodes(data="x")) != list(a.graph.nodes(data="x"))


@pytest.mark.parametrize("n", [1000, 8000])
def test_size_follows_the_parameter(n: int) -> None:
    """The node count is within 5 % of the request."""
    G = make_province(n, seed=1).graph
    assert abs(len(G) - n) <= 0.05 * n


def test_shape_of_the_province(province) -> None:  # type: ignore[no-untyped-def]
    """Towns at their real places, one-way streets, tracks, islands and a landslide-prone commune."""
    G = province.graph
    assert G.graph["crs"] == "epsg:4326"
    kon_tum = next(d for d in province.depots if d["depot_id"] == "BC-KONTUM")
    assert kon_tum["lon"] == pytest.approx(108.0, abs=0.02)
    assert kon_tum["lat"] == pytest.approx(14.35, abs=0.02)
    assert len(province.depots) == len(TOWNS) == 10
    assert any(d["oneway"] for _, _, d in G.edges(data=True)), "Kon Tum has one-way streets"
    classes = {d["highway"] for _, _, d in G.edges(data=True)}
    assert {"trunk", "primary", "track", "residential"} <= classes
    assert nx.number_weakly_connected_components(G) >= 2, "some villages have no road link"
    assert province.landslide_way_ids
    assert sum(not v.connected for v in province.villages) >= 1
    assert len(province.zones) == 10


def test_size_bounds() -> None:
    """Sizes outside the supported range are refused."""
    with pytest.raises(ValueError, match="n_nodes"):
        make_province(10)
