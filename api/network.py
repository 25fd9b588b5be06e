"""The region's road network for the service: a compact-graph cache, loaded once per process.

``COURIER_NETWORK`` names the cache (``courier geodata import/synth`` writes one); without it
the synthetic Kon Tum province is generated into the data directory on first use.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geodata.compact import CompactGraph, compact_graph, load_compact
from geodata.matrix import Router, TravelMatrix
from geodata.snap import Snapper

if TYPE_CHECKING:
    from api.config import Settings
    from geodata.synthetic import SyntheticProvince

logger = logging.getLogger(__name__)


def ensure_network(
    path: Path, *, nodes: int, seed: int, province: SyntheticProvince | None = None
) -> Path:
    """Return ``path``, generating the synthetic province there first if it does not exist.

    A file lock keeps concurrent processes (API, workers) from generating it twice; a caller
    that already generated ``make_province(nodes, seed=seed)`` passes it as ``province``.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / (path.name + ".lock")).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            from geodata.synthetic import make_province

            t0 = time.perf_counter()
            province = province or make_province(nodes, seed=seed)
            tmp = path.with_suffix(".tmp.npz")
            compact_graph(province.graph).save(tmp)
            tmp.replace(path)
            logger.info(
                "generated synthetic province (%d nodes) in %.1f s", nodes, time.perf_counter() - t0
            )
    return path


class Network:
    """A loaded road graph with its snapper and router (built lazily, thread-safe enough)."""

    def __init__(self, graph: CompactGraph) -> None:
        self.graph = graph
        self._lock = threading.Lock()

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


_cache: dict[Path, Network] = {}
_cache_lock = threading.Lock()


def get_network(settings: Settings) -> Network:
    """Return the process's network for ``settings`` (loaded or generated once)."""
    path = settings.network_path
    with _cache_lock:
        if path not in _cache:
            if settings.network is None:
                ensure_network(path, nodes=settings.network_nodes, seed=settings.network_seed)
            _cache[path] = Network(load_compact(path))
            logger.info("road network loaded from %s", path)
        return _cache[path]
