"""Vehicle profiles: which OSM ways a vehicle may use, in which direction, and how fast.

Couriers of the Kon Tum post ride motorbikes, so ``motorbike`` is the default
profile. It differs from osmnx's ``drive`` network in the ways Vietnamese mappers
tag alleys: ``highway=service`` lanes, ``motorcar=no`` alleys (closed to cars, open
to motorbikes), ``motorcycle=yes`` paths, and ``oneway:motorcycle=no`` streets that
motorbikes may ride both ways. Expressways (``motorway``) are closed to motorbikes.

Speeds are in one table per profile (:data:`SPEEDS_KPH`), scaled down on unpaved or
rough surfaces (:data:`SURFACE_FACTOR`, :data:`SMOOTHNESS_FACTOR`) and capped by a
tagged ``maxspeed``. Users override any speed with :func:`get_profile`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from .errors import UnknownProfileError

ProfileName = Literal["motorbike", "car"]

#: Free-flow speed (km/h) per ``highway`` class and profile. Values follow the field
#: notes of the Kon Tum post (town streets 25-30, national roads 45-55, provincial
#: and commune roads 30-40, mountain roads 20-30, unpaved tracks 10-15).
SPEEDS_KPH: Final[Mapping[str, Mapping[str, float]]] = MappingProxyType(
    {
        "motorbike": MappingProxyType(
            {
                "trunk": 50.0,
                "trunk_link": 35.0,
                "primary": 45.0,
                "primary_link": 35.0,
                "secondary": 40.0,
                "secondary_link": 30.0,
                "tertiary": 35.0,
                "tertiary_link": 28.0,
                "unclassified": 30.0,
                "road": 25.0,
                "residential": 25.0,
                "living_street": 15.0,
                "service": 15.0,
                "track": 12.0,
                "path": 10.0,
                "footway": 8.0,
                "pedestrian": 8.0,
                "cycleway": 10.0,
            }
        ),
        "car": MappingProxyType(
            {
                "motorway": 80.0,
                "motorway_link": 50.0,
                "trunk": 60.0,
                "trunk_link": 40.0,
                "primary": 50.0,
                "primary_link": 40.0,
                "secondary": 45.0,
                "secondary_link": 35.0,
                "tertiary": 40.0,
                "tertiary_link": 30.0,
                "unclassified": 30.0,
                "road": 25.0,
                "residential": 25.0,
                "living_street": 15.0,
            }
        ),
    }
)

#: Speed factor for the ``surface`` tag; anything unpaved is slow on a motorbike.
SURFACE_FACTOR: Final[Mapping[str, float]] = MappingProxyType(
    {
        "compacted": 0.8,
        "fine_gravel": 0.7,
        "gravel": 0.6,
        "unpaved": 0.6,
        "dirt": 0.5,
        "earth": 0.5,
        "ground": 0.5,
        "mud": 0.4,
        "sand": 0.4,
        "grass": 0.4,
    }
)

#: Speed factor for the ``smoothness`` tag (broken mountain roads).
SMOOTHNESS_FACTOR: Final[Mapping[str, float]] = MappingProxyType(
    {"intermediate": 0.85, "bad": 0.7, "very_bad": 0.55, "horrible": 0.45, "very_horrible": 0.35}
)

# Tags the profiles read; osmnx must keep them on the edges it builds.
PROFILE_TAGS: Final[tuple[str, ...]] = (
    "access",
    "vehicle",
    "motor_vehicle",
    "motorcycle",
    "motorcar",
    "oneway",
    "oneway:motorcycle",
    "oneway:motor_vehicle",
    "oneway:moped",
    "junction",
    "surface",
    "smoothness",
    "maxspeed",
    "motorroad",
    "service",
    "area",
)

_NO = frozenset({"no", "private", "agricultural", "forestry", "delivery", "customers"})
_YES = frozenset({"yes", "designated", "permissive", "destination"})
_ONEWAY_YES = frozenset({"yes", "true", "1"})
_ONEWAY_REVERSE = frozenset({"-1", "reverse"})
_NEVER = frozenset(
    {
        "abandoned",
        "bridleway",
        "bus_guideway",
        "construction",
        "corridor",
        "elevator",
        "escalator",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
        "steps",
        "bus_stop",
    }
)
_CAR_EXCLUDED_SERVICE = frozenset({"parking_aisle", "driveway", "emergency_access", "private"})
_KPH_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph)?")


@dataclass(frozen=True, slots=True)
class Profile:
    """A vehicle's access rules and speeds.

    ``vehicle_keys`` are the access keys from the most general to the most
    specific (OSM's access hierarchy); the most specific key that is tagged wins.
    ``default_classes`` are the highway classes open without an explicit tag;
    ``explicit_classes`` are open only when the way says so for this vehicle
    (e.g. a ``path`` with ``motorcycle=yes``).
    """

    name: str
    vehicle_keys: tuple[str, ...]
    oneway_keys: tuple[str, ...]
    speeds_kph: Mapping[str, float]
    default_classes: frozenset[str]
    explicit_classes: frozenset[str] = frozenset()
    excluded_service: frozenset[str] = frozenset()
    refuse_motorroad: bool = False
    default_speed_kph: float = 20.0
    surface_factor: Mapping[str, float] = field(default_factory=lambda: SURFACE_FACTOR)
    smoothness_factor: Mapping[str, float] = field(default_factory=lambda: SMOOTHNESS_FACTOR)

    def __post_init__(self) -> None:
        for cls, kph in self.speeds_kph.items():
            if not kph > 0:
                msg = f"profile {self.name!r}: speed for {cls!r} must be positive, got {kph}"
                raise ValueError(msg)

    def access(self, tags: Mapping[str, str]) -> str | None:
        """Return the most specific access value tagged for this vehicle, or None."""
        value = None
        for key in self.vehicle_keys:
            if key in tags:
                value = str(tags[key]).split(";")[0].strip()
        return value

    def allows(self, tags: Mapping[str, str]) -> bool:
        """Return True when this vehicle may use a way with these tags."""
        highway = _first(tags.get("highway"))
        if highway is None or highway in _NEVER or _first(tags.get("area")) == "yes":
            return False
        if self.refuse_motorroad and _first(tags.get("motorroad")) == "yes":
            return False
        if _first(tags.get("service")) in self.excluded_service:
            return False
        access = self.access(tags)
        if highway in self.default_classes:
            return access not in _NO
        if highway in self.explicit_classes:
            return access in _YES
        return False

    def direction(self, tags: Mapping[str, str]) -> Literal["both", "forward", "backward"]:
        """Return which way along the OSM node order this vehicle may travel."""
        value = None
        for key in self.oneway_keys:
            if key in tags:
                value = str(tags[key]).strip().lower()
        if value is None and _first(tags.get("junction")) in {"roundabout", "circular"}:
            return "forward"
        if value in _ONEWAY_YES:
            return "forward"
        if value in _ONEWAY_REVERSE:
            return "backward"
        return "both"

    def speed_kph(self, tags: Mapping[str, str]) -> float:
        """Return the travel speed on a way: class speed x surface x smoothness, capped by maxspeed."""
        highway = _first(tags.get("highway")) or ""
        kph = self.speeds_kph.get(highway, self.default_speed_kph)
        if highway != "track":  # a track's class speed already assumes an unpaved surface
            kph *= self.surface_factor.get(_first(tags.get("surface")) or "", 1.0)
        kph *= self.smoothness_factor.get(_first(tags.get("smoothness")) or "", 1.0)
        cap = parse_maxspeed_kph(tags.get("maxspeed"))
        if cap is not None:
            kph = min(kph, cap)
        return max(kph, 1.0)


def _first(value: object) -> str | None:
    """Return the first of an osmnx attribute that may be a list (merged ways) or None."""
    if value is None:
        return None
    if isinstance(value, list):
        return _first(value[0]) if value else None
    return str(value)


def parse_maxspeed_kph(value: object) -> float | None:
    """Parse an OSM ``maxspeed`` value ("50", "30 mph", ["40", "50"]) to km/h, or None."""
    text = _first(value)
    if text is None:
        return None
    match = _KPH_RE.match(text)
    if match is None:
        return None
    kph = float(match.group(1))
    if match.group(2):
        kph *= 1.609344
    return kph if kph > 0 else None


def _builtin(name: str) -> Profile:
    if name == "motorbike":
        return Profile(
            name="motorbike",
            vehicle_keys=("access", "vehicle", "motor_vehicle", "motorcycle"),
            oneway_keys=("oneway", "oneway:motor_vehicle", "oneway:motorcycle"),
            speeds_kph=SPEEDS_KPH["motorbike"],
            default_classes=frozenset(
                {
                    "trunk",
                    "trunk_link",
                    "primary",
                    "primary_link",
                    "secondary",
                    "secondary_link",
                    "tertiary",
                    "tertiary_link",
                    "unclassified",
                    "road",
                    "residential",
                    "living_street",
                    "service",
                    "track",
                }
            ),
            explicit_classes=frozenset({"path", "footway", "pedestrian", "cycleway"}),
            refuse_motorroad=True,
        )
    if name == "car":
        return Profile(
            name="car",
            vehicle_keys=("access", "vehicle", "motor_vehicle", "motorcar"),
            oneway_keys=("oneway", "oneway:motor_vehicle"),
            speeds_kph=SPEEDS_KPH["car"],
            default_classes=frozenset(SPEEDS_KPH["car"]),
            excluded_service=_CAR_EXCLUDED_SERVICE,
        )
    msg = f"unknown vehicle profile {name!r}; known profiles: {', '.join(PROFILE_NAMES)}"
    raise UnknownProfileError(msg)


PROFILE_NAMES: Final[tuple[str, ...]] = ("motorbike", "car")


def get_profile(name: str, *, speeds_kph: Mapping[str, float] | None = None) -> Profile:
    """Return a built-in profile, with some class speeds overridden.

    Parameters
    ----------
    name
        ``"motorbike"`` (default for couriers) or ``"car"``.
    speeds_kph
        Highway class -> km/h replacing the table's values (e.g. ``{"track": 8}``
        for a rainy-season day).

    Returns
    -------
    profile

    Raises
    ------
    UnknownProfileError
        If ``name`` is not a built-in profile.
    """
    profile = _builtin(name)
    if speeds_kph:
        merged = dict(profile.speeds_kph)
        merged.update({str(k): float(v) for k, v in speeds_kph.items()})
        return Profile(
            name=profile.name,
            vehicle_keys=profile.vehicle_keys,
            oneway_keys=profile.oneway_keys,
            speeds_kph=MappingProxyType(merged),
            default_classes=profile.default_classes,
            explicit_classes=profile.explicit_classes,
            excluded_service=profile.excluded_service,
            refuse_motorroad=profile.refuse_motorroad,
        )
    return profile
