"""Road closures (landslides, floods, works) that remove roads from a day's matrices.

A closure names OSM way ids, or carries a geometry drawn on the map (a line across
the road, or a polygon over the closed area), and an optional date range. The
closed edges are taken out of the graph for the days the closure is active, so a
commune cut off by a landslide shows up as unreachable rather than as a wrong,
longer travel time.

File format (GeoJSON FeatureCollection, RFC 7946), one feature per closure::

    {"type": "Feature",
     "geometry": {"type": "LineString", "coordinates": [[108.01, 14.91], [108.02, 14.91]]},
     "properties": {"closure_id": "sat-lo-1", "way_ids": [1001251],
                    "start_date": "2026-11-20", "end_date": "2026-12-05",
                    "reason": "Sạt lở đường lên xã Măng Ri"}}

``geometry`` may be null when ``way_ids`` are given; dates are optional (open-ended).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape

from .compact import CompactGraph
from .errors import ClosureError
from .snap import Snapper, edges_intersecting

logger = logging.getLogger(__name__)

#: Tolerance around a closure line drawn on the map (metres).
LINE_TOLERANCE_M = 15.0


@dataclass(frozen=True, slots=True)
class Closure:
    """One closed stretch of road."""

    closure_id: str
    way_ids: tuple[int, ...] = ()
    geometry: shapely.Geometry | None = None
    start_date: date | None = None
    end_date: date | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.way_ids and self.geometry is None:
            msg = f"closure {self.closure_id!r}: give way_ids or a geometry"
            raise ClosureError(msg)
        if self.start_date and self.end_date and self.end_date < self.start_date:
            msg = f"closure {self.closure_id!r}: end_date {self.end_date} is before start_date {self.start_date}"
            raise ClosureError(msg)

    def active_on(self, day: date | None) -> bool:
        """Return True when the closure applies on ``day`` (always, when day is None)."""
        if day is None:
            return True
        if self.start_date and day < self.start_date:
            return False
        return not (self.end_date and day > self.end_date)


def _date(value: Any, field: str, where: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as e:
        msg = f"{where}: {field} {value!r} is not a date (YYYY-MM-DD)"
        raise ClosureError(msg) from e


def _way_ids(value: Any, where: str) -> tuple[int, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    msg = f"{where}: way_ids {str(value)[:100]!r} must be OSM way ids (positive integers)"
    try:
        ids = tuple(int(str(v).strip()) for v in items if str(v).strip())
    except ValueError as e:
        raise ClosureError(msg) from e
    if not all(0 < i < 2**63 for i in ids):
        raise ClosureError(msg)
    return ids


def _geometry(geom: Any, where: str) -> shapely.Geometry | None:
    """Return a feature's geometry: finite, not empty; a self-intersecting polygon repaired."""
    if geom is None:
        return None
    try:
        # NaN coordinates come as RuntimeWarnings from shapely; the check below refuses them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            geometry = shape(geom)
            finite = bool(np.isfinite(shapely.get_coordinates(geometry)).all())
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        ShapelyError,
    ) as e:
        msg = f"{where}: bad geometry ({e})"
        raise ClosureError(msg) from e
    if geometry.is_empty or not finite:
        msg = f"{where}: bad geometry (empty, or coordinates that are not finite numbers)"
        raise ClosureError(msg)
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    return geometry


def read_closures(path: Path | str) -> list[Closure]:
    """Read closures from a GeoJSON file (see the module docstring for the format).

    Raises
    ------
    ClosureError
        Naming the feature number and the reason, for any bad entry (a geometry that is
        empty or not finite, way ids that are not positive 64-bit integers, a date that is
        not YYYY-MM-DD); a self-intersecting polygon is repaired.
    """
    src = Path(path)
    try:
        data = json.loads(src.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as e:
        msg = f"closures file not found: {src}"
        raise ClosureError(msg) from e
    except RecursionError as e:
        msg = f"{src.name}: not valid GeoJSON (nested too deeply)"
        raise ClosureError(msg) from e
    except (ValueError, OSError) as e:  # bad JSON or UTF-8, an integer of thousands of digits
        msg = f"{src.name}: not valid GeoJSON ({e})"
        raise ClosureError(msg) from e
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        msg = f"{src.name}: expected a GeoJSON FeatureCollection"
        raise ClosureError(msg)
    closures = []
    for k, feature in enumerate(features, start=1):
        where = f"{src.name} feature {k}"
        if not isinstance(feature, dict):
            msg = f"{where}: a feature must be a JSON object"
            raise ClosureError(msg)
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            msg = f"{where}: properties must be a JSON object"
            raise ClosureError(msg)
        geometry = _geometry(feature.get("geometry") or None, where)
        closures.append(
            Closure(
                closure_id=str(props.get("closure_id") or f"closure-{k}"),
                way_ids=_way_ids(props.get("way_ids"), where),
                geometry=geometry,
                start_date=_date(props.get("start_date"), "start_date", where),
                end_date=_date(props.get("end_date"), "end_date", where),
                reason=str(props.get("reason") or ""),
            )
        )
    return closures


def write_closures(closures: list[Closure], path: Path | str) -> Path:
    """Write closures to a GeoJSON file that :func:`read_closures` reads back."""
    features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(c.geometry) if c.geometry is not None else None,
            "properties": {
                "closure_id": c.closure_id,
                "way_ids": list(c.way_ids),
                "start_date": c.start_date.isoformat() if c.start_date else None,
                "end_date": c.end_date.isoformat() if c.end_date else None,
                "reason": c.reason,
            },
        }
        for c in closures
    ]
    out = Path(path)
    out.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1
        )
    )
    return out


def closed_edges(
    graph: CompactGraph,
    closures: list[Closure],
    *,
    day: date | None = None,
    snapper: Snapper | None = None,
) -> npt.NDArray[np.bool_]:
    """Return the mask of edges closed on ``day`` by any active closure.

    Parameters
    ----------
    graph
        The compact graph.
    closures
        All known closures; those not active on ``day`` are ignored.
    day
        The plan's day, or None to apply every closure.
    snapper
        A snapper over ``graph`` to reuse (for geometry closures).

    Returns
    -------
    mask
    """
    mask = np.zeros(graph.n_edges, dtype=bool)
    for c in closures:
        if not c.active_on(day):
            continue
        hit = np.zeros(graph.n_edges, dtype=bool)
        if c.way_ids:
            hit |= graph.edges_of_ways(list(c.way_ids))
        if c.geometry is not None:
            snapper = snapper or Snapper(graph)
            tolerance = (
                LINE_TOLERANCE_M
                if c.geometry.geom_type in {"LineString", "MultiLineString", "Point"}
                else 0.0
            )
            hit[edges_intersecting(snapper, c.geometry, buffer_m=tolerance)] = True
        if not hit.any():
            logger.warning("closure %s matches no road of the graph", c.closure_id)
        mask |= hit
    if mask.any():
        logger.info("%d directed edges closed on %s", int(mask.sum()), day)
    return mask
