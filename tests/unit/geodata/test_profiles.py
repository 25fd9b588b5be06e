"""Vehicle profiles: access rules, one-way overrides and speeds."""

from __future__ import annotations

import pytest

from geodata.errors import UnknownProfileError
from geodata.profiles import get_profile, parse_maxspeed_kph

MOTORBIKE = get_profile("motorbike")
CAR = get_profile("car")


@pytest.mark.parametrize(
    ("tags", "motorbike", "car"),
    [
        ({"highway": "residential"}, True, True),
        ({"highway": "service", "service": "alley"}, True, False),
        ({"highway": "service", "motorcar": "no"}, True, False),
        ({"highway": "track"}, True, False),
        ({"highway": "path"}, False, False),
        ({"highway": "path", "motorcycle": "yes"}, True, False),
        ({"highway": "footway", "motor_vehicle": "yes"}, True, False),
        ({"highway": "motorway"}, False, True),
        ({"highway": "primary", "motorroad": "yes"}, False, True),
        ({"highway": "residential", "motorcycle": "no"}, False, True),
        ({"highway": "residential", "access": "private"}, False, False),
        ({"highway": "residential", "access": "no", "motorcycle": "yes"}, True, False),
        ({"highway": "residential", "motor_vehicle": "no"}, False, False),
        ({"highway": "steps", "motorcycle": "yes"}, False, False),
        ({"highway": "pedestrian", "area": "yes"}, False, False),
        ({"building": "yes"}, False, False),
    ],
)
def test_access(tags: dict[str, str], motorbike: bool, car: bool) -> None:
    """The most specific access tag decides; expressways are closed to motorbikes."""
    assert MOTORBIKE.allows(tags) is motorbike
    assert CAR.allows(tags) is car


@pytest.mark.parametrize(
    ("tags", "motorbike", "car"),
    [
        ({"oneway": "yes"}, "forward", "forward"),
        ({"oneway": "yes", "oneway:motorcycle": "no"}, "both", "forward"),
        ({"oneway": "-1"}, "backward", "backward"),
        ({"junction": "roundabout"}, "forward", "forward"),
        ({"oneway": "no"}, "both", "both"),
        ({}, "both", "both"),
    ],
)
def test_direction(tags: dict[str, str], motorbike: str, car: str) -> None:
    """oneway:motorcycle overrides oneway for motorbikes only."""
    assert MOTORBIKE.direction(tags) == motorbike
    assert CAR.direction(tags) == car


def test_speeds_are_slower_off_the_tarmac() -> None:
    """Unpaved and broken surfaces slow a motorbike; maxspeed caps it."""
    paved = MOTORBIKE.speed_kph({"highway": "tertiary"})
    assert MOTORBIKE.speed_kph({"highway": "tertiary", "surface": "dirt"}) < paved
    assert MOTORBIKE.speed_kph({"highway": "tertiary", "smoothness": "bad"}) < paved
    assert MOTORBIKE.speed_kph({"highway": "trunk", "maxspeed": "30"}) == 30
    assert 10 <= MOTORBIKE.speed_kph({"highway": "track", "surface": "dirt"}) <= 15


def test_speed_overrides() -> None:
    """A user may override a class speed without touching the others."""
    rainy = get_profile("motorbike", speeds_kph={"track": 6})
    assert rainy.speed_kph({"highway": "track"}) == 6
    assert rainy.speed_kph({"highway": "trunk"}) == MOTORBIKE.speed_kph({"highway": "trunk"})
    with pytest.raises(ValueError, match="positive"):
        get_profile("motorbike", speeds_kph={"track": 0})


def test_unknown_profile() -> None:
    """An unknown profile name is a clear error listing the known ones."""
    with pytest.raises(UnknownProfileError, match="motorbike"):
        get_profile("tractor")


@pytest.mark.parametrize(
    ("raw", "kph"),
    [("50", 50.0), ("30 mph", 48.28032), (["40", "60"], 40.0), ("walk", None), (None, None)],
)
def test_parse_maxspeed(raw: object, kph: float | None) -> None:
    """Maxspeed parses numbers, mph and lists; anything else is ignored."""
    got = parse_maxspeed_kph(raw)
    assert got == (pytest.approx(kph) if kph is not None else None)
