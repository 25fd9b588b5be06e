"""Snap points (jobs' addresses, post offices) onto the nearest road of a compact graph.

A point is projected onto the nearest edge *segment* (not the nearest node) in a
metric UTM projection, so a house in the middle of a long village lane starts its
trip from the middle of that lane. Points farther than ``max_distance_m`` from any
road are flagged in :attr:`Snapped.far` and reported, never silently moved onto a
distant road.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

from .compact import CompactGraph
from .errors import SnapError

logger = logging.getLogger(__name__)

#: Points farther than this from every road are flagged (metres).
DEFAULT_MAX_SNAP_M: Final = 500.0
_AT_NODE: Final = 1e-9


@dataclass(frozen=True, slots=True, eq=False)
class Snapped:
    """Where each point lies on the road network.

    Attributes
    ----------
    edge
        Canonical edge index the point lies on (one of an edge and its twin).
    fraction
        Position along ``edge`` from its tail (0) to its head (1), by length.
    distance_m
        Straight-line distance from the point to the road.
    lon, lat
        The snapped position on the road.
    far
        True where ``distance_m`` exceeds the threshold: such points are not
        routed, only reported.
    """

    edge: npt.NDArray[np.int64]
    fraction: npt.NDArray[np.float64]
    distance_m: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    far: npt.NDArray[np.bool_]
    max_distance_m: float

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    def far_indices(self) -> list[int]:
        """Return the indices of the points too far from any road."""
        return np.flatnonzero(self.far).tolist()

    def subset(self, idx: npt.ArrayLike) -> Snapped:
        """Return the snaps of some points, in the given order."""
        i = np.asarray(idx, dtype=np.int64)
        return Snapped(
            self.edge[i],
            self.fraction[i],
            self.distance_m[i],
            self.lon[i],
            self.lat[i],
            self.far[i],
            self.max_distance_m,
        )


class Snapper:
    """A spatial index over a compact graph's roads; build once, snap many times."""

    def __init__(self, graph: CompactGraph) -> None:
        if graph.n_edges == 0:
            msg = "cannot snap onto an empty road graph"
            raise SnapError(msg)
        self.graph = graph
        west, south, east, north = graph.bbox()
        lon0, lat0 = (west + east) / 2, (south + north) / 2
        zone = int((lon0 + 180) // 6) + 1
        epsg = (32600 if lat0 >= 0 else 32700) + zone
        self.crs = CRS.from_epsg(epsg)
        self._to_utm = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self._to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    @cached_property
    def _index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_], shapely.STRtree]:
        g = self.graph
        canonical = np.flatnonzero((g.twin < 0) | (np.arange(g.n_edges) < g.twin))
        starts, ends = g.geom_ptr[canonical], g.geom_ptr[canonical + 1]
        counts = ends - starts
        pts = np.concatenate(
            [np.arange(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        )
        x, y = self._to_utm.transform(g.geom_lon[pts], g.geom_lat[pts])
        line_of_point = np.repeat(np.arange(canonical.shape[0]), counts)
        lines = shapely.linestrings(np.column_stack((x, y)), indices=line_of_point)
        return canonical, lines, shapely.STRtree(lines)

    def snap(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        *,
        max_distance_m: float = DEFAULT_MAX_SNAP_M,
        warn_far: bool = True,
    ) -> Snapped:
        """Snap points to their nearest road segment.

        Parameters
        ----------
        lon, lat
            Point coordinates in degrees (same length).
        max_distance_m
            Points farther than this from every road are flagged in ``far``.
        warn_far
            Log a warning naming the far points (addresses to fix); GPS fixes off the mapped
            roads are routine and pass False.

        Returns
        -------
        snapped

        Raises
        ------
        SnapError
            If a coordinate is missing, not finite, or outside the valid range.
        """
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if lon_a.shape != lat_a.shape:
            msg = f"lon and lat differ in length ({lon_a.shape[0]} vs {lat_a.shape[0]})"
            raise SnapError(msg)
        bad = ~(
            np.isfinite(lon_a) & np.isfinite(lat_a) & (np.abs(lon_a) <= 180) & (np.abs(lat_a) <= 90)
        )
        if bad.any():
            idx = np.flatnonzero(bad)[:10].tolist()
            msg = f"invalid coordinates at point indices {idx} (need finite lon in [-180, 180], lat in [-90, 90])"
            raise SnapError(msg)
        canonical, lines, tree = self._index
        x, y = self._to_utm.transform(lon_a, lat_a)
        points = shapely.points(x, y)
        if points.shape[0] == 0:
            empty_f = np.empty(0)
            return Snapped(
                np.empty(0, np.int64),
                empty_f,
                empty_f,
                empty_f,
                empty_f,
                np.empty(0, bool),
                max_distance_m,
            )
        pairs, dist = tree.query_nearest(points, return_distance=True, all_matches=False)
        order = np.argsort(pairs[0], kind="stable")
        which = pairs[1][order]
        dist = dist[order]
        chosen = lines[which]
        along = shapely.line_locate_point(chosen, points, normalized=True)
        total = shapely.length(chosen)
        fraction = np.where(total > 0, along, 0.0)
        fraction = np.where(
            fraction < _AT_NODE, 0.0, np.where(fraction > 1 - _AT_NODE, 1.0, fraction)
        )
        on_road = shapely.line_interpolate_point(chosen, fraction, normalized=True)
        sx, sy = self._to_lonlat.transform(shapely.get_x(on_road), shapely.get_y(on_road))
        far = dist > max_distance_m
        if warn_far and far.any():
            logger.warning(
                "%d of %d points are more than %.0f m from any road: %s",
                int(far.sum()),
                far.shape[0],
                max_distance_m,
                np.flatnonzero(far)[:10].tolist(),
            )
        return Snapped(
            edge=canonical[which].astype(np.int64),
            fraction=fraction.astype(np.float64),
            distance_m=dist.astype(np.float64),
            lon=np.asarray(sx, dtype=np.float64),
            lat=np.asarray(sy, dtype=np.float64),
            far=far,
            max_distance_m=max_distance_m,
        )

    def snap_one(self, lon: float, lat: float) -> tuple[int, float, float]:
        """Snap one point: its ``(edge, fraction, distance_m)``, as :meth:`snap` finds them.

        For callers that snap one point at a time and need no snapped coordinates (the live
        ETAs of GPS fixes): no arrays, no snapped position, about half the time of
        :meth:`snap`. The caller compares ``distance_m`` with its own threshold.

        Raises
        ------
        SnapError
            If a coordinate is not finite or outside the valid range.
        """
        if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            msg = f"invalid coordinates ({lon}, {lat}) (need finite lon in [-180, 180], lat in [-90, 90])"
            raise SnapError(msg)
        canonical, lines, tree = self._index
        x, y = self._to_utm.transform(lon, lat)
        point = shapely.Point(x, y)
        which, dist = tree.query_nearest(point, return_distance=True, all_matches=False)
        chosen = lines[which[0]]
        fraction = float(shapely.line_locate_point(chosen, point, normalized=True))
        if not chosen.length > 0:
            fraction = 0.0
        if fraction < _AT_NODE:
            fraction = 0.0
        elif fraction > 1 - _AT_NODE:
            fraction = 1.0
        return int(canonical[which[0]]), fraction, float(dist[0])


def snap_points(
    graph: CompactGraph,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    max_distance_m: float = DEFAULT_MAX_SNAP_M,
) -> Snapped:
    """Snap points to a graph's roads (builds a :class:`Snapper`; reuse one to snap often)."""
    return Snapper(graph).snap(lon, lat, max_distance_m=max_distance_m)


def edges_intersecting(
    snapper: Snapper, geometry: shapely.Geometry, *, buffer_m: float = 0.0
) -> npt.NDArray[np.int64]:
    """Return every edge (both directions of two-way roads) whose line meets a lon/lat geometry.

    Used for closures drawn on a map: a line across a road with ``buffer_m`` of
    tolerance, or a polygon over the closed area.
    """
    canonical, _lines, tree = snapper._index
    projected = shapely.transform(
        geometry, lambda xy: np.column_stack(snapper._to_utm.transform(xy[:, 0], xy[:, 1]))
    )
    if buffer_m > 0:
        projected = projected.buffer(buffer_m)
    hits = tree.query(projected, predicate="intersects")
    edges = canonical[hits]
    twins = snapper.graph.twin[edges]
    return np.unique(np.concatenate((edges, twins[twins >= 0]))).astype(np.int64)
