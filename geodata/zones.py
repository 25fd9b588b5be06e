"""Zones: polygons (communes, delivery areas) loaded from files, and which zone each point is in.

Administrative boundaries change (the 2025 reorganisation merged provinces and
abolished districts), so zones are always data, never code.
"""

from __future__ import annotations

import logging
import warnings
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

    A self-intersecting polygon (a common slip of drawing tools) is repaired when the repair
    is still a polygon.

    Raises
    ------
    ZoneError
        If the file is missing or unreadable, holds no feature, has a non-polygon, empty,
        irreparable or non-finite geometry, a missing zone id, or duplicate zone ids.
    """
    import geopandas as gpd
    import shapely

    src = Path(path)
    if not src.is_file():
        msg = f"zones file not found: {src}"
        raise ZoneError(msg)
    try:
        # GDAL's remarks on odd features come as RuntimeWarnings; the checks below judge them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            zones = gpd.read_file(src)
    except Exception as e:  # pyogrio and GDAL raise many types for a broken file
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
    geoms = zones.geometry.to_numpy()
    bad = [
        i + 1
        for i, g in enumerate(geoms)
        if g.is_empty or not np.isfinite(shapely.get_coordinates(g)).all()
    ]
    if bad:
        msg = f"{src.name}: features {bad[:10]} have an empty polygon or coordinates that are not finite numbers"
        raise ZoneError(msg)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        kinds_after = shapely.get_type_id(repaired)
        if not np.isin(kinds_after, (3, 6)).all():  # Polygon, MultiPolygon
            bad = [int(i) + 1 for i in np.flatnonzero(invalid)]
            msg = f"{src.name}: features {bad[:10]} are not valid polygons and cannot be repaired"
            raise ZoneError(msg)
        logger.warning("%s: repaired %d self-intersecting zone(s)", src.name, int(invalid.sum()))
        geoms = geoms.copy()
        geoms[invalid] = repaired
        zones = zones.set_geometry(gpd.GeoSeries(geoms, index=zones.index, crs=zones.crs))
    column = next((c for c in _ID_COLUMNS if c in zones.columns), None)
    if column and zones[column].isna().any():
        bad = [i + 1 for i, v in enumerate(zones[column].isna()) if v]
        msg = f"{src.name}: features {bad[:10]} have no {column}"
        raise ZoneError(msg)
    ids = zones[column].astype(str) if column else [f"Z{i + 1}" for i in range(len(zones))]
    zones = zones.assign(zone_id=ids)
    dup = zones["zone_id"][zones["zone_id"].duplicated()].tolist()
    if dup:
        msg = f"{src.name}: duplicate zone ids {dup[:10]}"
        raise ZoneError(msg)
    try:
        if zones.crs is None:
            zones = zones.set_crs("EPSG:4326")
        return zones.to_crs("EPSG:4326")
    except Exception as e:  # pyproj: a coordinate system it cannot convert from
        msg = f"{src.name}: cannot convert the zones to longitude/latitude ({e})"
        raise ZoneError(msg) from e


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
