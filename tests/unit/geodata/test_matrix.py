"""Matrices equal networkx shortest paths: one-ways, parallel edges, islands, closures, mid-edge points."""

from __future__ import annotations

import logging

import networkx as nx
import numpy as np
import pytest

from geodata.closures import Closure, closed_edges
from geodata.compact import LENGTH_SCALE, TIME_SCALE, CompactGraph
from geodata.matrix import UNREACHABLE, Router, build_matrix
from geodata.snap import Snapped, Snapper, snap_points
from geodata.synthetic import SyntheticProvince

from .graphs import at, graph


def reference(
    g: CompactGraph, snaps: Snapped, *, weights: np.ndarray, closed: np.ndarray | None = None
) -> np.ndarray:
    """Shortest paths by networkx on the graph with each point spliced in as its own source and sink.

    Uses the same integer weights (and the same rounding of partial edges) as the engine,
    so results must be identical, not just close.
    """
    D = nx.MultiDiGraph()
    D.add_nodes_from(range(g.n_nodes))
    ok = np.ones(g.n_edges, bool) if closed is None else ~closed
    for e in np.flatnonzero(ok):
        D.add_edge(int(g.tail[e]), int(g.head[e]), w=int(weights[e]))
    n = len(snaps)
    for i in range(n):
        e, f = int(snaps.edge[i]), float(snaps.fraction[i])
        tw = int(g.twin[e])
        src, dst = ("out", i), ("in", i)
        if f == 0.0:
            D.add_edge(src, int(g.tail[e]), w=0)
            D.add_edge(int(g.tail[e]), dst, w=0)
            continue
        if f == 1.0:
            D.add_edge(src, int(g.head[e]), w=0)
            D.add_edge(int(g.head[e]), dst, w=0)
            continue
        if ok[e]:
            D.add_edge(src, int(g.head[e]), w=round((1 - f) * weights[e]))
            D.add_edge(int(g.tail[e]), dst, w=round(f * weights[e]))
        if tw >= 0 and ok[tw]:
            D.add_edge(src, int(g.tail[e]), w=round(f * weights[tw]))
            D.add_edge(int(g.head[e]), dst, w=round((1 - f) * weights[tw]))
    out = np.full((n, n), np.inf)
    for i in range(n):
        lengths = nx.single_source_dijkstra_path_length(D, ("out", i), weight="w")
        for j in range(n):
            out[i, j] = lengths.get(("in", j), np.inf)
    np.fill_diagonal(out, 0)
    return out


def to_seconds(ref: np.ndarray, scale: int) -> np.ndarray:
    bad = ~np.isfinite(ref)
    return np.where(bad, UNREACHABLE, np.rint(np.where(bad, 0, ref) / scale)).astype(np.int64)


@pytest.fixture(scope="module")
def town() -> CompactGraph:
    """A block with a one-way street, a parallel slow/fast pair of edges and an island."""
    pos = {
        1: (0, 0),
        2: (100, 0),
        3: (200, 0),
        4: (200, 100),
        5: (100, 100),
        6: (0, 100),
        7: (900, 900),
        8: (1000, 900),
    }
    edges = [
        (1, 2, 20, True),
        (2, 3, 20, False),  # one-way east
        (3, 4, 15, True),
        (4, 5, 25, True),
        (5, 6, 20, True),
        (6, 1, 18, True),
        (2, 5, 30, True),
        (2, 5, 12, False),  # a faster parallel edge, one way north
        (7, 8, 40, True),  # an island: no road to the block
    ]
    return graph(pos, edges)


METHODS = pytest.mark.parametrize("method", ["cch", "dijkstra"])


@METHODS
def test_nodes_match_networkx_with_one_ways_parallel_edges_and_islands(
    town: CompactGraph, method: str
) -> None:
    """At the nodes themselves the matrix equals networkx's shortest paths, exactly."""
    lon, lat = town.node_lon, town.node_lat
    snaps = snap_points(town, lon, lat)
    m = build_matrix(town, snaps, workers=1, method=method)
    ref = reference(town, snaps, weights=town.time_ds)
    assert np.array_equal(m.time_s, to_seconds(ref, TIME_SCALE))
    assert np.array_equal(
        m.distance_m, to_seconds(reference(town, snaps, weights=town.length_dm), LENGTH_SCALE)
    )
    # the one-way street: 2 -> 3 direct (20 s), 3 -> 2 around the block
    i2, i3 = 1, 2
    assert m.time_s[i2, i3] == 20
    assert m.time_s[i3, i2] > m.time_s[i2, i3]
    # island pairs are explicit
    island = {6, 7}
    pairs = {tuple(p) for p in m.unreachable.tolist()}
    assert all((i, j) in pairs for i in range(6) for j in island)
    assert all(m.time_s[i, j] == UNREACHABLE for i, j in pairs)


@METHODS
def test_mid_edge_points_match_networkx(
    town: CompactGraph, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Houses part-way along streets (one per street) give networkx's answer on the spliced graph.

    Both engines are run (the log names the one used), the hierarchy's mid-edge splicing too.
    """
    houses = [
        at(30, 5),
        at(150, -8),
        at(205, 40),
        at(130, 103),
        at(90, 60),
        at(-4, 70),
        at(950, 905),
    ]
    lon, lat = zip(*houses, strict=True)
    snaps = snap_points(town, lon, lat)
    assert len(set(snaps.edge.tolist())) == len(houses), "one house per street for this test"
    with caplog.at_level(logging.INFO, logger="geodata.matrix"):
        m = build_matrix(town, snaps, workers=2, method=method)
    assert f"by {method} in" in caplog.text
    assert np.array_equal(
        m.time_s, to_seconds(reference(town, snaps, weights=town.time_ds), TIME_SCALE)
    )
    assert np.array_equal(
        m.distance_m, to_seconds(reference(town, snaps, weights=town.length_dm), LENGTH_SCALE)
    )


@METHODS
def test_two_points_on_one_edge(town: CompactGraph, method: str) -> None:
    """Two houses on the same one-way street: forward is a short ride, backward goes around."""
    a, b = at(120, 0), at(180, 0)  # on the one-way 2 -> 3
    snaps = snap_points(town, [a[0], b[0]], [a[1], b[1]])
    assert snaps.edge[0] == snaps.edge[1]
    m = build_matrix(town, snaps, workers=1, method=method)
    assert m.time_s[0, 1] == round((0.8 - 0.2) * 20)  # from 20 % to 80 % of a 20 s street
    assert m.time_s[1, 0] > 20


def test_province_matches_networkx(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """On the synthetic province, random addresses give networkx's shortest travel times."""
    rng = np.random.default_rng(3)
    nodes = rng.choice(province_graph.n_nodes, 40, replace=False)
    lon = province_graph.node_lon[nodes] + rng.normal(0, 3e-4, 40)
    lat = province_graph.node_lat[nodes] + rng.normal(0, 3e-4, 40)
    snaps = snap_points(province_graph, lon, lat)
    # keep one address per edge so that paths cannot pass through another spliced point
    _, first = np.unique(snaps.edge, return_index=True)
    snaps = snaps.subset(np.sort(first))
    m = build_matrix(province_graph, snaps, workers=2, method="cch")
    ref = to_seconds(reference(province_graph, snaps, weights=province_graph.time_ds), TIME_SCALE)
    assert np.array_equal(m.time_s, ref)


def test_parallel_hierarchy_equals_dijkstra(province_graph: CompactGraph) -> None:
    """Many addresses: the hierarchy on two worker processes gives Dijkstra's matrices exactly."""
    rng = np.random.default_rng(5)
    nodes = rng.choice(province_graph.n_nodes, 300, replace=False)
    lon = province_graph.node_lon[nodes] + rng.normal(0, 2e-4, 300)
    lat = province_graph.node_lat[nodes] + rng.normal(0, 2e-4, 300)
    snaps = snap_points(province_graph, lon, lat)
    done: list[tuple[int, int]] = []
    router = Router(province_graph, workers=2)
    fast = router.matrix(snaps, method="cch", progress=lambda a, b: done.append((a, b)))
    slow = router.matrix(snaps, method="dijkstra")
    assert np.array_equal(fast.time_s, slow.time_s)
    assert np.array_equal(fast.distance_m, slow.distance_m)
    assert np.array_equal(fast.unreachable, slow.unreachable)
    assert done[-1] == (300, 300)


def test_landslide_cuts_off_the_commune(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """Closing the commune's only road makes it unreachable, not just farther."""
    v = province.landslide_village
    depot = province.depots[0]
    snaps = snap_points(province_graph, [depot["lon"], v.lon], [depot["lat"], v.lat])
    open_day = build_matrix(province_graph, snaps)
    assert open_day.time_s[0, 1] < UNREACHABLE
    closure = Closure("landslide", way_ids=tuple(province.landslide_way_ids), reason="sạt lở")
    closed = closed_edges(province_graph, [closure])
    assert closed.any()
    cut = build_matrix(province_graph, snaps, closed=closed, method="cch")
    assert cut.time_s[0, 1] == UNREACHABLE
    assert cut.time_s[1, 0] == UNREACHABLE
    assert {(0, 1), (1, 0)} <= {tuple(p) for p in cut.unreachable.tolist()}
    ref = reference(province_graph, snaps, weights=province_graph.time_ds, closed=closed)
    assert np.array_equal(cut.time_s, to_seconds(ref, TIME_SCALE))
    slow = build_matrix(province_graph, snaps, closed=closed, method="dijkstra")
    assert np.array_equal(slow.time_s, cut.time_s)


def test_closure_drawn_as_a_line(town: CompactGraph) -> None:
    """A line drawn across a street closes it in both directions."""
    from shapely import LineString

    line = LineString([at(-20, 50), at(20, 50)])  # across street 6-1 at x = 0
    mask = closed_edges(town, [Closure("cut", geometry=line)], snapper=Snapper(town))
    assert mask.sum() == 2
    snaps = snap_points(town, town.node_lon, town.node_lat)
    m = Router(town, closed=mask, workers=1).matrix(snaps, method="cch")
    ref = reference(town, snaps, weights=town.time_ds, closed=mask)
    assert np.array_equal(m.time_s, to_seconds(ref, TIME_SCALE))


def test_far_points_are_unreachable_and_reported(town: CompactGraph) -> None:
    """A point far from every road is not routed: its row and column are unreachable."""
    far = at(5000, 5000)
    snaps = snap_points(town, [town.node_lon[0], far[0]], [town.node_lat[0], far[1]])
    m = build_matrix(town, snaps)
    assert m.far_points == (1,)
    assert m.time_s[0, 1] == UNREACHABLE
    assert m.time_s[1, 1] == 0


def _split(snaps: Snapped, k: int) -> tuple[Snapped, Snapped]:
    n = len(snaps)
    return snaps.subset(np.arange(n - k)), snaps.subset(np.arange(n - k, n))


def test_pinned_points_extended_equal_the_full_matrix(province_graph: CompactGraph) -> None:
    """A round's pinned points plus one or two new ones give the full matrix of all of them."""
    rng = np.random.default_rng(11)
    nodes = rng.choice(province_graph.n_nodes, 42, replace=False)
    lon = province_graph.node_lon[nodes] + rng.normal(0, 3e-4, 42)
    lat = province_graph.node_lat[nodes] + rng.normal(0, 3e-4, 42)
    # the last point on the same street as the first: a ride along one edge both ways
    lon[-1], lat[-1] = lon[0] + 1e-6, lat[0]
    snaps = snap_points(province_graph, lon, lat)
    closed = np.zeros(province_graph.n_edges, dtype=bool)
    closed[rng.choice(province_graph.n_edges, 40, replace=False)] = True
    for mask in (None, closed):
        router = Router(province_graph, closed=mask, workers=1)
        full = router.matrix(snaps)
        for k in (1, 2):
            head, extra = _split(snaps, k)
            pinned = router.pinned(head)
            assert np.array_equal(pinned.first.time_s, router.matrix(head).time_s)
            # pinned together with the first new points: the same matrix at once
            first = router.pinned(head, extra).first
            assert np.array_equal(first.time_s, full.time_s)
            assert np.array_equal(first.distance_m, full.distance_m)
            got = pinned.extended(extra)
            assert np.array_equal(got.time_s, full.time_s)
            assert np.array_equal(got.distance_m, full.distance_m)
            assert np.array_equal(got.unreachable, full.unreachable)
        # asked again with other new points, the pinned round answers the same
        other = snap_points(province_graph, lon[5:7] + 2e-4, lat[5:7])
        both = router.matrix(_concat_for_test(snaps.subset(np.arange(40)), other))
        assert np.array_equal(pinned.extended(other).time_s, both.time_s)


def _concat_for_test(a: Snapped, b: Snapped) -> Snapped:
    from geodata.matrix import _concat

    return _concat(a, b)


@METHODS
def test_pinned_town_with_far_island_and_one_way_points(town: CompactGraph, method: str) -> None:
    """Far points, an island and a one-way street: the extension equals the full matrix."""
    houses = [at(30, 5), at(150, -8), at(205, 40), at(950, 905), at(5000, 5000), at(120, 0)]
    new = [at(180, 0), at(90, 60)]  # on the one-way street with a house, mid-block
    lon, lat = zip(*houses, *new, strict=True)
    snaps = snap_points(town, lon, lat)
    router = Router(town, workers=1)
    base, extra = _split(snaps, 2)
    got = router.pinned(base).extended(extra)
    full = router.matrix(snaps, method=method)
    assert got.far_points == full.far_points == (4,)
    assert np.array_equal(got.time_s, full.time_s)
    assert np.array_equal(got.distance_m, full.distance_m)
