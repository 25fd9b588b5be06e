"""Reading OSM files through pyosmium and osmnx, with the motorbike and car profiles."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import osmnx as ox
import pytest

from geodata import network
from geodata.compact import compact_graph
from geodata.errors import NetworkUnavailableError, OSMFileError, UnknownProfileError

from .osm_fixtures import write_osm


def _ways(G: nx.MultiDiGraph) -> set[int]:
    ids: set[int] = set()
    for _, _, d in G.edges(data=True):
        osmid = d["osmid"]
        ids.update(osmid if isinstance(osmid, list) else [osmid])
    return ids


def _has_path(G: nx.MultiDiGraph, a: int, b: int) -> bool:
    return a in G and b in G and nx.has_path(G, a, b)


@pytest.fixture(scope="module")
def corner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_osm(tmp_path_factory.mktemp("osm"), "osm")


def test_motorbike_uses_alleys_paths_and_two_way_for_motorcycles(corner: Path) -> None:
    """The motorbike graph keeps motorcar=no alleys, motorcycle=yes paths and rides oneway:motorcycle=no both ways."""
    G = network.graph_from_file(corner, profile="motorbike")
    ways = _ways(G)
    assert {101, 102, 103, 104, 107} <= ways
    assert 105 not in ways, "motorbikes may not use expressways"
    assert 106 not in ways, "motorcycle=no must be obeyed"
    assert _has_path(G, 3, 1), "Lê Lợi is two-way for motorbikes"
    assert _has_path(G, 1, 3)


def test_car_graph_is_the_drive_network(corner: Path) -> None:
    """The car graph drops the alley, the path and the track, and obeys the one-way street."""
    G = network.graph_from_file(corner, profile="car")
    ways = _ways(G)
    assert not ({102, 103, 107} & ways)
    assert {101, 104, 105} <= ways
    # along Lê Lợi a car may go 1 -> 3 only; back from 3 it has no way but the expressway dead end
    assert _has_path(G, 1, 3)
    assert not _has_path(G, 3, 1)


def test_clipped_way_is_split_and_reported(corner: Path) -> None:
    """A way referencing a node missing from the extract loads, split at the gap, and is counted."""
    G = network.graph_from_file(corner, profile="motorbike")
    report = G.graph["import_report"]
    assert report["nodes_missing"] == 1
    assert report["ways_split"] == 1
    assert report["way_pieces_dropped"] == 2  # [8] and [9] alone are too short to be roads


@pytest.mark.parametrize("kind", ["bz2", "pbf"])
def test_compressed_and_pbf_files_give_the_same_graph(
    corner: Path, tmp_path: Path, kind: str
) -> None:
    """.osm.bz2 and .osm.pbf files load into the same graph as the plain XML."""
    plain = network.graph_from_file(corner)
    other = network.graph_from_file(write_osm(tmp_path, kind))
    assert sorted(plain.nodes) == sorted(other.nodes)
    assert sorted((u, v) for u, v, _ in plain.edges) == sorted((u, v) for u, v, _ in other.edges)


def test_speeds_follow_the_profile(corner: Path) -> None:
    """Unpaved tracks are slower than paved streets; travel_time = length / speed."""
    G = network.graph_from_file(corner, profile="motorbike")
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))
    track = [d["speed_kph"] for _, _, d in G.edges(data=True) if d["highway"] == "track"]
    tertiary = [d["speed_kph"] for _, _, d in G.edges(data=True) if d["highway"] == "tertiary"]
    assert max(track) < min(tertiary)


def test_file_graph_compacts(corner: Path) -> None:
    """A graph read from a file goes through osmnx into the compact arrays."""
    graph = compact_graph(network.graph_from_file(corner))
    assert graph.n_nodes > 0
    assert graph.n_edges > 0
    assert graph.profile == "motorbike"


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    """An empty file is rejected, naming it."""
    path = tmp_path / "empty.osm.pbf"
    path.write_bytes(b"")
    with pytest.raises(OSMFileError, match="empty"):
        network.graph_from_file(path)


def test_corrupt_pbf_is_a_clear_error(tmp_path: Path) -> None:
    """A corrupt PBF is rejected with a message naming the file, not a bare traceback."""
    path = tmp_path / "broken.osm.pbf"
    path.write_bytes(b"\x00\x00\x00\x0dnot really a protobuf block at all" * 10)
    with pytest.raises(OSMFileError, match=r"broken\.osm\.pbf"):
        network.graph_from_file(path)


def test_file_without_roads_is_a_clear_error(tmp_path: Path) -> None:
    """A valid OSM file with no highway is rejected."""
    path = tmp_path / "noroads.osm"
    path.write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="14.3" lon="108.0"/></osm>'
    )
    with pytest.raises(OSMFileError, match="no road"):
        network.graph_from_file(path)


def test_missing_file_and_unknown_profile(tmp_path: Path, corner: Path) -> None:
    """A missing file and an unknown profile each give their own error."""
    with pytest.raises(OSMFileError, match="not found"):
        network.graph_from_file(tmp_path / "nope.osm")
    with pytest.raises(UnknownProfileError, match="bicycle"):
        network.graph_from_file(corner, profile="bicycle")


def test_offline_download_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    """With OpenStreetMap servers unreachable, downloads raise NetworkUnavailableError (no hang)."""
    saved = (ox.settings.overpass_url, ox.settings.nominatim_url, ox.settings.overpass_rate_limit)
    try:
        network.configure_osmnx(tmp_path / "cache", timeout_s=2)
        # port 9 on loopback: connection refused at once, nothing leaves the machine
        ox.settings.overpass_url = "http://127.0.0.1:9/api"
        ox.settings.nominatim_url = "http://127.0.0.1:9/"
        ox.settings.overpass_rate_limit = False
        with pytest.raises(NetworkUnavailableError, match="download"):
            network.graph_from_bbox((107.99, 14.34, 108.01, 14.36))
        with pytest.raises(NetworkUnavailableError):
            network.graph_from_place("Kon Tum, Vietnam")
    finally:
        ox.settings.overpass_url, ox.settings.nominatim_url, ox.settings.overpass_rate_limit = saved


def test_bad_bbox_is_rejected() -> None:
    """A bbox with west >= east is refused before any download."""
    with pytest.raises(ValueError, match="west < east"):
        network.graph_from_bbox((108.1, 14.3, 108.0, 14.4))
