"""Closures files: dates, way ids, geometries, and precise errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from shapely import LineString

from geodata.closures import Closure, closed_edges, read_closures, write_closures
from geodata.compact import CompactGraph
from geodata.errors import ClosureError
from geodata.synthetic import SyntheticProvince


def test_round_trip_and_date_ranges(
    tmp_path: Path, province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """A closure written to GeoJSON reads back and applies only within its dates."""
    c = Closure(
        "sat-lo-1",
        way_ids=tuple(province.landslide_way_ids),
        start_date=date(2026, 11, 20),
        end_date=date(2026, 12, 5),
        reason="Sạt lở đường lên xã Măng Ri",
    )
    back = read_closures(write_closures([c], tmp_path / "closures.geojson"))
    assert back == [c]
    assert closed_edges(province_graph, back, day=date(2026, 11, 28)).any()
    assert not closed_edges(province_graph, back, day=date(2026, 11, 19)).any()
    assert not closed_edges(province_graph, back, day=date(2026, 12, 6)).any()


def test_geometry_closure_reads(tmp_path: Path) -> None:
    """A closure may be only a line drawn on the map."""
    line = LineString([(108.0, 14.3), (108.01, 14.31)])
    path = write_closures([Closure("line", geometry=line)], tmp_path / "c.geojson")
    got = read_closures(path)[0]
    assert got.geometry is not None
    assert got.geometry.equals(line)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"way_ids": "12,abc"}, "way_ids"),
        ({"way_ids": [1], "start_date": "28/11/2026"}, "start_date"),
        ({"way_ids": [1], "start_date": "2026-12-01", "end_date": "2026-11-01"}, "before"),
        ({}, "way_ids or a geometry"),
    ],
)
def test_bad_entries_name_the_feature(
    tmp_path: Path, props: dict[str, object], message: str
) -> None:
    """A bad closure entry names the file, the feature and the reason."""
    path = tmp_path / "bad.geojson"
    feature = {"type": "Feature", "geometry": None, "properties": props}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ClosureError, match=message):
        read_closures(path)


def test_not_geojson(tmp_path: Path) -> None:
    """Files that are not GeoJSON feature collections are refused."""
    path = tmp_path / "x.geojson"
    path.write_text("[1, 2]")
    with pytest.raises(ClosureError, match="FeatureCollection"):
        read_closures(path)
    with pytest.raises(ClosureError, match="not found"):
        read_closures(tmp_path / "none.geojson")
