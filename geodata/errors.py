"""Errors raised by the road-network layer; each subclasses a builtin so callers may catch either."""

from __future__ import annotations


class GeodataError(Exception):
    """Base class for every error of the road-network layer."""


class NetworkUnavailableError(GeodataError, ConnectionError):
    """OpenStreetMap data could not be downloaded (offline, timeout, server refused)."""


class OSMFileError(GeodataError, ValueError):
    """A local OSM file is missing, empty, corrupt, or holds no road for the profile."""


class UnknownProfileError(GeodataError, KeyError):
    """A vehicle profile name that is not defined."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown profile"


class SnapError(GeodataError, ValueError):
    """Points could not be placed on the road network (bad coordinates, empty graph)."""


class GraphCacheError(GeodataError, ValueError):
    """A compact-graph cache file is missing, corrupt, or from an incompatible version."""


class ZoneError(GeodataError, ValueError):
    """A zones file is missing, empty or holds no polygon."""


class ClosureError(GeodataError, ValueError):
    """A closures file has a bad entry (names the entry and the reason)."""
