"""Zones: polygons (communes, delivery areas) loaded from files, and which zone each point is in.

Administrative boundaries change (the 2025 reorganisation merged provinces and
abolished districts), so zones are always data, never code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .errors import ZoneError

if TYPE_CHECKING:
    import geopandas as gpd

logger = logging.getLogger(__name__)

_ID_COLUMNS = ("zone_id", "id", "code", "name")


@dataclass(frozen=True, slots=True)
class ZoneAssignment:
    """Zone of each point (None outside every zone) and the indices of points outside."""

    zone_id: tuple[str | None, ...]
    outside: tuple[int, ...]


def read_zones(path: Path | str) -> gpd.GeoDataFrame:
    """Read zone polygons from GeoJSON or GeoPackage into a GeoDataFrame in EPSG:4326.

    The result has a string column ``zone_id`` (taken from ``zone_id``, ``id``,
    ``code`` or ``name``, in that order of preference) and keeps other columns
    (``name``, ``depot_id``...).

    Raises
    ------
    ZoneError
        If the file is missing or unreadable, holds no feature, has a
        non-polygon geometry, or has duplicate zone ids.
    """
    import geopandas as gpd
    import pyogrio

    src = Path(path)
    if not src.is_file():
        msg = f"zones file not found: {src}"
        raise ZoneError(msg)
    try:
        zones = gpd.read_file(src)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as e:
        msg = f"{src.name}: not a readable GeoJSON/GeoPackage file ({e})"
        raise ZoneError(msg) from e
    if zones.empty:
        msg = f"{src.name}: no zone in the file"
        raise ZoneError(msg)
    kinds = set(zones.geom_type.dropna())
    if zones.geometry.isna().any() or not kinds <= {"Polygon", "MultiPolygon"}:
        bad = [i + 1 for i, k in enumerate(zones.geom_type) if k not in {"Polygon", "MultiPolygon"}]
        msg = f"{src.name}: zones must be polygons; features {bad[:10]} are not"
        raise ZoneError(msg)
    column = next((c for c in _ID_COLUMNS if c in zones.columns), None)
    ids = zones[column].astype(str) if column else [f"Z{i + 1}" for i in range(len(zones))]
    zones = zones.assign(zone_id=ids)
    dup = zones["zone_id"][zones["zone_id"].duplicated()].tolist()
    if dup:
        msg = f"{src.name}: duplicate zone ids {dup[:10]}"
        raise ZoneError(msg)
    if zones.crs is None:
        zones = zones.set_crs("EPSG:4326")
    return zones.to_crs("EPSG:4326")


def assign_zones(zones: gpd.GeoDataFrame, lon: npt.ArrayLike, lat: npt.ArrayLike) -> ZoneAssignment:
    """Find the zone of each point with a spatial join.

    A point on the border of two zones belongs to the first of them in file
    order; a point outside every zone gets None and is listed in ``outside``.
    """
    import geopandas as gpd

    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    points = gpd.GeoDataFrame(
        {"point": np.arange(lon_a.shape[0])},
        geometry=gpd.points_from_xy(lon_a, lat_a),
        crs="EPSG:4326",
    )
    ranked = zones[["zone_id", "geometry"]].assign(rank=np.arange(len(zones)))
    joined = gpd.sjoin(points, ranked, how="left", predicate="intersects")
    joined = joined.sort_values(["point", "rank"], na_position="last").drop_duplicates("point")
    found = joined.set_index("point")["zone_id"].reindex(range(lon_a.shape[0]))
    zone_ids = tuple(None if not isinstance(z, str) else z for z in found.tolist())
    outside = tuple(i for i, z in enumerate(zone_ids) if z is None)
    if outside:
        logger.warning("%d of %d points lie outside every zone", len(outside), len(zone_ids))
    return ZoneAssignment(zone_ids, outside)
