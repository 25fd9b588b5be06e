"""The compact graph: arrays from an osmnx graph, cache round trip, bad caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodata.compact import TIME_SCALE, CompactGraph, compact_graph, load_compact
from geodata.errors import GraphCacheError
from geodata.synthetic import SyntheticProvince


def test_arrays_match_the_osmnx_graph(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """Every networkx edge is one compact edge, with its travel time rounded to 0.1 s."""
    G = province.graph
    g = province_graph
    assert g.n_nodes == len(G)
    assert g.n_edges == G.number_of_edges()
    assert np.all(np.diff(g.tail) >= 0), "edges are sorted by tail (CSR)"
    assert np.array_equal(np.diff(g.indptr), np.bincount(g.tail, minlength=g.n_nodes))
    total = sum(d["travel_time"] for _, _, d in G.edges(data=True))
    assert g.time_ds.sum() / TIME_SCALE == pytest.approx(total, rel=1e-3)


def test_twins_are_opposite_edges(province_graph: CompactGraph) -> None:
    """A twin runs between the same nodes the other way, and twinning is symmetric."""
    g = province_graph
    has = np.flatnonzero(g.twin >= 0)
    assert has.size > 0
    assert np.array_equal(g.twin[g.twin[has]], has)
    assert np.array_equal(g.tail[g.twin[has]], g.head[has])
    assert np.array_equal(g.head[g.twin[has]], g.tail[has])
    # one-way streets of Kon Tum town have no twin
    assert (g.twin < 0).sum() > 0


def test_cache_round_trip(province_graph: CompactGraph, tmp_path: Path) -> None:
    """Saving and loading gives back equal arrays and metadata."""
    path = province_graph.save(tmp_path / "province.npz")
    loaded = load_compact(path)
    for name in ("tail", "head", "time_ds", "length_dm", "twin", "geom_lon", "order", "way_ids"):
        assert np.array_equal(getattr(loaded, name), getattr(province_graph, name)), name
    assert loaded.classes == province_graph.classes
    assert loaded.summary()["nodes"] == province_graph.n_nodes


def test_bad_cache_files(tmp_path: Path) -> None:
    """Missing, foreign and corrupt cache files raise GraphCacheError."""
    with pytest.raises(GraphCacheError, match="not found"):
        load_compact(tmp_path / "none.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(GraphCacheError, match="not a courier-routing graph cache"):
        load_compact(foreign)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(GraphCacheError):
        load_compact(corrupt)


def test_summary_reports_classes_and_connectivity(province_graph: CompactGraph) -> None:
    """The summary counts road classes and the strongly connected share (< 1: islands exist)."""
    s = province_graph.summary()
    assert sum(row["edges"] for row in s["road_classes"].values()) == province_graph.n_edges
    assert 0.5 < s["strongly_connected_share"] < 1.0
    assert s["weak_components"] >= 2


def test_graph_without_travel_times_is_refused(province: SyntheticProvince) -> None:
    """compact_graph needs a profile applied first."""
    G = province.graph.copy()
    for _, _, d in G.edges(data=True):
        d.pop("travel_time")
        break
    with pytest.raises(ValueError, match="travel_time"):
        compact_graph(G, compute_order=False)
