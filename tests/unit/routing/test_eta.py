"""Live ETAs: road travel times against an independent shortest-path engine, and the projection."""

from __future__ import annotations

import random

import numpy as np
import pytest

from api.network import Network
from geodata.compact import CompactGraph
from geodata.matrix import UNREACHABLE, Router
from geodata.snap import Snapper
from routing.eta import (
    MAX_FIX_SNAP_M,
    TOWN_SPEED_MPS,
    PlannedStop,
    haversine_m,
    project,
    straight_line_s,
    travel_s,
)


def test_delay_carries_down_the_round_less_the_planned_waiting() -> None:
    """A 20-min delay: 5 min of planned waiting at the first stop leaves 15 min for the next ones."""
    stops = [
        PlannedStop("A", 9 * 3600, 300, 10 * 3600),
        PlannedStop("B", 10 * 3600 - 600, 0, 10 * 3600),  # closes 10 min after its planned arrival
        PlannedStop("C", 11 * 3600, 0, 12 * 3600),
    ]
    p = project(stops, 9 * 3600 + 1200, "roads")
    assert p.job_id == "A"
    assert p.drift_s == 1200
    # B: 20 - 5 = 15 min late against a 10-minute margin; C has an hour.
    assert p.expected_late == ("B",)
    on_time = project(stops, 9 * 3600 + 600, "roads")  # 10 min late, 5 absorbed: B arrives +5
    assert on_time.expected_late == ()


def test_arriving_early_is_not_carried_on() -> None:
    """An early courier is not projected early at later stops (their windows may hold them)."""
    stops = [PlannedStop("A", 9 * 3600, 0, 9 * 3600), PlannedStop("B", 10 * 3600, 0, 10 * 3600)]
    p = project(stops, 8 * 3600, "straight_line")
    assert p.drift_s == -3600
    assert p.expected_late == ()
    late_at_a = project(stops, 9 * 3600 + 1, "straight_line")
    assert late_at_a.expected_late == ("A", "B")


@pytest.fixture(scope="module")
def network(province_graph: CompactGraph) -> Network:
    net = Network(province_graph)
    net.warm()
    return net


def test_road_times_match_full_graph_dijkstra(
    network: Network, province_graph: CompactGraph
) -> None:
    """Fix-to-stop times along the roads equal scipy's Dijkstra between the same snapped points."""
    g = province_graph
    rng = random.Random(3)
    snapper = Snapper(g)
    dijkstra = Router(g, workers=1)
    checked = 0
    for _ in range(30):
        a, b = rng.randrange(g.n_nodes), rng.randrange(g.n_nodes)
        # A point near node a (off the road by a little) and one near node b.
        lons = np.array([g.node_lon[a] + 0.0004, g.node_lon[b]])
        lats = np.array([g.node_lat[a] - 0.0003, g.node_lat[b] + 0.0002])
        snaps = snapper.snap(lons, lats, max_distance_m=MAX_FIX_SNAP_M, warn_far=False)
        if snaps.far.any():
            continue
        expected = dijkstra.matrix(snaps, distances=False, method="dijkstra").time_s[0, 1]
        found = network.road_time_s(lons[0], lats[0], lons[1], lats[1], max_snap_m=MAX_FIX_SNAP_M)
        if expected >= UNREACHABLE:  # one-way dead ends of the synthetic graph
            assert found is None
            continue
        assert found is not None
        road_s, off_road_m = found
        assert abs(road_s - expected) <= 1
        assert off_road_m == pytest.approx(float(snaps.distance_m.sum()))
        seconds, basis = travel_s(network.road_time_s, lons[0], lats[0], lons[1], lats[1])
        assert basis == "roads"
        assert seconds == round(road_s + off_road_m / TOWN_SPEED_MPS)
        # No road is faster than 120 km/h.
        assert seconds >= haversine_m(lons[0], lats[0], lons[1], lats[1]) / (120 / 3.6) - 1
        checked += 1
    assert checked >= 20


def test_fixes_far_from_every_road_fall_back_to_the_straight_line(
    network: Network, province_graph: CompactGraph
) -> None:
    g = province_graph
    lon, lat = float(g.node_lon[0]), float(g.node_lat[0])
    away = (g.bbox()[2] + 0.2, lat)  # about 20 km east of the province's last road
    assert network.road_time_s(*away, lon, lat, max_snap_m=MAX_FIX_SNAP_M) is None
    assert travel_s(network.road_time_s, *away, lon, lat) == (
        straight_line_s(*away, lon, lat),
        "straight_line",
    )
    assert travel_s(None, lon, lat, *away) == (straight_line_s(lon, lat, *away), "straight_line")


def test_one_point_snaps_and_times_equal_the_general_ones(
    network: Network, province_graph: CompactGraph
) -> None:
    """The live ETAs' one-point snap and time-only query give what snap() and path() give.

    Points on nodes (fraction 0 or 1), beside roads, and pairs on one edge are all covered.
    """
    g = province_graph
    rng = random.Random(11)
    snapper, router = network.snapper, network.router
    same_edge = 0
    for k in range(400):
        a = rng.randrange(g.n_nodes)
        b = a if k % 4 == 0 else rng.randrange(g.n_nodes)
        lons = [float(g.node_lon[a]) + rng.choice([0.0, 1e-5, 4e-4]), float(g.node_lon[b])]
        lats = [float(g.node_lat[a]) + rng.choice([0.0, -3e-4]), float(g.node_lat[b]) + 1e-4]
        snaps = snapper.snap(np.asarray(lons), np.asarray(lats), warn_far=False)
        ones = [snapper.snap_one(lons[i], lats[i]) for i in (0, 1)]
        for i, (edge, fraction, distance_m) in enumerate(ones):
            assert edge == int(snaps.edge[i])
            assert fraction == float(snaps.fraction[i])
            assert distance_m == float(snaps.distance_m[i])
        same_edge += ones[0][0] == ones[1][0]
        found = router.path(snaps, 0, 1)
        seconds = router.time_s(ones[0][:2], ones[1][:2])
        assert seconds == (None if found is None else found[2])
    assert same_edge >= 20
