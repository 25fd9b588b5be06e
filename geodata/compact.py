"""The compact routing graph: flat arrays built once from an osmnx graph, cached in one file.

Snapping and matrices never touch networkx: they read these arrays. Edges are
sorted by tail node (CSR), carry integer weights (travel time in deciseconds,
length in decimetres) so that every shortest-path method sums the same integers,
and keep their polyline geometry for snapping and drawing. The contraction order
used by the matrix engine is computed once here and saved with the arrays, so
loading a cached 100k-node province takes well under a second.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from .errors import GraphCacheError

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)

CACHE_VERSION: Final = 1
#: Deciseconds per second: travel-time weights are integers in tenths of a second.
TIME_SCALE: Final = 10
#: Decimetres per metre: length weights are integers in tenths of a metre.
LENGTH_SCALE: Final = 10

_ARRAYS: Final = (
    "node_osmid",
    "node_lon",
    "node_lat",
    "tail",
    "head",
    "indptr",
    "time_ds",
    "length_dm",
    "road_class",
    "way_ptr",
    "way_ids",
    "twin",
    "geom_ptr",
    "geom_lon",
    "geom_lat",
    "order",
)


@dataclass(frozen=True, slots=True, eq=False)
class CompactGraph:
    """A directed road graph as arrays, for one vehicle profile.

    Attributes
    ----------
    node_osmid, node_lon, node_lat
        Per node: OSM id and position (degrees).
    tail, head, indptr
        Edges sorted by tail; ``indptr`` is the CSR row pointer over nodes.
    time_ds, length_dm
        Per edge integer travel time (0.1 s) and length (0.1 m), at least 1.
    road_class
        Per edge index into ``classes`` (the edge's ``highway`` value).
    way_ptr, way_ids
        CSR list of the OSM way ids merged into each edge (closures by way id).
    twin
        Per edge the index of the opposite edge over the same geometry, or -1
        (one-way).
    geom_ptr, geom_lon, geom_lat
        Per edge polyline from tail to head.
    order
        Node order for the contraction hierarchy (computed once, cached).
    """

    node_osmid: npt.NDArray[np.int64]
    node_lon: npt.NDArray[np.float64]
    node_lat: npt.NDArray[np.float64]
    tail: npt.NDArray[np.int32]
    head: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    time_ds: npt.NDArray[np.int64]
    length_dm: npt.NDArray[np.int64]
    road_class: npt.NDArray[np.int16]
    way_ptr: npt.NDArray[np.int64]
    way_ids: npt.NDArray[np.int64]
    twin: npt.NDArray[np.int64]
    geom_ptr: npt.NDArray[np.int64]
    geom_lon: npt.NDArray[np.float64]
    geom_lat: npt.NDArray[np.float64]
    order: npt.NDArray[np.int32]
    classes: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_lon.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.tail.shape[0])

    @property
    def profile(self) -> str:
        """Vehicle profile the weights were computed for."""
        return str(self.meta.get("profile", "motorbike"))

    def bbox(self) -> tuple[float, float, float, float]:
        """Return (west, south, east, north) in degrees."""
        return (
            float(self.node_lon.min()),
            float(self.node_lat.min()),
            float(self.node_lon.max()),
            float(self.node_lat.max()),
        )

    def edge_coords(self, edge: int) -> npt.NDArray[np.float64]:
        """Return the (k, 2) lon/lat polyline of an edge, tail to head."""
        a, b = self.geom_ptr[edge], self.geom_ptr[edge + 1]
        return np.column_stack((self.geom_lon[a:b], self.geom_lat[a:b]))

    def edges_of_ways(self, way_ids: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Return a mask of the edges that contain any of the given OSM way ids."""
        wanted = np.isin(self.way_ids, np.asarray(way_ids, dtype=np.int64))
        edge_of_entry = np.repeat(np.arange(self.n_edges), np.diff(self.way_ptr))
        mask = np.zeros(self.n_edges, dtype=bool)
        mask[edge_of_entry[wanted]] = True
        return mask

    def summary(self) -> dict[str, Any]:
        """Return sizes, strongly connected share, bbox and road-class breakdown."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n_nodes
        adj = csr_matrix((np.ones(self.n_edges), (self.tail, self.head)), shape=(n, n))
        n_scc, labels = connected_components(adj, directed=True, connection="strong")
        n_wcc, _ = connected_components(adj, directed=True, connection="weak")
        largest = int(np.bincount(labels).max()) if n else 0
        n_classes = len(self.classes)
        edges = np.bincount(self.road_class, minlength=n_classes)
        km = (
            np.bincount(self.road_class, weights=self.length_dm, minlength=n_classes)
            / LENGTH_SCALE
            / 1000
        )
        order = np.argsort(-edges, kind="stable")
        return {
            "nodes": n,
            "edges": self.n_edges,
            "profile": self.profile,
            "source": self.meta.get("source", ""),
            "strongly_connected_share": largest / n if n else 0.0,
            "strong_components": int(n_scc),
            "weak_components": int(n_wcc),
            "bbox": self.bbox(),
            "road_classes": {
                self.classes[c]: {"edges": int(edges[c]), "km": round(float(km[c]), 1)}
                for c in order.tolist()
                if edges[c]
            },
        }

    def save(self, path: Path | str) -> Path:
        """Write the graph to one cache file, under exactly the name given.

        The file is an uncompressed NumPy ``.npz`` archive (fast to load) whatever its name:
        ``.npz`` is the usual suffix, but ``hanoi.cache`` is written as ``hanoi.cache``, so
        every reader finds it under the name the user gave.

        Parameters
        ----------
        path
            The file to write (its folder is created).

        Returns
        -------
        path
            ``path`` itself.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        header = {"version": CACHE_VERSION, "classes": list(self.classes), "meta": self.meta}
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        # Through a file object: np.savez given a name would append ".npz" to it.
        with out.open("wb") as fh:
            np.savez(
                fh, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays
            )
        return out


def is_graph_cache(path: Path | str) -> bool:
    """Return whether ``path`` is an existing file in the graph cache's format (a zip archive).

    Tells a cache from an OSM file by its content, not its name: OSM XML, ``.bz2`` and ``.pbf``
    files are never zip archives.
    """
    src = Path(path)
    return src.is_file() and zipfile.is_zipfile(src)


def load_compact(path: Path | str) -> CompactGraph:
    """Load a compact graph from its cache file.

    The file is read under the name given. A cache saved by an earlier version under the
    given name plus ``.npz`` (``hanoi.cache.npz`` for ``hanoi.cache``) is found too.

    Raises
    ------
    GraphCacheError
        If the file is missing, not a cache file, or from another version.
    """
    src = Path(path)
    if not src.is_file():
        older = src.with_name(src.name + ".npz")
        if src.suffix == ".npz" or not older.is_file():
            msg = f"graph cache not found: {src}"
            raise GraphCacheError(msg)
        logger.info(
            "graph cache %s not found; reading %s (saved by an earlier version)", src, older
        )
        src = older
    try:
        with src.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            arrays = {name: data[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        msg = f"{src.name} is not a courier-routing graph cache: {e}"
        raise GraphCacheError(msg) from e
    if header.get("version") != CACHE_VERSION:
        msg = f"{src.name}: cache version {header.get('version')} (expected {CACHE_VERSION}); rebuild it"
        raise GraphCacheError(msg)
    return CompactGraph(**arrays, classes=tuple(header["classes"]), meta=header["meta"])


def compact_graph(G: nx.MultiDiGraph, *, compute_order: bool = True) -> CompactGraph:
    """Build the compact arrays from an osmnx graph with ``travel_time`` on its edges.

    Parallel edges are kept (the matrix engine takes the cheapest); edges without
    a ``geometry`` are straight segments. Cost is linear in the graph size plus
    the contraction order (about 2 s for 100k nodes).

    Parameters
    ----------
    G
        osmnx graph (EPSG:4326) whose edges have ``length`` and ``travel_time``.
    compute_order
        Compute the contraction order now (else on first use, not cached).

    Returns
    -------
    graph
    """
    t0 = time.perf_counter()
    if G.graph.get("crs", "epsg:4326").lower() not in {"epsg:4326", "wgs84"}:
        msg = f"graph must be in EPSG:4326 (lon/lat), got {G.graph.get('crs')}"
        raise ValueError(msg)
    osmids = np.fromiter(G.nodes, dtype=np.int64, count=len(G))
    index = {int(n): i for i, n in enumerate(osmids.tolist())}
    lon = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=np.float64, count=len(G))
    lat = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=np.float64, count=len(G))

    tails: list[int] = []
    heads: list[int] = []
    times: list[float] = []
    lengths: list[float] = []
    class_ids: list[int] = []
    classes: dict[str, int] = {}
    way_lists: list[list[int]] = []
    coords: list[Any] = []
    for u, v, data in G.edges(data=True):
        if "travel_time" not in data:
            msg = f"edge ({u}, {v}) has no travel_time: apply a vehicle profile first"
            raise ValueError(msg)
        tails.append(index[u])
        heads.append(index[v])
        times.append(float(data["travel_time"]))
        lengths.append(float(data["length"]))
        hw = data.get("highway", "unknown")
        hw = str(hw[0] if isinstance(hw, list) else hw)
        class_ids.append(classes.setdefault(hw, len(classes)))
        ways = data.get("osmid", [])
        ways = ways if isinstance(ways, list) else [ways]
        split = data.get("osm_way_id")
        if split is not None:
            ways = ways + [int(s) for s in (split if isinstance(split, list) else [split])]
        way_lists.append([int(w) for w in ways])
        geom = data.get("geometry")
        coords.append(None if geom is None else np.asarray(geom.coords, dtype=np.float64))

    tail = np.asarray(tails, dtype=np.int32)
    head = np.asarray(heads, dtype=np.int32)
    perm = np.argsort(tail, kind="stable")
    tail, head = tail[perm], head[perm]
    time_ds = np.maximum(1, np.rint(np.asarray(times)[perm] * TIME_SCALE)).astype(np.int64)
    length_dm = np.maximum(1, np.rint(np.asarray(lengths)[perm] * LENGTH_SCALE)).astype(np.int64)
    road_class = np.asarray(class_ids, dtype=np.int16)[perm]
    indptr = np.zeros(len(G) + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=len(G)), out=indptr[1:])

    way_counts = np.asarray([len(way_lists[p]) for p in perm.tolist()], dtype=np.int64)
    way_ptr = np.zeros(len(perm) + 1, dtype=np.int64)
    np.cumsum(way_counts, out=way_ptr[1:])
    way_ids = np.asarray([w for p in perm.tolist() for w in way_lists[p]], dtype=np.int64)

    geom_parts: list[npt.NDArray[np.float64]] = []
    for e, p in enumerate(perm.tolist()):
        c = coords[p]
        if c is None or c.shape[0] < 2:  # straight segment
            c = np.array([[lon[tail[e]], lat[tail[e]]], [lon[head[e]], lat[head[e]]]])
        geom_parts.append(c)
    geom_counts = np.asarray([g.shape[0] for g in geom_parts], dtype=np.int64)
    geom_ptr = np.zeros(len(perm) + 1, dtype=np.int64)
    np.cumsum(geom_counts, out=geom_ptr[1:])
    geom = np.concatenate(geom_parts) if geom_parts else np.empty((0, 2))

    twin = _twins(tail, head, length_dm, way_ids, way_ptr)
    order = np.arange(len(G), dtype=np.int32)
    graph = CompactGraph(
        node_osmid=osmids,
        node_lon=lon,
        node_lat=lat,
        tail=tail,
        head=head,
        indptr=indptr,
        time_ds=time_ds,
        length_dm=length_dm,
        road_class=road_class,
        way_ptr=way_ptr,
        way_ids=way_ids,
        twin=twin,
        geom_ptr=geom_ptr,
        geom_lon=np.ascontiguousarray(geom[:, 0]),
        geom_lat=np.ascontiguousarray(geom[:, 1]),
        order=order,
        classes=tuple(classes),
        meta={
            "profile": G.graph.get("profile", "motorbike"),
            "source": G.graph.get("source", ""),
            "created_s": time.time(),
            "import_report": G.graph.get("import_report"),
            "order": "none",
        },
    )
    if compute_order and len(G) > 0:
        graph = with_contraction_order(graph)
    logger.info(
        "compact graph: %d nodes, %d edges in %.1f s",
        graph.n_nodes,
        graph.n_edges,
        time.perf_counter() - t0,
    )
    return graph


def with_contraction_order(graph: CompactGraph) -> CompactGraph:
    """Return the graph with a nested-dissection node order for the contraction hierarchy."""
    import routingkit_cch as rk

    order = rk.compute_order_inertial(
        graph.n_nodes,
        graph.tail.tolist(),
        graph.head.tolist(),
        graph.node_lat.tolist(),
        graph.node_lon.tolist(),
    )
    meta = {**graph.meta, "order": "inertial"}
    fields = {name: getattr(graph, name) for name in _ARRAYS}
    fields["order"] = np.asarray(order, dtype=np.int32)
    return CompactGraph(**fields, classes=graph.classes, meta=meta)


def _twins(
    tail: npt.NDArray[np.int32],
    head: npt.NDArray[np.int32],
    length_dm: npt.NDArray[np.int64],
    way_ids: npt.NDArray[np.int64],
    way_ptr: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Pair each edge with the opposite edge over the same road (same ends, length, first way)."""
    first_way = np.where(
        np.diff(way_ptr) > 0, way_ids[np.minimum(way_ptr[:-1], max(len(way_ids) - 1, 0))], -1
    )
    twin = np.full(tail.shape[0], -1, dtype=np.int64)
    seen: dict[tuple[int, int, int, int], int] = {}
    for e, (t, h, ln, w) in enumerate(
        zip(tail.tolist(), head.tolist(), length_dm.tolist(), first_way.tolist(), strict=True)
    ):
        back = seen.pop((h, t, ln, w), None)
        if back is not None and twin[back] == -1:
            twin[e] = back
            twin[back] = e
        else:
            seen[(t, h, ln, w)] = e
    return twin
