"""Where a courier stands against the published round: the next stop's ETA and the stops that will be late.

The next stop's ETA is the fix's time plus the fastest motorbike time along the roads (the road
graph and speeds the planner used), plus the stretch from each point to its road at town speed.
When the road network is not ready in this process, or the fix is far from every mapped road (a
track in a mountain commune), it falls back to the straight line x a detour factor at town speed.

The delay at the next stop then carries down the rest of the round in planned order: the
waiting the plan had at a stop (arriving before its window opened) absorbs part of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

#: The fastest time along the roads between two points and the off-road stretch (s, m), or
#: None when a point is farther than ``max_snap_m`` from every road.
RoadTimeFn = Callable[..., tuple[float, float] | None]

TOWN_SPEED_MPS = 30 / 3.6
DETOUR_FACTOR = 1.3
#: A fix farther than this from every mapped road is estimated by straight line.
MAX_FIX_SNAP_M = 1000.0

Basis = Literal["roads", "straight_line"]


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the great-circle distance between two points in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(min(1.0, a)))


def straight_line_s(lon1: float, lat1: float, lon2: float, lat2: float) -> int:
    """Estimate motorbike travel time by straight line x detour factor at town speed."""
    return round(haversine_m(lon1, lat1, lon2, lat2) * DETOUR_FACTOR / TOWN_SPEED_MPS)


def travel_s(
    road_time: RoadTimeFn | None, lon: float, lat: float, to_lon: float, to_lat: float
) -> tuple[int, Basis]:
    """Return the travel time from a fix to a stop and what it was measured on.

    ``road_time`` is the road network's point-to-point time (None while it is not loaded).
    """
    if road_time is not None:
        found = road_time(lon, lat, to_lon, to_lat, max_snap_m=MAX_FIX_SNAP_M)
        if found is not None:
            road_s, off_road_m = found
            return round(road_s + off_road_m / TOWN_SPEED_MPS), "roads"
    return straight_line_s(lon, lat, to_lon, to_lat), "straight_line"


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """What the published plan says of one stop: when, how long it waited, when it closes."""

    job_id: str
    arrival_s: int
    waiting_s: int
    window_end_s: int


@dataclass(frozen=True, slots=True)
class Projection:
    """The round from a GPS fix on: next stop's ETA and drift, and the stops expected late."""

    job_id: str
    eta_s: int
    drift_s: int
    basis: Basis
    expected_late: tuple[str, ...]


def project(remaining: Sequence[PlannedStop], eta_s: int, basis: Basis) -> Projection:
    """Carry the next stop's delay down the rest of the round.

    Parameters
    ----------
    remaining
        The stops still to serve in planned order, the next stop first (not empty).
    eta_s
        The next stop's estimated arrival, seconds since local midnight.
    basis
        What the ETA was measured on.

    Returns
    -------
    projection
        ``drift_s`` is the ETA minus the planned arrival (positive: late); ``expected_late``
        lists the stops whose projected arrival falls after their window closes. Arriving early
        is not carried on: a later stop's window start may hold the courier anyway.
    """
    drift = eta_s - remaining[0].arrival_s
    delay = drift
    late: list[str] = []
    for stop in remaining:
        if stop.arrival_s + delay > stop.window_end_s:
            late.append(stop.job_id)
        delay = max(0, delay - stop.waiting_s)
    return Projection(remaining[0].job_id, eta_s, drift, basis, tuple(late))
