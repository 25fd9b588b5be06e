"""A seeded synthetic province shaped like Kon Tum, for demos and tests that must run offline.

The graph has the form osmnx produces (``nx.MultiDiGraph`` in EPSG:4326, nodes with
``x``/``y``, edges with ``osmid``, ``highway``, ``name``, ``oneway``, ``reversed``,
``length`` in metres, ``geometry`` for winding roads, ``travel_time`` in seconds), so
everything downstream treats it exactly like a real OpenStreetMap graph.

Shape: Kon Tum town (a street grid with some one-way streets) at its real position,
the nine district towns at theirs, national road 14 north-south through Đắk Hà,
Đắk Tô, Ngọc Hồi and Đắk Glei, road 24 climbing east to Kon Plông, road 40 west to
the Lao border, slower winding roads to Sa Thầy, Ia H'Drai and Tu Mơ Rông, villages
on unpaved tracks off these roads, a few villages with no road link to the rest
(disconnected pieces), and one mountain commune reached by a single road that a
landslide can cut (:attr:`SyntheticProvince.landslide_way_ids`). Each town has a
post office (depot); zones are the Voronoi cells of the post offices clipped to the
province outline.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import networkx as nx
import numpy as np
from shapely import LineString, MultiPoint, Point, Polygon, voronoi_polygons

from .geometry import polyline_length_m
from .network import apply_profile
from .profiles import Profile, get_profile

if TYPE_CHECKING:
    import geopandas as gpd

logger = logging.getLogger(__name__)

#: Road nodes of the one default province: ``courier demo``, ``courier geodata synth`` and the
#: service without ``COURIER_NETWORK`` all build this province, so the demo's files plan the
#: same everywhere (``api/config.py`` repeats the numbers; a test keeps them equal).
DEFAULT_PROVINCE_NODES: Final = 20_000
#: Seed of the one default province.
DEFAULT_PROVINCE_SEED: Final = 0


@dataclass(frozen=True, slots=True)
class Town:
    """A town with a post office; positions are the real ones (±2 km)."""

    key: str
    name: str
    lon: float
    lat: float
    weight: float  # share of the town-street budget


TOWNS: Final[tuple[Town, ...]] = (
    Town("KONTUM", "Kon Tum", 108.000, 14.350, 5.0),
    Town("DAKHA", "Đắk Hà", 107.930, 14.520, 1.0),
    Town("DAKTO", "Đắk Tô", 107.830, 14.700, 1.0),
    Town("NGOCHOI", "Ngọc Hồi", 107.690, 14.710, 1.0),
    Town("DAKGLEI", "Đắk Glei", 107.730, 15.090, 0.8),
    Town("TUMORONG", "Tu Mơ Rông", 107.980, 14.900, 0.6),
    Town("KONPLONG", "Kon Plông", 108.300, 14.610, 0.8),
    Town("KONRAY", "Kon Rẫy", 108.190, 14.550, 0.7),
    Town("SATHAY", "Sa Thầy", 107.790, 14.420, 0.8),
    Town("IAHDRAI", "Ia H'Drai", 107.520, 14.120, 0.6),
)

# (name, highway, town keys in order, winding amplitude, smoothness, surface)
_ROADS: Final = (
    ("Quốc lộ 14", "trunk", ("KONTUM", "DAKHA", "DAKTO", "NGOCHOI", "DAKGLEI"), 0.015, None, None),
    ("Quốc lộ 24", "primary", ("KONTUM", "KONRAY", "KONPLONG"), 0.06, "intermediate", None),
    ("Quốc lộ 40", "primary", ("NGOCHOI", "BORDER"), 0.03, None, None),
    ("Tỉnh lộ 671", "secondary", ("KONTUM", "SATHAY", "IAHDRAI"), 0.04, None, None),
    ("Tỉnh lộ 672", "tertiary", ("DAKTO", "TUMORONG"), 0.09, "bad", None),
    ("Đường Đắk Hà - Kon Rẫy", "tertiary", ("DAKHA", "KONRAY"), 0.07, "bad", None),
)
_BORDER: Final = (107.560, 14.690)  # Bờ Y border gate with Laos, end of road 40
ONE_STOP_CENTRE_NAME: Final = "Trung tâm Phục vụ hành chính công tỉnh Kon Tum"
_STREET_NAMES: Final = (
    "Trần Hưng Đạo",
    "Phan Đình Phùng",
    "Lê Hồng Phong",
    "Bà Triệu",
    "Nguyễn Huệ",
    "Lê Lợi",
    "Hùng Vương",
    "Phan Chu Trinh",
    "Trần Phú",
    "Ure",
    "Bạch Đằng",
    "Nguyễn Trãi",
)


@dataclass(frozen=True, slots=True)
class Village:
    """A settlement outside the towns, where many jobs of a day happen."""

    name: str
    lon: float
    lat: float
    town_key: str
    mountain: bool
    connected: bool


@dataclass(slots=True)
class SyntheticProvince:
    """A generated province: road graph, post offices, zones and notable places."""

    graph: nx.MultiDiGraph
    depots: list[dict[str, object]]
    zones: gpd.GeoDataFrame
    villages: list[Village]
    one_stop_centre: tuple[float, float]
    landslide_way_ids: list[int]
    landslide_village: Village
    outline: Polygon
    seed: int
    extra: dict[str, object] = field(default_factory=dict)


class _Builder:
    """Accumulates nodes and ways in degrees; ways become edges on :meth:`graph`."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.edges: list[
            tuple[int, int, int, dict[str, object], list[tuple[float, float]] | None]
        ] = []
        self.next_way = 1_000_001

    def node(self, lon: float, lat: float) -> int:
        self.lon.append(lon)
        self.lat.append(lat)
        return len(self.lon) - 1

    def way(
        self,
        nodes: list[int],
        *,
        highway: str,
        name: str = "",
        oneway: bool = False,
        wiggle_deg: float = 0.0,
        surface: str | None = None,
        smoothness: str | None = None,
    ) -> int:
        """Add a way through ``nodes``; ``wiggle_deg`` bends each segment like a mountain road."""
        way_id = self.next_way
        self.next_way += 1
        tags: dict[str, object] = {"highway": highway, "osmid": way_id}
        if name:
            tags["name"] = name
        if surface:
            tags["surface"] = surface
        if smoothness:
            tags["smoothness"] = smoothness
        for u, v in itertools.pairwise(nodes):
            shape = self._bend(u, v, wiggle_deg) if wiggle_deg > 0 else None
            self.edges.append((u, v, int(oneway), tags, shape))
        return way_id

    def _bend(self, u: int, v: int, amplitude: float) -> list[tuple[float, float]]:
        x0, y0, x1, y1 = self.lon[u], self.lat[u], self.lon[v], self.lat[v]
        length = math.hypot(x1 - x0, y1 - y0)
        k = max(3, int(length / 0.002))
        t = np.linspace(0.0, 1.0, k + 1)
        phase = self.rng.uniform(0, 2 * math.pi)
        turns = self.rng.uniform(1.5, 4.0)
        off = amplitude * length * np.sin(t * turns * 2 * math.pi + phase) * np.sin(t * math.pi)
        nx_, ny_ = (-(y1 - y0) / length, (x1 - x0) / length) if length > 0 else (0.0, 0.0)
        xs = x0 + (x1 - x0) * t + off * nx_
        ys = y0 + (y1 - y0) * t + off * ny_
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    def graph(self) -> nx.MultiDiGraph:
        G = nx.MultiDiGraph(crs="epsg:4326", created_with="courier-routing synthetic province")
        for i, (x, y) in enumerate(zip(self.lon, self.lat, strict=True)):
            G.add_node(i + 1, x=x, y=y)
        for u, v, oneway, tags, shape in self.edges:
            coords = shape or [(self.lon[u], self.lat[u]), (self.lon[v], self.lat[v])]
            length = polyline_length_m(coords)
            if length <= 0:
                continue
            attrs = {**tags, "oneway": bool(oneway), "reversed": False, "length": length}
            if shape:
                attrs["geometry"] = LineString(coords)
            G.add_edge(u + 1, v + 1, **attrs)
            if not oneway:
                back = {**tags, "oneway": False, "reversed": True, "length": length}
                if shape:
                    back["geometry"] = LineString(coords[::-1])
                G.add_edge(v + 1, u + 1, **back)
        return G


def _km_to_deg(lat: float) -> tuple[float, float]:
    """Degrees of longitude and latitude per kilometre at ``lat``."""
    return 1.0 / (111.32 * math.cos(math.radians(lat))), 1.0 / 110.57


def _grid(
    b: _Builder,
    lon0: float,
    lat0: float,
    side: int,
    spacing_km: float,
    *,
    name_prefix: str,
    oneways: bool,
) -> tuple[np.ndarray, int]:
    """Add a jittered street grid; return its node ids (side x side) and the centre node."""
    dlon, dlat = _km_to_deg(lat0)
    ids = np.empty((side, side), dtype=np.int64)
    half = (side - 1) / 2
    for i in range(side):
        for j in range(side):
            jx, jy = b.rng.normal(0, 0.12 * spacing_km, 2)
            ids[i, j] = b.node(
                lon0 + ((j - half) * spacing_km + jx) * dlon,
                lat0 + ((i - half) * spacing_km + jy) * dlat,
            )
    for i in range(side):
        name = f"{name_prefix} {_STREET_NAMES[i % len(_STREET_NAMES)]}"
        row = ids[i, :].tolist()
        one = oneways and side >= 6 and i % 4 == 1 and 0 < i < side - 1
        if one and i % 8 == 5:
            row = row[::-1]
        b.way(row, highway="tertiary" if i == side // 2 else "residential", name=name, oneway=one)
    for j in range(side):
        col = ids[:, j].tolist()
        b.way(
            col,
            highway="tertiary" if j == side // 2 else "residential",
            name=f"{name_prefix} đường {j + 1}",
        )
    centre = int(ids[side // 2, side // 2])
    return ids, centre


def make_province(
    n_nodes: int = DEFAULT_PROVINCE_NODES,
    *,
    seed: int = DEFAULT_PROVINCE_SEED,
    profile: str | Profile = "motorbike",
) -> SyntheticProvince:
    """Generate a Kon Tum-shaped province with about ``n_nodes`` road nodes.

    Parameters
    ----------
    n_nodes
        Target number of graph nodes (1,000 to 150,000); the result is within a
        few percent of it.
    seed
        Random seed; the same seed gives the same province.
    profile
        Vehicle profile used to set ``travel_time`` on the edges.

    Returns
    -------
    province
    """
    if not 200 <= n_nodes <= 200_000:
        msg = f"n_nodes must be between 200 and 200,000, got {n_nodes}"
        raise ValueError(msg)
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    rng = np.random.default_rng(seed)
    b = _Builder(rng)

    # towns: street grids sized by weight
    town_budget = 0.40 * n_nodes
    total_weight = sum(t.weight for t in TOWNS)
    centres: dict[str, int] = {}
    grids: dict[str, np.ndarray] = {}
    for town in TOWNS:
        side = max(4, int(math.sqrt(town_budget * town.weight / total_weight)))
        extent_km = 9.0 if town.key == "KONTUM" else 3.0
        spacing = min(0.5, max(0.07, extent_km / side))
        grids[town.key], centres[town.key] = _grid(
            b,
            town.lon,
            town.lat,
            side,
            spacing,
            name_prefix="" if town.key == "KONTUM" else town.name,
            oneways=town.key == "KONTUM",
        )
    one_stop = int(grids["KONTUM"][len(grids["KONTUM"]) // 2 + 1, len(grids["KONTUM"]) // 2 + 1])

    # roads between towns: chains of junction nodes every ~1 km, bent like the terrain
    border = b.node(*_BORDER)
    centres["BORDER"] = border
    chain_nodes: list[tuple[int, str, bool]] = []  # (node, nearest town, mountain road)
    for name, highway, keys, wiggle, smoothness, surface in _ROADS:
        for a, c in itertools.pairwise(keys):
            start = _edge_of_grid(b, grids[a], c, centres) if a in grids else centres[a]
            end = _edge_of_grid(b, grids[c], a, centres) if c in grids else centres[c]
            chain = _chain(b, start, end, step_km=1.0)
            b.way(
                chain,
                highway=highway,
                name=name,
                wiggle_deg=wiggle,
                smoothness=smoothness,
                surface=surface,
            )
            mountain = smoothness is not None
            chain_nodes += [(n, a, mountain) for n in chain[1:-1]]

    # villages fill the rest of the budget, hanging off the roads on tracks
    villages: list[Village] = []
    remaining = n_nodes - len(b.lon)
    chain_arr = np.array([c[0] for c in chain_nodes])
    village_no = 0
    landslide_way_ids: list[int] = []
    landslide_village: Village | None = None
    while remaining > 6:
        size = min(remaining, int(rng.integers(6, 40)))
        k = int(rng.integers(len(chain_arr)))
        anchor, town_key, mountain = chain_nodes[k]
        village_no += 1
        isolated = (
            village_no in (5, 13) or village_no % 97 == 13
        )  # a few villages have no road link
        landslide = landslide_village is None and mountain and village_no > 3
        dist_km = rng.uniform(1.0, 7.0) * (1.6 if mountain else 1.0)
        angle = rng.uniform(0, 2 * math.pi)
        dlon, dlat = _km_to_deg(b.lat[anchor])
        vlon = b.lon[anchor] + dist_km * math.cos(angle) * dlon
        vlat = b.lat[anchor] + dist_km * math.sin(angle) * dlat
        nodes = _village(b, vlon, vlat, size, village_no)
        village = Village(
            name=f"Làng {village_no}" if not landslide else "Xã Măng Ri (vùng sạt lở)",
            lon=vlon,
            lat=vlat,
            town_key=town_key,
            mountain=mountain,
            connected=not isolated,
        )
        if not isolated:
            access = _chain(b, anchor, nodes[0], step_km=1.5)
            way_id = b.way(
                access,
                highway="track" if mountain or rng.random() < 0.4 else "unclassified",
                name=f"Đường vào {village.name}",
                wiggle_deg=0.08 if mountain else 0.03,
                surface="unpaved" if mountain else None,
                smoothness="bad" if mountain else None,
            )
            if landslide:
                landslide_way_ids.append(way_id)
                landslide_village = village
        villages.append(village)
        remaining = n_nodes - len(b.lon)

    if landslide_village is None:  # tiny provinces: pick the last connected village
        landslide_village = next(v for v in reversed(villages) if v.connected)
    G = b.graph()
    apply_profile(G, prof)
    G.graph["profile"] = prof.name
    G.graph["source"] = f"synthetic Kon Tum province (n_nodes={n_nodes}, seed={seed})"
    depots = [
        {
            "depot_id": f"BC-{t.key}",
            "name": f"Bưu cục {t.name}",
            "lon": b.lon[centres[t.key]],
            "lat": b.lat[centres[t.key]],
            "town": t.name,
        }
        for t in TOWNS
    ]
    outline = MultiPoint(list(zip(b.lon, b.lat, strict=True))).convex_hull.buffer(0.03)
    zones = _zones(depots, outline)
    logger.info(
        "synthetic province: %d nodes, %d edges, %d villages",
        len(G),
        G.number_of_edges(),
        len(villages),
    )
    return SyntheticProvince(
        graph=G,
        depots=depots,
        zones=zones,
        villages=villages,
        one_stop_centre=(b.lon[one_stop], b.lat[one_stop]),
        landslide_way_ids=landslide_way_ids,
        landslide_village=landslide_village,
        outline=outline,
        seed=seed,
    )


def _edge_of_grid(b: _Builder, grid: np.ndarray, towards: str, centres: dict[str, int]) -> int:
    """Return the grid node closest to the direction of another town (where the highway leaves)."""
    target = centres[towards]
    flat = grid.ravel()
    lon = np.asarray(b.lon)[flat]
    lat = np.asarray(b.lat)[flat]
    d = (lon - b.lon[target]) ** 2 + (lat - b.lat[target]) ** 2
    return int(flat[int(np.argmin(d))])


def _chain(b: _Builder, start: int, end: int, *, step_km: float) -> list[int]:
    """Return start, new junction nodes every ``step_km``, end."""
    dlon, dlat = _km_to_deg(b.lat[start])
    dx = (b.lon[end] - b.lon[start]) / dlon
    dy = (b.lat[end] - b.lat[start]) / dlat
    k = max(1, int(math.hypot(dx, dy) / step_km))
    nodes = [start]
    for i in range(1, k):
        t = i / k
        nodes.append(
            b.node(
                b.lon[start] + t * (b.lon[end] - b.lon[start]),
                b.lat[start] + t * (b.lat[end] - b.lat[start]),
            )
        )
    nodes.append(end)
    return nodes


def _village(b: _Builder, lon: float, lat: float, size: int, number: int) -> list[int]:
    """Add a small village: a main lane with side lanes (a tree with a loop); return its nodes."""
    dlon, dlat = _km_to_deg(lat)
    main_len = max(2, size // 3)
    angle = b.rng.uniform(0, math.pi)
    main = [
        b.node(lon + i * 0.12 * math.cos(angle) * dlon, lat + i * 0.12 * math.sin(angle) * dlat)
        for i in range(main_len)
    ]
    b.way(main, highway="residential", name=f"Đường chính làng {number}")
    nodes = list(main)
    left = size - main_len
    while left > 0:
        base = main[int(b.rng.integers(len(main)))]
        n = min(left, int(b.rng.integers(1, 4)))
        side_angle = angle + math.pi / 2 * (1 if b.rng.random() < 0.5 else -1)
        lane = [base] + [
            b.node(
                b.lon[base]
                + (k + 1) * 0.08 * math.cos(side_angle) * dlon
                + b.rng.normal(0, 0.01) * dlon,
                b.lat[base]
                + (k + 1) * 0.08 * math.sin(side_angle) * dlat
                + b.rng.normal(0, 0.01) * dlat,
            )
            for k in range(n)
        ]
        b.way(lane, highway="service" if n == 1 else "residential", name=f"Hẻm làng {number}")
        nodes += lane[1:]
        left -= n
    return nodes


def _zones(depots: list[dict[str, object]], outline: Polygon) -> gpd.GeoDataFrame:
    """Voronoi cells of the post offices, clipped to the province outline."""
    import geopandas as gpd

    points = [Point(float(d["lon"]), float(d["lat"])) for d in depots]  # type: ignore[arg-type]
    cells = voronoi_polygons(MultiPoint(points), extend_to=outline)
    rows = []
    for d, p in zip(depots, points, strict=True):
        cell = next(c for c in cells.geoms if c.contains(p))
        rows.append(
            {
                "zone_id": f"Z-{str(d['depot_id']).removeprefix('BC-')}",
                "name": f"Vùng {d['town']}",
                "depot_id": d["depot_id"],
                "geometry": cell.intersection(outline),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def make_communes(
    province: SyntheticProvince, *, town_wards: int = 7, village_communes: int = 24
) -> gpd.GeoDataFrame:
    """Cut the province's post-office zones into communes, for data keyed by commune.

    Kon Tum town becomes ``town_wards`` wards (a centre and a ring around it), each district
    town one town commune, and the villages ``village_communes`` rural communes (villages
    grouped by a seeded k-means inside each office's zone, in proportion to its villages).
    Each commune is the Voronoi cell of its seat within its office's zone, so it lies inside
    one zone and carries that zone's ``depot_id``: the result is also a valid zones file.
    The province is not changed and nothing random is drawn from its generator.

    Parameters
    ----------
    province
        From :func:`make_province`.
    town_wards
        Wards of the provincial town (at least 1).
    village_communes
        Rural communes over the whole province (at least one per zone with villages).

    Returns
    -------
    communes
        Columns ``zone_id`` (``C-KONTUM-P1``, ``C-DAKHA-TT``, ``C-DAKHA-X1``...), ``name``,
        ``depot_id``, ``kind`` (``ward``, ``town``, ``rural``) and the polygon, EPSG:4326.
    """
    import geopandas as gpd

    if town_wards < 1 or village_communes < 0:
        msg = "town_wards must be >= 1 and village_communes >= 0"
        raise ValueError(msg)
    rng = np.random.default_rng([province.seed, 2025])  # the 2025 communes
    zones = province.zones
    villages = np.array([(v.lon, v.lat) for v in province.villages]).reshape(-1, 2)
    cells = list(zones.geometry)
    in_zone = np.array(
        [next((k for k, c in enumerate(cells) if c.contains(Point(x, y))), -1) for x, y in villages]
    )
    counts = np.array([int((in_zone == k).sum()) for k in range(len(cells))])
    rural = np.where(
        counts > 0, np.maximum(1, np.round(counts / max(1, counts.sum()) * village_communes)), 0
    )
    rows = []
    for k, (zone, cell) in enumerate(zip(zones.itertuples(), cells, strict=True)):
        depot = next(d for d in province.depots if d["depot_id"] == zone.depot_id)
        key = str(zone.depot_id).removeprefix("BC-")
        town = str(depot["town"])
        lon, lat = float(depot["lon"]), float(depot["lat"])  # type: ignore[arg-type]
        seats: list[tuple[float, float, str, str, str]] = []
        if key == "KONTUM":
            seats.append((lon, lat, f"C-{key}-P1", f"Phường {town} 1", "ward"))
            for i in range(town_wards - 1):
                a = 2 * math.pi * i / (town_wards - 1)
                seats.append(
                    (
                        lon + 0.024 * math.cos(a),
                        lat + 0.024 * math.sin(a),
                        f"C-{key}-P{i + 2}",
                        f"Phường {town} {i + 2}",
                        "ward",
                    )
                )
        else:
            seats.append((lon, lat, f"C-{key}-TT", f"Thị trấn {town}", "town"))
        mine = villages[in_zone == k]
        for i, (x, y) in enumerate(_kmeans(mine, int(rural[k]), rng)):
            seats.append((x, y, f"C-{key}-X{i + 1}", f"Xã {town} {i + 1}", "rural"))
        if len(seats) == 1:
            polys = [cell]
        else:
            found = voronoi_polygons(MultiPoint([(x, y) for x, y, *_ in seats]), extend_to=cell)
            polys = [
                next(g for g in found.geoms if g.contains(Point(x, y))).intersection(cell)
                for x, y, *_ in seats
            ]
        for (_, _, zone_id, name, kind), poly in zip(seats, polys, strict=True):
            if not poly.is_empty:
                rows.append(
                    {
                        "zone_id": zone_id,
                        "name": name,
                        "depot_id": zone.depot_id,
                        "kind": kind,
                        "geometry": poly,
                    }
                )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def _kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, rounds: int = 20
) -> list[tuple[float, float]]:
    """Return ``k`` seeded k-means centres of lon/lat points (fewer when there are fewer points)."""
    k = min(k, len(points))
    if k <= 0:
        return []
    centres = points[rng.choice(len(points), size=k, replace=False)].astype(float)
    for _ in range(rounds):
        d = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = np.argmin(d, axis=1)
        for c in range(k):
            if (label == c).any():
                centres[c] = points[label == c].mean(axis=0)
    return [(float(x), float(y)) for x, y in centres]
