"""Acquire road graphs from OpenStreetMap: download with osmnx, or read a local OSM file.

Every function returns an osmnx-style ``nx.MultiDiGraph`` (simplified topology,
``length`` in metres, ``travel_time`` in seconds for the chosen vehicle profile),
keeping every connected piece: a mountain commune reached by a road that is not
connected to the rest must stay in the graph so that it can be reported as
unreachable rather than silently lost.

Local files (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``) are read with
pyosmium. Extracts clipped from a larger region contain ways that reference nodes
outside the clip; such ways are split into their runs of present nodes (runs of a
single node are dropped) and the counts are logged and stored in
``G.graph["import_report"]``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import osmnx as ox

from .errors import NetworkUnavailableError, OSMFileError
from .profiles import PROFILE_TAGS, Profile, get_profile

if TYPE_CHECKING:
    from shapely import MultiPolygon, Polygon

logger = logging.getLogger(__name__)

#: Tag written on the pieces of a way split at missing nodes, holding the original way id.
SPLIT_WAY_TAG = "osm_way_id"

#: Suffixes of the OSM files :func:`graph_from_file` reads.
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml", ".xml.bz2")

# Overpass pre-filter for downloads: every way with a highway tag that some profile may use;
# the profile itself then decides per way (access tags, one-way overrides).
_DOWNLOAD_FILTER = (
    '["highway"]["area"!~"yes"]'
    '["highway"!~"abandoned|bridleway|bus_guideway|construction|corridor|elevator|escalator|'
    'no|planned|platform|proposed|raceway|razed|rest_area|services|steps"]'
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What reading an OSM file kept and dropped."""

    source: str
    ways_read: int
    ways_kept: int
    ways_split: int
    way_pieces_dropped: int
    nodes_missing: int


def configure_osmnx(cache_dir: Path | str | None = None, *, timeout_s: float = 30.0) -> None:
    """Set osmnx's global settings once: HTTP cache folder, timeout, and the way tags we need.

    Parameters
    ----------
    cache_dir
        Folder for osmnx's HTTP response cache (JSON named by the URL's hash). None
        keeps osmnx's default (``./cache``).
    timeout_s
        Timeout of each HTTP request to Overpass or Nominatim, so that an offline
        machine fails fast instead of hanging.
    """
    if cache_dir is not None:
        ox.settings.cache_folder = str(cache_dir)
    ox.settings.use_cache = True
    ox.settings.requests_timeout = timeout_s
    ox.settings.log_console = False
    _ensure_way_tags()


def _ensure_way_tags() -> None:
    """Make osmnx keep the tags the vehicle profiles read on every edge."""
    wanted = [*PROFILE_TAGS, SPLIT_WAY_TAG, "name", "ref", "highway", "bridge"]
    tags = list(ox.settings.useful_tags_way)
    for tag in wanted:
        if tag not in tags:
            tags.append(tag)
    ox.settings.useful_tags_way = tags


def _resolve_profile(profile: str | Profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def graph_from_file(path: Path | str, *, profile: str | Profile = "motorbike") -> nx.MultiDiGraph:
    """Build a routing graph from a local OSM file.

    Parameters
    ----------
    path
        An ``.osm``/``.osm.bz2``/``.osm.gz`` XML file or an ``.osm.pbf`` file.
    profile
        Vehicle profile name or object; decides which ways are kept, their
        direction and speed.

    Returns
    -------
    G
        Simplified osmnx graph with ``length`` (m) and ``travel_time`` (s) on
        every edge and the import report in ``G.graph["import_report"]``.

    Raises
    ------
    OSMFileError
        If the file is missing, empty, unreadable, or holds no road for the profile.
    """
    prof = _resolve_profile(profile)
    src = Path(path)
    if not src.is_file():
        msg = f"OSM file not found: {src}"
        raise OSMFileError(msg)
    if src.stat().st_size == 0:
        msg = f"OSM file is empty: {src}"
        raise OSMFileError(msg)
    if not any(src.name.lower().endswith(s) for s in OSM_SUFFIXES):
        msg = f"unsupported OSM file type {src.name!r}; expected one of {', '.join(OSM_SUFFIXES)}"
        raise OSMFileError(msg)
    _ensure_way_tags()
    with tempfile.TemporaryDirectory(prefix="courier-osm-") as tmp:
        xml_path = Path(tmp) / "roads.osm"
        report = _write_road_xml(src, xml_path)
        if report.ways_kept == 0:
            msg = f"{src.name}: no road (highway=*) in the file"
            raise OSMFileError(msg)
        try:
            G = ox.graph_from_xml(xml_path, simplify=False, retain_all=True)
        except (ValueError, KeyError) as e:
            msg = f"{src.name}: osmnx could not build a graph: {e}"
            raise OSMFileError(msg) from e
    G = _finish(G, prof)
    if len(G) == 0:
        msg = f"{src.name}: no road usable by the {prof.name} profile"
        raise OSMFileError(msg)
    G.graph["import_report"] = asdict(report)
    G.graph["source"] = str(src)
    logger.info(
        "%s: %d nodes, %d edges for %s (%d ways split at missing nodes, %d pieces dropped)",
        src.name,
        len(G),
        G.number_of_edges(),
        prof.name,
        report.ways_split,
        report.way_pieces_dropped,
    )
    return G


def _write_road_xml(src: Path, dst: Path) -> ImportReport:
    """Copy the file's highway ways (split at missing nodes) and their nodes to an OSM XML file."""
    import osmium

    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    ways_read = ways_split = pieces_dropped = nodes_missing = 0
    next_piece_id = -1
    try:
        processor = osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY)
        for way in processor.with_locations():
            if not way.is_way() or "highway" not in way.tags:
                continue
            ways_read += 1
            tags = {t.k: t.v for t in way.tags}
            runs: list[list[tuple[int, float, float]]] = [[]]
            for ref in way.nodes:
                loc = ref.location
                if loc.valid():
                    runs[-1].append((ref.ref, loc.lon, loc.lat))
                else:
                    nodes_missing += 1
                    if runs[-1]:
                        runs.append([])
            runs = [r for r in runs if r]
            kept = [r for r in runs if len(r) >= 2]
            pieces_dropped += len(runs) - len(kept)
            if len(kept) > 1 or len(runs) > 1 or (runs and len(runs[0]) < len(way.nodes)):
                ways_split += 1
            for i, run in enumerate(kept):
                way_id = way.id
                piece_tags = tags
                if i > 0:
                    way_id = next_piece_id
                    next_piece_id -= 1
                    piece_tags = {**tags, SPLIT_WAY_TAG: str(way.id)}
                for ref_id, lon, lat in run:
                    nodes[ref_id] = (lon, lat)
                ways.append((way_id, [r[0] for r in run], piece_tags))
    except RuntimeError as e:
        msg = f"{src.name}: not a readable OSM file ({e})"
        raise OSMFileError(msg) from e

    with osmium.SimpleWriter(str(dst)) as writer:
        for node_id in sorted(nodes):
            lon, lat = nodes[node_id]
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), version=1))
        for way_id, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))
    return ImportReport(
        source=src.name,
        ways_read=ways_read,
        ways_kept=len(ways),
        ways_split=ways_split,
        way_pieces_dropped=pieces_dropped,
        nodes_missing=nodes_missing,
    )


def graph_from_place(
    query: str | dict[str, str], *, profile: str | Profile = "motorbike"
) -> nx.MultiDiGraph:
    """Download the road graph of a named place (geocoded by Nominatim) through osmnx.

    Raises
    ------
    NetworkUnavailableError
        If Nominatim or Overpass cannot be reached or answers with an error.
    """
    return _download(lambda: ox.graph_from_place(query, **_download_kwargs()), profile, str(query))


def graph_from_bbox(
    bbox: tuple[float, float, float, float], *, profile: str | Profile = "motorbike"
) -> nx.MultiDiGraph:
    """Download the road graph inside ``bbox = (west, south, east, north)`` in degrees.

    Raises
    ------
    NetworkUnavailableError
        If Overpass cannot be reached or answers with an error.
    """
    west, south, east, north = bbox
    if not (west < east and south < north):
        msg = f"bbox must be (west, south, east, north) with west < east and south < north: {bbox}"
        raise ValueError(msg)
    return _download(lambda: ox.graph_from_bbox(bbox, **_download_kwargs()), profile, str(bbox))


def graph_from_polygon(
    polygon: Polygon | MultiPolygon, *, profile: str | Profile = "motorbike"
) -> nx.MultiDiGraph:
    """Download the road graph inside a (lon/lat) polygon.

    Raises
    ------
    NetworkUnavailableError
        If Overpass cannot be reached or answers with an error.
    """
    return _download(
        lambda: ox.graph_from_polygon(polygon, **_download_kwargs()), profile, "polygon"
    )


def _download_kwargs() -> dict[str, Any]:
    return {"custom_filter": _DOWNLOAD_FILTER, "simplify": False, "retain_all": True}


def _download(fetch: Any, profile: str | Profile, what: str) -> nx.MultiDiGraph:
    import requests

    prof = _resolve_profile(profile)
    _ensure_way_tags()
    try:
        G = fetch()
    except (requests.RequestException, OSError, ox._errors.InsufficientResponseError) as e:
        msg = f"could not download the road network for {what}: {e}"
        raise NetworkUnavailableError(msg) from e
    except ValueError as e:  # geocoding found nothing, or Overpass returned an error page
        msg = f"OpenStreetMap services gave no usable answer for {what}: {e}"
        raise NetworkUnavailableError(msg) from e
    G = _finish(G, prof)
    G.graph["source"] = what
    return G


def _finish(G: nx.MultiDiGraph, profile: Profile) -> nx.MultiDiGraph:
    """Apply the profile to an unsimplified graph, then simplify it as osmnx does."""
    apply_profile(G, profile)
    G.remove_nodes_from([n for n, d in G.degree() if d == 0])
    if len(G) == 0:
        G.graph["profile"] = profile.name
        return G
    G = ox.simplify_graph(G, remove_rings=False, edge_attr_aggs={"length": sum, "travel_time": sum})
    G.graph["profile"] = profile.name
    return G


def apply_profile(G: nx.MultiDiGraph, profile: Profile) -> nx.MultiDiGraph:
    """Restrict an unsimplified osmnx graph to a vehicle and set its edge speeds, in place.

    Removes edges the vehicle may not use, fixes directions where the vehicle's
    own one-way tag differs from the general one (``oneway:motorcycle=no`` adds the
    opposite edge), and sets ``speed_kph`` and ``travel_time`` (s) on each edge.

    Parameters
    ----------
    G
        Graph straight from osmnx with ``simplify=False`` (one OSM way per edge).
    profile
        The vehicle profile.

    Returns
    -------
    G
        The same graph object.
    """
    remove: list[tuple[Any, Any, Any]] = []
    add: list[tuple[Any, Any, dict[str, Any]]] = []
    for u, v, k, data in G.edges(keys=True, data=True):
        if not profile.allows(data):
            remove.append((u, v, k))
            continue
        osmnx_oneway = bool(data.get("oneway", False))
        wanted = profile.direction(_raw_oneway_tags(data, profile))
        if osmnx_oneway and wanted == "both":
            back = dict(data)
            back["oneway"] = False
            back["reversed"] = not bool(data.get("reversed", False))
            if not G.has_edge(v, u):
                add.append((v, u, back))
            data["oneway"] = False
        elif not osmnx_oneway and wanted != "both":
            is_backward = bool(data.get("reversed", False))
            if (wanted == "forward") == is_backward:
                remove.append((u, v, k))
            else:
                data["oneway"] = True
    G.remove_edges_from(remove)
    for u, v, data in add:
        G.add_edge(u, v, **data)
    for _, _, data in G.edges(data=True):
        kph = profile.speed_kph(data)
        data["speed_kph"] = kph
        data["travel_time"] = float(data["length"]) / (kph / 3.6)
    return G


def _raw_oneway_tags(data: dict[str, Any], profile: Profile) -> dict[str, str]:
    """Return the vehicle-specific one-way tags of an edge (osmnx already applied ``oneway``)."""
    tags = {k: str(data[k]) for k in profile.oneway_keys if k != "oneway" and k in data}
    if not tags:
        # osmnx has resolved the general tag into the edge direction: keep what it built
        tags["oneway"] = "yes" if data.get("oneway") else "no"
    return tags
