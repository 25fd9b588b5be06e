"""Leg geometries follow the roads from stop to stop."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import Point

from geodata.closures import Closure, closed_edges
from geodata.compact import CompactGraph
from geodata.geometry import leg_geometry, path_length_m
from geodata.matrix import Router
from geodata.snap import snap_points
from geodata.synthetic import SyntheticProvince

from .graphs import at, graph


def test_leg_follows_the_one_way_block() -> None:
    """From the east end of a one-way street back west, the line goes around the block."""
    g = graph(
        {1: (0, 0), 2: (100, 0), 3: (100, 100), 4: (0, 100)},
        [(1, 2, 10, False), (2, 3, 10, True), (3, 4, 10, True), (4, 1, 10, True)],
    )
    a, b = at(80, 0), at(20, 0)
    snaps = snap_points(g, [a[0], b[0]], [a[1], b[1]])
    line = leg_geometry(Router(g, workers=1), snaps, 0, 1)
    assert line is not None
    # 20 m east to the corner, around three sides (300 m), then 20 m along the street
    assert path_length_m(line) == pytest.approx(340, rel=0.01)
    assert Point(line.coords[0]).distance(Point(a)) < 1e-7
    assert Point(line.coords[-1]).distance(Point(b)) < 1e-7


def test_leg_on_one_edge() -> None:
    """Two stops on one street: the line is the piece of street between them."""
    g = graph({1: (0, 0), 2: (100, 0)}, [(1, 2, 10, True)])
    a, b = at(70, 0), at(30, 0)
    snaps = snap_points(g, [a[0], b[0]], [a[1], b[1]])
    line = leg_geometry(Router(g, workers=1), snaps, 0, 1)
    assert line is not None
    assert path_length_m(line) == pytest.approx(40, rel=0.01)


def test_province_legs_match_the_matrix(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """Each leg's line starts and ends at the stops; its ridden length is at least the shortest distance."""
    rng = np.random.default_rng(11)
    nodes = rng.choice(province_graph.n_nodes, 8, replace=False)
    snaps = snap_points(
        province_graph, province_graph.node_lon[nodes] + 2e-4, province_graph.node_lat[nodes]
    )
    router = Router(province_graph)
    m = router.matrix(snaps)
    for i in range(7):
        line = leg_geometry(router, snaps, i, i + 1)
        if m.time_s[i, i + 1] >= 1 << 40:
            assert line is None
            continue
        assert line is not None
        assert Point(line.coords[0]).distance(Point(snaps.lon[i], snaps.lat[i])) < 1e-6
        assert Point(line.coords[-1]).distance(Point(snaps.lon[i + 1], snaps.lat[i + 1])) < 1e-6
        assert path_length_m(line) >= m.distance_m[i, i + 1] * 0.99 - 2


def test_no_leg_through_a_closed_road(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """With the landslide road closed there is no line to the commune."""
    v, depot = province.landslide_village, province.depots[0]
    snaps = snap_points(province_graph, [depot["lon"], v.lon], [depot["lat"], v.lat])
    closed = closed_edges(province_graph, [Closure("x", way_ids=tuple(province.landslide_way_ids))])
    assert leg_geometry(Router(province_graph), snaps, 0, 1) is not None
    assert leg_geometry(Router(province_graph, closed=closed), snaps, 0, 1) is None
