"""The region's road network for the service: a compact-graph cache, loaded once per process.

``COURIER_NETWORK`` names the cache (``courier geodata import/synth`` writes one); without it
the default synthetic Kon Tum province (the one ``courier demo`` plans on) and its zones are
generated into the data directory on first use.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geodata.compact import CompactGraph, compact_graph, load_compact
from geodata.matrix import PinnedMatrix, Router, TravelMatrix
from geodata.snap import Snapper

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from api.config import Settings
    from geodata.synthetic import SyntheticProvince

logger = logging.getLogger(__name__)


def ensure_network(
    path: Path,
    *,
    nodes: int,
    seed: int,
    province: SyntheticProvince | None = None,
    zones_path: Path | None = None,
) -> Path:
    """Return ``path``, generating the synthetic province there first if it does not exist.

    When ``zones_path`` is given, the province's zones are written there too (if missing), so
    the service assigns jobs to post offices as ``courier demo`` does. A file lock keeps
    concurrent processes (API, workers) from generating it twice; a caller that already
    generated ``make_province(nodes, seed=seed)`` passes it as ``province``.
    """

    def done() -> bool:
        return path.is_file() and (zones_path is None or zones_path.is_file())

    if done():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / (path.name + ".lock")).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done():
            from geodata.synthetic import make_province

            t0 = time.perf_counter()
            province = province or make_province(nodes, seed=seed)
            if not path.is_file():
                tmp = path.with_name(path.name + ".tmp")
                compact_graph(province.graph).save(tmp)
                tmp.replace(path)
            if zones_path is not None and not zones_path.is_file():
                tmp = zones_path.with_name(zones_path.name + ".tmp")
                province.zones.to_file(tmp, driver="GeoJSON")
                tmp.replace(zones_path)
            logger.info(
                "generated synthetic province (%d nodes, seed %d) in %.1f s",
                nodes,
                seed,
                time.perf_counter() - t0,
            )
    return path


class Network:
    """A loaded road graph with its snapper and router (built lazily, thread-safe enough)."""

    def __init__(self, graph: CompactGraph) -> None:
        self.graph = graph
        self._lock = threading.Lock()
        self._stop_snaps: dict[tuple[float, float], tuple[int, float, float]] = {}
        self._rounds: OrderedDict[tuple[tuple[float, ...], tuple[float, ...]], PinnedMatrix] = (
            OrderedDict()
        )

    @cached_property
    def snapper(self) -> Snapper:
        """Return the graph's snapper."""
        return Snapper(self.graph)

    @cached_property
    def router(self) -> Router:
        """Return a router without closures, computing matrices in this process."""
        return Router(self.graph, workers=1)

    def matrix(self, lons: list[float], lats: list[float]) -> tuple[TravelMatrix, object]:
        """Snap points and return their travel matrix and the snaps."""
        with self._lock:
            snaps = self.snapper.snap(np.asarray(lons), np.asarray(lats))
            return self.router.matrix(snaps), snaps

    def travel_matrix(
        self, lons: Sequence[float], lats: Sequence[float]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return travel times (s) and distances (m) between points (a ``routing`` matrix function)."""
        tm, _ = self.matrix(list(lons), list(lats))
        return tm.time_s, tm.distance_m

    def round_matrix(
        self,
        lons: Sequence[float],
        lats: Sequence[float],
        new_lons: Sequence[float],
        new_lats: Sequence[float],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return travel times (s) and distances (m) between a round's points and new ones, new last.

        The same matrices as :meth:`travel_matrix` over all the points (a ``routing`` round
        matrix function). The round's points stay pinned between calls (the last
        :data:`_ROUNDS` rounds asked about): a dispatcher asking where several urgent jobs fit
        costs two searches per new point and round, not a matrix of every round each time.
        """
        key = (tuple(lons), tuple(lats))
        with self._lock:
            pinned = self._rounds.get(key)
            if pinned is None:
                # first question about this round: one matrix over all its points, as before
                n = len(key[0])
                snaps = self.snapper.snap(
                    np.asarray([*key[0], *new_lons]), np.asarray([*key[1], *new_lats])
                )
                pinned = self.router.pinned(
                    snaps.subset(np.arange(n)), snaps.subset(np.arange(n, len(snaps)))
                )
                self._rounds[key] = pinned
                if len(self._rounds) > _ROUNDS:
                    self._rounds.popitem(last=False)
                tm = pinned.first
            else:
                self._rounds.move_to_end(key)
                extra = self.snapper.snap(np.asarray(list(new_lons)), np.asarray(list(new_lats)))
                tm = pinned.extended(extra)
        return tm.time_s, tm.distance_m

    def warm(self) -> None:
        """Build the snap index and the travel-time hierarchy now rather than on first use."""
        with self._lock:
            self.snapper.snap(
                np.asarray([self.graph.node_lon[0]]), np.asarray([self.graph.node_lat[0]])
            )
            _ = self.router.time_metric

    def road_time_s(
        self, lon: float, lat: float, to_lon: float, to_lat: float, *, max_snap_m: float
    ) -> tuple[float, float] | None:
        """Return the fastest time along the roads between two points and their distance off-road.

        Returns ``(seconds on the roads, metres from the points to the roads)``, or None when a
        point is farther than ``max_snap_m`` from every road or no road joins them. Call
        :meth:`warm` first (from one thread); then any number of threads may call this.

        The destination is a planned stop, asked for again and again: its snap is remembered.
        """
        # No lock: after warm() the snap index and the hierarchy are only read, pyproj's
        # transformers are thread-safe and each query has its own CCH query object.
        snapper = self.snapper
        fix = snapper.snap_one(lon, lat)
        stop = self._stop_snaps.get((to_lon, to_lat))
        if stop is None:
            stop = snapper.snap_one(to_lon, to_lat)
            if len(self._stop_snaps) >= _STOP_SNAPS:
                self._stop_snaps.clear()
            self._stop_snaps[(to_lon, to_lat)] = stop
        if fix[2] > max_snap_m or stop[2] > max_snap_m:
            return None
        seconds = self.router.time_s(fix[:2], stop[:2])
        if seconds is None:
            return None
        return seconds, fix[2] + stop[2]


#: Rounds whose matrices a network keeps for urgent-job suggestions (a province's day has a
#: few hundred rounds; a round of 50 points holds about 100 kB). A round's key is its points,
#: the courier's GPS fix included: a new fix starts a new entry, the old one ages out.
_ROUNDS = 256

#: Planned stops whose snaps a network remembers (a province's day is a few thousand).
_STOP_SNAPS = 50_000


_cache: dict[Path, Network] = {}
_cache_lock = threading.Lock()
_warm: set[Path] = set()


def get_network(settings: Settings) -> Network:
    """Return the process's network for ``settings`` (loaded or generated once)."""
    path = settings.network_path
    with _cache_lock:
        if path not in _cache:
            if settings.network is None:
                ensure_network(
                    path,
                    nodes=settings.network_nodes,
                    seed=settings.network_seed,
                    zones_path=settings.zones_path,
                )
            _cache[path] = Network(load_compact(path))
            logger.info("road network loaded from %s", path)
        return _cache[path]


def warm_network(settings: Settings) -> None:
    """Load the network and build its indexes, then let :func:`warm_network_or_none` return it.

    Run in a background thread at start-up: requests that can do without the roads (a courier's
    GPS fix) never wait for a load that takes seconds on a real region.
    """
    try:
        t0 = time.perf_counter()
        network = get_network(settings)
        network.warm()
        _warm.add(settings.network_path)
        logger.info("road network ready for live ETAs in %.1f s", time.perf_counter() - t0)
    except Exception:
        logger.exception("road network could not be loaded; live ETAs use straight lines")


def warm_network_or_none(settings: Settings) -> Network | None:
    """Return the network if :func:`warm_network` has made it ready in this process, else None."""
    path = settings.network_path
    return _cache.get(path) if path in _warm else None
