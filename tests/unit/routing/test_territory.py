"""Territory: learning each commune's usual courier, preferring it, and measuring the share."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

import pytest

from geodata.synthetic import make_communes
from geodata.zones import assign_zones
from routing.model import Job, Problem, TimeWindow
from routing.plan import Plan, Route, Stop
from routing.planner import PlanOptions, plan_day
from routing.scenario import make_day
from routing.territory import (
    Territory,
    job_areas,
    learn_territory,
    preferred_couriers,
    served_by,
    territory_share,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince


def job(job_id: str, zone: str | None = None, **kw: object) -> Job:
    return Job(
        job_id=job_id,
        kind=kw.pop("kind", "delivery"),  # type: ignore[arg-type]
        lon=108.0,
        lat=14.35,
        windows=(TimeWindow(8 * 3600, 17 * 3600),),
        service_s=60,
        zone_id=zone,
        **kw,  # type: ignore[arg-type]
    )


def plan_of(rounds: dict[str, list[str]]) -> Plan:
    """A plan with the given rounds (times do not matter to territory)."""
    from routing.model import Load

    routes = tuple(
        Route(
            courier_id=c,
            depot_id="BC",
            start_s=0,
            end_s=0,
            stops=tuple(Stop(j, 0, 0, 0, 0, 0, Load()) for j in jobs),
            distance_m=0,
            driving_s=0,
            working_s=0,
            waiting_s=0,
        )
        for c, jobs in rounds.items()
    )
    return Plan(routes, (), 0)


def day(
    rounds: dict[str, list[str]], areas: dict[str, str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    return served_by(plan_of(rounds)), dict(areas)


def test_usual_courier_is_the_one_who_served_most_jobs_of_the_commune() -> None:
    """Counts add up over days; the usual courier has the most jobs, with its share."""
    t = learn_territory(
        [
            day({"A": ["1", "2"], "B": ["3"]}, {"1": "X", "2": "X", "3": "X"}),
            day({"A": ["4"], "B": ["5", "6"]}, {"4": "X", "5": "Y", "6": "Y"}),
        ]
    )
    assert t.days == 2
    assert t.counts == {"X": {"A": 3, "B": 1}, "Y": {"B": 2}}
    assert t.usual("X") == "A"
    assert t.usual_share("X") == pytest.approx(0.75)
    assert t.usual("Y") == "B"
    assert t.usual("Z") is None
    assert t.usual(None) is None
    assert t.usual_couriers() == {"X": "A", "Y": "B"}


def test_ties_go_to_the_most_recent_courier_then_by_id() -> None:
    """Equal counts: whoever served the commune on a later day wins; same day: the smaller id."""
    t = learn_territory(
        [
            day({"B": ["1"], "C": ["9"]}, {"1": "X", "9": "W"}),
            day({"A": ["2"], "C": ["8"], "D": ["7"]}, {"2": "X", "8": "W", "7": "W"}),
        ]
    )
    assert t.usual("X") == "A"  # A and B one job each; A served it later
    # C: 2 jobs; D: 1 job on the last day -> C still has more
    assert t.usual("W") == "C"
    same_day = learn_territory([day({"Q": ["1"], "P": ["2"]}, {"1": "X", "2": "X"})])
    assert same_day.usual("X") == "P"


def test_a_courier_no_longer_working_hands_the_commune_to_the_next() -> None:
    """The usual courier absent today: the next courier by jobs served takes the preference."""
    t = learn_territory(
        [day({"A": ["1", "2", "3"], "B": ["4", "5"], "C": ["6"]}, dict.fromkeys("123456", "X"))]
    )
    assert t.usual("X") == "A"
    assert t.usual("X", among={"B", "C"}) == "B"
    assert t.usual("X", among={"D"}) is None
    areas = {"n1": "X", "n2": "X", "n3": None, "n4": "unknown"}
    assert preferred_couriers(t, areas, ["B", "C"]) == {"n1": "B", "n2": "B"}
    assert preferred_couriers(t, areas, ["D"]) == {}


def test_a_commune_with_no_clear_owner_gets_no_preference() -> None:
    """A zone shared evenly by many couriers (a whole office) prefers nobody."""
    rounds = {c: [f"{c}{k}" for k in range(3)] for c in "ABCDE"}
    areas = {j: "OFFICE" for js in rounds.values() for j in js}
    t = learn_territory([day(rounds, areas)])
    assert t.usual_share("OFFICE") == pytest.approx(0.2)
    assert preferred_couriers(t, {"new": "OFFICE"}, list("ABCDE")) == {}
    assert preferred_couriers(t, {"new": "OFFICE"}, list("ABCDE"), min_share=0.2) == {"new": "A"}
    with pytest.raises(ValueError, match="min_share"):
        preferred_couriers(t, {}, [], min_share=1.5)


def test_pairs_take_the_area_of_their_pickup() -> None:
    """The delivery half of a transfer (at the one-stop centre) counts in its pickup's commune."""
    jobs = [
        job("P", "VILLAGE", kind="pickup", pair_id="T1"),
        job("D", "CENTRE", kind="delivery", pair_id="T1"),
        job("S", None),
    ]
    assert job_areas(jobs) == {"P": "VILLAGE", "D": "VILLAGE", "S": None}
    assert job_areas(jobs, {"S": "TOWN", "P": "OTHER"})["D"] == "OTHER"


def test_share_counts_only_jobs_whose_commune_has_a_usual_courier() -> None:
    """Routed jobs with a usual courier are the denominator; the usual courier's are the share."""
    t = Territory({"X": {"A": 2}, "Y": {"B": 1}}, {"X": {"A": 0}, "Y": {"B": 0}}, 1)
    plan = plan_of({"A": ["1", "2", "3"], "B": ["4"]})
    share = territory_share(plan, {"1": "X", "2": "Y", "3": None, "4": "Y"}, t)
    assert (share.routed, share.known, share.by_usual) == (4, 3, 2)
    assert share.share == pytest.approx(2 / 3)
    assert territory_share(plan, {}, t).share is None


# -- the planner honours the preference ------------------------------------------------------


@pytest.fixture(scope="module")
def communes(province: SyntheticProvince) -> gpd.GeoDataFrame:
    return make_communes(province)


def town_day(
    province: SyntheticProvince, communes: gpd.GeoDataFrame, seed: int, couriers: int = 5
) -> Problem:
    """About 40 unpaired jobs in Kon Tum's communes, one office and its couriers."""
    sc = make_day(province, n_jobs=160, n_couriers=16, seed=seed, impossible=False)
    p = sc.problem
    zones = assign_zones(communes, [j.lon for j in p.jobs], [j.lat for j in p.jobs]).zone_id
    jobs = [
        replace(j, zone_id=z)
        for j, z in zip(p.jobs, zones, strict=True)
        if z is not None and z.startswith("C-KONTUM") and j.pair_id is None
    ][:40]
    office = next(d for d in p.depots if d.depot_id == "BC-KONTUM")
    crew = [replace(c, courier_id=f"KT-{k}") for k, c in enumerate(p.couriers[:couriers])]
    crew = [replace(c, depot_id=office.depot_id) for c in crew]
    return Problem((office,), tuple(crew), tuple(jobs), day=date(2026, 11, 2 + seed))


def test_communes_nest_in_office_zones(
    province: SyntheticProvince, communes: gpd.GeoDataFrame
) -> None:
    """Every commune lies in its office's zone and carries that office; ids are unique."""
    assert communes["zone_id"].is_unique
    zones = province.zones.set_index("zone_id")
    for row in communes.itertuples():
        cell = zones.loc[f"Z-{str(row.depot_id).removeprefix('BC-')}", "geometry"]
        assert row.geometry.difference(cell).area < 1e-9
    assert (communes["depot_id"] == "BC-KONTUM").sum() >= 7


def test_preferring_usual_couriers_raises_their_share(
    province: SyntheticProvince, province_graph: CompactGraph, communes: gpd.GeoDataFrame
) -> None:
    """Day 2 planned with day 1's territory gives more jobs to their usual courier; plans stay sound."""
    opts = PlanOptions(piece_time_limit_s=0.5, workers=1, geometry=False, seed=1)
    first = town_day(province, communes, seed=1)
    history = plan_day(first, province_graph, options=opts)
    assert not history.violations
    learned = learn_territory([(served_by(history.plan), job_areas(first.jobs))])
    second = town_day(province, communes, seed=2)
    second = replace(second, couriers=first.couriers)
    areas = job_areas(second.jobs)
    preferred = preferred_couriers(learned, areas, [c.courier_id for c in second.couriers])
    assert len(preferred) >= 30
    plain = plan_day(second, province_graph, options=opts)
    kept = plan_day(second, province_graph, options=opts, preferred=preferred)
    for result in (plain, kept):
        assert not result.violations  # checker and completeness
    before = territory_share(plain.plan, areas, learned).share
    after = territory_share(kept.plan, areas, learned).share
    assert before is not None
    assert after is not None
    assert after >= 0.6
    assert after > before
    assert len(kept.plan.assigned_job_ids()) >= len(plain.plan.assigned_job_ids()) - 1


def test_couriers_go_to_the_piece_holding_their_usual_jobs(
    province: SyntheticProvince, province_graph: CompactGraph, communes: gpd.GeoDataFrame
) -> None:
    """When an office is split, each preferred courier sits in the piece with their jobs.

    A job whose courier sits in another piece follows them there, as room allows.
    """
    problem = town_day(province, communes, seed=3, couriers=6)
    opts = PlanOptions(piece_time_limit_s=0.2, workers=1, geometry=False, max_jobs_per_piece=16)
    plain = plan_day(problem, province_graph, options=opts)
    assert len(plain.pieces) >= 3
    # the last courier of the list is preferred by every job of the first piece, the first
    # courier by every job of the last piece: list order would put them the other way round
    first, last = plain.pieces[0].piece.problem.jobs, plain.pieces[-1].piece.problem.jobs
    a, z = problem.couriers[-1].courier_id, problem.couriers[0].courier_id
    preferred = {j.job_id: a for j in first} | {j.job_id: z for j in last}
    stray = last[-1].job_id  # z keeps the last piece; this one of its jobs prefers a
    preferred[stray] = a
    kept = plan_day(problem, province_graph, options=opts, preferred=preferred)
    crew_of = {
        c.courier_id: r.piece.piece_id for r in kept.pieces for c in r.piece.problem.couriers
    }
    piece_of = {j.job_id: r.piece.piece_id for r in kept.pieces for j in r.piece.problem.jobs}
    assert crew_of[a] == piece_of[first[0].job_id]
    assert crew_of[z] == piece_of[last[0].job_id]
    assert piece_of[stray] == crew_of[a]
    assert all(len(r.piece.problem.jobs) <= 16 for r in kept.pieces)
    assert sorted(piece_of) == sorted(j.job_id for j in problem.jobs)
    assert sorted(crew_of) == sorted(c.courier_id for c in problem.couriers)
    assert not kept.violations
