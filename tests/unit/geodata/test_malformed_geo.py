"""Malformed zones and closures files are refused with ZoneError / ClosureError naming the feature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodata.closures import read_closures
from geodata.errors import ClosureError, ZoneError
from geodata.zones import read_zones

SQUARE = [[[108.0, 14.0], [108.1, 14.0], [108.1, 14.1], [108.0, 14.1], [108.0, 14.0]]]


def _fc(path: Path, *features: object) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


@pytest.mark.parametrize(
    ("feature", "words"),
    [
        (5, "feature 1: a feature must be a JSON object"),
        ({"geometry": None, "properties": [1]}, "properties must be a JSON object"),
        ({"geometry": {"type": "Polygon", "coordinates": 5}, "properties": {}}, "bad geometry"),
        (
            {"geometry": {"type": "LineString", "coordinates": [[1, 2], [float("nan"), 2]]}},
            "not finite",
        ),
        ({"geometry": {"type": "Polygon", "coordinates": []}, "properties": {}}, "empty"),
        ({"geometry": None, "properties": {"way_ids": [10**30]}}, "positive integers"),
        ({"geometry": None, "properties": {"way_ids": [-4]}}, "positive integers"),
        (
            {"geometry": {"type": "LineString", "coordinates": [[10**400, 1], [2, 2]]}},
            "int too large",
        ),
        ({"geometry": {"type": "Bogus", "coordinates": [1, 2]}}, "Unknown geometry type"),
    ],
)
def test_bad_closures_name_the_feature(tmp_path: Path, feature: object, words: str) -> None:
    """Wrong JSON types, non-finite or empty geometries and way ids beyond int64 are ClosureErrors."""
    with pytest.raises(ClosureError, match=words):
        read_closures(_fc(tmp_path / "c.geojson", feature))


def test_unreadable_closure_files(tmp_path: Path) -> None:
    """Nested too deeply, or an integer of thousands of digits: ClosureError, not Recursion/ValueError."""
    path = tmp_path / "c.geojson"
    path.write_bytes(b"[" * 100_000)
    with pytest.raises(ClosureError, match="nested too deeply"):
        read_closures(path)
    path.write_bytes(b'{"features": ' + b"9" * 5000 + b"}")
    with pytest.raises(ClosureError, match="not valid GeoJSON"):
        read_closures(path)


def test_zones_refuse_non_finite_and_empty_polygons_and_repair_a_bow_tie(tmp_path: Path) -> None:
    """NaN corners and empty polygons are named; a self-intersecting polygon is repaired into a polygon."""
    nan_square = [[[108.0, 14.0], [float("nan"), 14.0], [108.1, 14.1], [108.0, 14.0]]]
    path = _fc(
        tmp_path / "z.geojson",
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": SQUARE},
            "properties": {"zone_id": "a"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": nan_square},
            "properties": {"zone_id": "b"},
        },
    )
    with pytest.raises(ZoneError, match=r"features \[2\]"):
        read_zones(path)
    bow_tie = [[[108.0, 14.0], [108.1, 14.1], [108.1, 14.0], [108.0, 14.1], [108.0, 14.0]]]
    path = _fc(
        tmp_path / "z.geojson",
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": bow_tie},
            "properties": {"zone_id": "a"},
        },
    )
    zones = read_zones(path)
    assert zones.geometry.is_valid.all()
    assert set(zones.geom_type) <= {"Polygon", "MultiPolygon"}
