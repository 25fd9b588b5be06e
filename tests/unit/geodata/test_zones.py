"""Zones from GeoJSON/GeoPackage and the spatial join of points to zones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodata.errors import ZoneError
from geodata.synthetic import SyntheticProvince
from geodata.zones import assign_zones, read_zones


def _square(x0: float, y0: float, size: float) -> list[list[float]]:
    return [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]


@pytest.fixture
def two_zones(tmp_path: Path) -> Path:
    """Two adjacent squares sharing the meridian 108.0: Phường A (west) and Xã B (east)."""
    features = [
        {
            "type": "Feature",
            "properties": {"zone_id": "A", "name": "Phường A"},
            "geometry": {"type": "Polygon", "coordinates": [_square(107.9, 14.3, 0.1)]},
        },
        {
            "type": "Feature",
            "properties": {"zone_id": "B", "name": "Xã B"},
            "geometry": {"type": "Polygon", "coordinates": [_square(108.0, 14.3, 0.1)]},
        },
    ]
    path = tmp_path / "zones.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def test_inside_border_outside(two_zones: Path) -> None:
    """Inside points get their zone, a border point the first zone in file order, outside points None."""
    zones = read_zones(two_zones)
    assert zones["name"].tolist() == ["Phường A", "Xã B"]
    got = assign_zones(zones, [107.95, 108.05, 108.0, 109.0], [14.35, 14.35, 14.35, 14.35])
    assert got.zone_id == ("A", "B", "A", None)
    assert got.outside == (3,)


def test_geopackage(two_zones: Path, tmp_path: Path) -> None:
    """Zones also load from a GeoPackage."""
    gpkg = tmp_path / "zones.gpkg"
    read_zones(two_zones).to_file(gpkg, driver="GPKG")
    assert read_zones(gpkg)["zone_id"].tolist() == ["A", "B"]


def test_synthetic_zones_cover_the_post_offices(province: SyntheticProvince) -> None:
    """Each post office lies in its own zone."""
    lon = [d["lon"] for d in province.depots]
    lat = [d["lat"] for d in province.depots]
    got = assign_zones(province.zones, lon, lat)
    assert list(got.zone_id) == province.zones["zone_id"].tolist()


def test_bad_zone_files(tmp_path: Path) -> None:
    """Missing files, non-polygons, empty collections and duplicate ids are clear errors."""
    with pytest.raises(ZoneError, match="not found"):
        read_zones(tmp_path / "none.geojson")
    pts = tmp_path / "points.geojson"
    pts.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"zone_id": "P"},
                        "geometry": {"type": "Point", "coordinates": [108, 14]},
                    }
                ],
            }
        )
    )
    with pytest.raises(ZoneError, match="polygons"):
        read_zones(pts)
    dup = tmp_path / "dup.geojson"
    sq = {"type": "Polygon", "coordinates": [_square(108, 14, 0.1)]}
    dup.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"zone_id": "X"}, "geometry": sq}]
                * 2,
            }
        )
    )
    with pytest.raises(ZoneError, match="duplicate"):
        read_zones(dup)
    junk = tmp_path / "junk.geojson"
    junk.write_text("this is not json")
    with pytest.raises(ZoneError, match=r"junk\.geojson"):
        read_zones(junk)
