"""Leg geometries: the road a courier rides between two stops, as a LineString for maps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from shapely import LineString

from .matrix import Router
from .snap import Snapped


def _cut(coords: npt.NDArray[np.float64], start: float, end: float) -> npt.NDArray[np.float64]:
    """Return the part of a polyline between two length fractions (start <= end)."""
    seg = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    total = cum[-1]
    if total == 0:
        return coords[[0, -1]]
    a, b = start * total, end * total
    xs = np.interp([a, b], cum, coords[:, 0])
    ys = np.interp([a, b], cum, coords[:, 1])
    inner = (cum > a) & (cum < b)
    return np.vstack(([xs[0], ys[0]], coords[inner], [xs[1], ys[1]]))


def leg_geometry(router: Router, snaps: Snapped, i: int, j: int) -> LineString | None:
    """Return the fastest road path from point i to point j as a lon/lat LineString.

    The line follows the roads from point i's snapped position to point j's,
    including the parts of the points' own edges. None when there is no path
    (closed or disconnected roads).

    Parameters
    ----------
    router
        The day's router (closures applied).
    snaps
        Snapped points; ``i`` and ``j`` index into them.
    i, j
        From and to point.

    Returns
    -------
    line
    """
    found = router.path(snaps, i, j)
    if found is None:
        return None
    edges, nodes, _ = found
    g = router.graph
    ei, fi = int(snaps.edge[i]), float(snaps.fraction[i])
    ej, fj = int(snaps.edge[j]), float(snaps.fraction[j])
    ci, cj = g.edge_coords(ei), g.edge_coords(ej)
    if not nodes:  # both on one edge
        coords = _cut(ci, fi, fj) if fi <= fj else _cut(ci, fj, fi)[::-1]
        return LineString(coords if coords.shape[0] >= 2 else np.vstack((coords, coords)))
    first = _cut(ci, fi, 1.0) if nodes[0] == g.head[ei] else _cut(ci, 0.0, fi)[::-1]
    last = _cut(cj, 0.0, fj) if nodes[-1] == g.tail[ej] else _cut(cj, fj, 1.0)[::-1]
    parts = [first, *(g.edge_coords(e) for e in edges), last]
    coords = np.vstack(parts)
    keep = np.ones(coords.shape[0], dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(coords, axis=0)) > 1e-12, axis=1)
    coords = coords[keep]
    if coords.shape[0] < 2:
        coords = np.vstack((coords, coords))
    return LineString(coords)


def polyline_length_m(coords: npt.ArrayLike) -> float:
    """Return the great-circle length in metres of a lon/lat polyline (osmnx's haversine)."""
    import osmnx as ox

    c = np.asarray(coords, dtype=np.float64)
    if c.shape[0] < 2:
        return 0.0
    return float(np.sum(ox.distance.great_circle(c[:-1, 1], c[:-1, 0], c[1:, 1], c[1:, 0])))


def path_length_m(line: LineString) -> float:
    """Return the great-circle length of a lon/lat LineString in metres."""
    return polyline_length_m(line.coords)
