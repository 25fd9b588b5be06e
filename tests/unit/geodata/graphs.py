"""Hand-made osmnx-form graphs for exact checks of snapping and matrices."""

from __future__ import annotations

import networkx as nx
import numpy as np

from geodata.compact import CompactGraph, compact_graph

LAT0 = 14.35
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(LAT0)))


def at(x_m: float, y_m: float) -> tuple[float, float]:
    """Return lon/lat of a point x metres east and y metres north of (108.0, 14.35)."""
    return 108.0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT


def graph(
    positions: dict[int, tuple[float, float]],
    edges: list[tuple[int, int, float, bool]],
) -> CompactGraph:
    """Build a compact graph: positions in metres, edges (u, v, travel_time_s, two_way).

    Edge length is the straight distance; parallel edges are allowed.
    """
    G = nx.MultiDiGraph(crs="epsg:4326", profile="motorbike")
    for n, (x, y) in positions.items():
        lon, lat = at(x, y)
        G.add_node(n, x=lon, y=lat)
    for k, (u, v, tt, two_way) in enumerate(edges):
        (x0, y0), (x1, y1) = positions[u], positions[v]
        length = float(np.hypot(x1 - x0, y1 - y0))
        attrs = {"osmid": 500 + k, "highway": "residential", "length": length, "travel_time": tt}
        G.add_edge(u, v, oneway=not two_way, reversed=False, **attrs)
        if two_way:
            G.add_edge(v, u, oneway=False, reversed=True, **attrs)
    return compact_graph(G)
