"""Snapping points onto road segments, with distances checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from geodata.compact import CompactGraph
from geodata.errors import SnapError
from geodata.snap import Snapper, snap_points

from .graphs import at, graph


@pytest.fixture(scope="module")
def street() -> CompactGraph:
    """An east-west street of 1 km and a north-south one of 1 km meeting at its east end."""
    return graph(
        {1: (0, 0), 2: (1000, 0), 3: (1000, 1000)}, [(1, 2, 100, True), (2, 3, 100, False)]
    )


def test_projection_onto_the_segment(street: CompactGraph) -> None:
    """A house 100 m north of the street's middle snaps to the middle, 100 m away."""
    lon, lat = at(500, 100)
    s = snap_points(street, [lon], [lat])
    assert s.distance_m[0] == pytest.approx(100, abs=0.5)
    assert s.fraction[0] == pytest.approx(0.5, abs=0.002)
    slon, slat = at(500, 0)
    assert s.lon[0] == pytest.approx(slon, abs=1e-6)
    assert s.lat[0] == pytest.approx(slat, abs=1e-6)
    assert not s.far[0]


def test_nearest_segment_not_nearest_node(street: CompactGraph) -> None:
    """A point 30 m beside the north-south street's middle snaps to it (its nodes are 500 m away)."""
    lon, lat = at(1030, 500)
    s = snap_points(street, [lon], [lat])
    assert s.distance_m[0] == pytest.approx(30, abs=0.5)
    e = int(s.edge[0])
    assert {int(street.tail[e]), int(street.head[e])} == {1, 2}  # node indices of osm ids 2, 3


def test_point_on_a_node_is_at_the_node(street: CompactGraph) -> None:
    """A point exactly at an intersection snaps with fraction 0 or 1 and distance 0."""
    lon, lat = at(1000, 0)
    s = snap_points(street, [lon], [lat])
    assert s.distance_m[0] == pytest.approx(0, abs=0.01)
    assert s.fraction[0] in (0.0, 1.0)


def test_far_points_are_flagged_not_hidden(street: CompactGraph) -> None:
    """Points beyond the threshold are flagged with their true distance."""
    near, far = at(500, 400), at(500, 2000)
    s = Snapper(street).snap([near[0], far[0]], [near[1], far[1]], max_distance_m=500)
    assert s.far.tolist() == [False, True]
    assert s.far_indices() == [1]
    assert s.distance_m[1] == pytest.approx(
        np.hypot(500, 1000), abs=2
    )  # nearest road point: node (1000, 1000)


def test_points_outside_the_graph_area_are_far(province_graph: CompactGraph) -> None:
    """A point in Hanoi is far from every road of Kon Tum."""
    s = snap_points(province_graph, [105.83], [21.03])
    assert s.far[0]
    assert s.distance_m[0] > 500_000


@pytest.mark.parametrize(("lon", "lat"), [(np.nan, 14.3), (108.0, 95.0), (200.0, 14.0)])
def test_invalid_coordinates(street: CompactGraph, lon: float, lat: float) -> None:
    """Missing or out-of-range coordinates are refused, naming the point."""
    with pytest.raises(SnapError, match=r"indices \[1\]"):
        snap_points(street, [108.0, lon], [14.35, lat])


def test_length_mismatch(street: CompactGraph) -> None:
    """Lon and lat must have the same length."""
    with pytest.raises(SnapError, match="differ"):
        snap_points(street, [108.0, 108.1], [14.35])
