"""Road lines for maps: the road a courier rides between two stops, and the roads in a view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from shapely import LineString

from .matrix import Router
from .snap import Snapped

if TYPE_CHECKING:
    from .compact import CompactGraph


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


def leg_coords(router: Router, snaps: Snapped, i: int, j: int) -> npt.NDArray[np.float64] | None:
    """Return the fastest road path from point i to point j as a (k, 2) lon/lat array (k >= 2).

    The same line as :func:`leg_geometry` without building a shapely object: drawing a
    province day's thousands of legs is mostly array copies this way. None when there is no
    path (closed or disconnected roads).
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
        return coords if coords.shape[0] >= 2 else np.vstack((coords, coords))
    first = _cut(ci, fi, 1.0) if nodes[0] == g.head[ei] else _cut(ci, 0.0, fi)[::-1]
    last = _cut(cj, 0.0, fj) if nodes[-1] == g.tail[ej] else _cut(cj, fj, 1.0)[::-1]
    # the whole edges' points in one gather: [ptr[e], ptr[e + 1]) for each edge in order
    e = np.asarray(edges, dtype=np.int64)
    starts, ends = g.geom_ptr[e], g.geom_ptr[e + 1]
    counts = ends - starts
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    take = offsets + np.arange(int(counts.sum()))
    middle = np.column_stack((g.geom_lon[take], g.geom_lat[take]))
    coords = np.vstack((first, middle, last))
    keep = np.ones(coords.shape[0], dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(coords, axis=0)) > 1e-12, axis=1)
    coords = coords[keep]
    if coords.shape[0] < 2:
        coords = np.vstack((coords, coords))
    return coords


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
    coords = leg_coords(router, snaps, i, j)
    return None if coords is None else LineString(coords)


#: Earth's mean radius in metres, as osmnx's ``distance.EARTH_RADIUS_M``.
EARTH_RADIUS_M = 6_371_009


def polyline_length_m(coords: npt.ArrayLike) -> float:
    """Return the great-circle length in metres of a lon/lat polyline (osmnx's haversine)."""
    c = np.radians(np.asarray(coords, dtype=np.float64))
    if c.shape[0] < 2:
        return 0.0
    lon, lat = c[:, 0], c[:, 1]
    h = (
        np.sin(np.diff(lat) / 2) ** 2
        + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2
    )
    arc = 2 * np.arcsin(np.sqrt(np.minimum(1.0, h)))
    return float(np.sum(arc) * EARTH_RADIUS_M)


def path_length_m(line: LineString) -> float:
    """Return the great-circle length of a lon/lat LineString in metres."""
    return polyline_length_m(line.coords)


#: Road classes from the most to the least important, for thinning a large map view.
ROAD_CLASS_RANK: dict[str, int] = {
    name: rank
    for rank, names in enumerate(
        (
            ("motorway", "trunk", "motorway_link", "trunk_link"),
            ("primary", "primary_link"),
            ("secondary", "secondary_link"),
            ("tertiary", "tertiary_link"),
            ("unclassified", "residential", "living_street"),
            ("track", "service", "road"),
        )
    )
    for name in names
}
_LOWEST_RANK = max(ROAD_CLASS_RANK.values()) + 1


def roads_in_bbox(
    graph: CompactGraph,
    bbox: tuple[float, float, float, float],
    *,
    max_edges: int = 20_000,
) -> dict[str, Any]:
    """Return the roads crossing a box as a GeoJSON FeatureCollection, for maps without tiles.

    Each road segment appears once (a two-way road's twin edge is skipped). When more than
    ``max_edges`` segments cross the box, the least important road classes are left out first, so
    a province-wide view still shows the national roads and a town view shows every alley.

    Parameters
    ----------
    graph
        The region's compact graph.
    bbox
        (west, south, east, north) in degrees.
    max_edges
        Most segments returned.

    Returns
    -------
    collection
        Features with a LineString geometry and ``highway`` and ``oneway`` properties; the
        collection's ``truncated`` member says whether classes were left out.
    """
    west, south, east, north = bbox
    ptr = graph.geom_ptr
    starts = ptr[:-1]
    counts = np.diff(ptr)
    lon_min = np.minimum.reduceat(graph.geom_lon, starts) if len(starts) else np.empty(0)
    lon_max = np.maximum.reduceat(graph.geom_lon, starts) if len(starts) else np.empty(0)
    lat_min = np.minimum.reduceat(graph.geom_lat, starts) if len(starts) else np.empty(0)
    lat_max = np.maximum.reduceat(graph.geom_lat, starts) if len(starts) else np.empty(0)
    edge = np.arange(graph.n_edges)
    keep = (
        (counts > 0)
        & (lon_max >= west)
        & (lon_min <= east)
        & (lat_max >= south)
        & (lat_min <= north)
        & ((graph.twin < 0) | (edge < graph.twin))
    )
    chosen = edge[keep]
    rank_of_class = np.array(
        [ROAD_CLASS_RANK.get(c, _LOWEST_RANK) for c in graph.classes] or [0], dtype=np.int16
    )
    ranks = rank_of_class[graph.road_class[chosen]]
    truncated = len(chosen) > max_edges
    if truncated:
        chosen = chosen[np.argsort(ranks, kind="stable")[:max_edges]]
    features = []
    for e in chosen.tolist():
        a, b = int(ptr[e]), int(ptr[e + 1])
        coords = np.column_stack((graph.geom_lon[a:b], graph.geom_lat[a:b])).round(6)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords.tolist()},
                "properties": {
                    "highway": graph.classes[int(graph.road_class[e])],
                    "oneway": bool(graph.twin[e] < 0),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features, "truncated": truncated}
