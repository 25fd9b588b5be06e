"""Urgent-job suggestions: ranked, checked, never silent about lateness, and accepted as ranked."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from geodata.matrix import Router
from geodata.snap import Snapper
from routing.edit import MatrixFn
from routing.model import Job, Load, TimeWindow
from routing.planner import DayPlan, PlanOptions, plan_day
from routing.replan import CourierState
from routing.scenario import make_day
from routing.suggest import insert_job, suggest_insertions
from tests.unit.routing.test_replan import (
    a_round_with_a_pair,
    delivered_before_pickup,
    live_states,
)

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince

H = 3600


@pytest.fixture(scope="module")
def morning(province: SyntheticProvince, province_graph: CompactGraph) -> DayPlan:
    scenario = make_day(province, n_jobs=50, n_couriers=10, seed=5)
    return plan_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=PlanOptions(time_limit_s=2, workers=2, geometry=False),
    )


@pytest.fixture(scope="module")
def matrix(province_graph: CompactGraph) -> MatrixFn:
    snapper, router = Snapper(province_graph), Router(province_graph, workers=1)

    def travel(lons, lats):  # type: ignore[no-untyped-def]
        m = router.matrix(snapper.snap(list(lons), list(lats)))
        return m.time_s, m.distance_m

    return travel


def _urgent(day: DayPlan, kind: str, now_s: int) -> Job:
    busiest = max(day.plan.routes, key=lambda r: len(r.stops))
    near = day.problem.job_by_id()[busiest.job_ids[len(busiest.stops) // 2]]
    return replace(
        near,
        job_id=f"URG-{kind}",
        kind=kind,  # type: ignore[arg-type]
        lon=near.lon + 0.001,
        lat=near.lat,
        pair_id=None,
        skills=frozenset(),
        windows=(TimeWindow(now_s, 17 * H),),
        demand=Load(items=1, weight_g=500),
        priority=5,
    )


@pytest.mark.parametrize(
    ("now_h", "kind"), [(7.0, "delivery"), (11.0, "delivery"), (11.0, "pickup")]
)
def test_suggestions_are_ranked_and_the_best_is_accepted(
    morning: DayPlan, matrix: MatrixFn, now_h: float, kind: str
) -> None:
    """Before the couriers leave or during the day, a job near a round gets a feasible place.

    Suggestions are sorted feasible-first then by minutes added; a delivery nobody carries
    yet goes via the post office once the courier has left; accepting the first one puts the
    job on that round at that position, timed from the courier's start.
    """
    now = int(now_h * H)
    states = live_states(morning, now, fail_every=0) if now_h > 7 else dict[str, CourierState]()
    job = _urgent(morning, kind, now)
    found = suggest_insertions(morning.problem, morning.plan, states, now, job, matrix)
    assert found
    keys = [(not s.feasible, s.added_s, s.eta_s) for s in found]
    assert keys == sorted(keys)
    best = found[0]
    assert best.feasible, best
    assert best.eta_s >= now
    assert best.via_office == (kind == "delivery" and now_h > 7)
    new_jobs, route, _start, frozen = insert_job(
        morning.problem,
        morning.plan,
        states,
        now,
        job,
        matrix,
        courier_id=best.courier_id,
        position=best.position,
    )
    ids = [s.job_id for s in route.stops]
    assert ids[best.position + len(new_jobs) - 1] == job.job_id
    assert {j.job_id for j in new_jobs} <= set(ids)
    assert route.start_s >= now or now_h == 7
    assert not set(frozen) & set(ids)
    stop = next(s for s in route.stops if s.job_id == job.job_id)
    assert stop.start_s == best.eta_s


def test_a_suggestion_that_makes_stops_late_says_which(morning: DayPlan, matrix: MatrixFn) -> None:
    """A job with a long service at the head of a busy round makes later stops late, and says so."""
    now = 8 * H
    states = live_states(morning, now, fail_every=0)
    slow = replace(_urgent(morning, "pickup", now), job_id="URG-slow", service_s=4 * H)
    found = suggest_insertions(morning.problem, morning.plan, states, now, slow, matrix, limit=100)
    late = [s for s in found if s.newly_late]
    assert late, "four hours at one stop must push somebody's later stops out of their windows"
    assert all(not s.feasible for s in late)


@pytest.mark.parametrize(("now_h", "fail_every"), [(7.0, 0), (10.0, 0), (11.0, 3)])
def test_pinned_rounds_give_the_same_suggestions(
    morning: DayPlan, province_graph: CompactGraph, now_h: float, fail_every: int
) -> None:
    """The service's pinned rounds rank every urgent job exactly as a full matrix per round does.

    Jobs near stops all over the day (couriers at the office, on the way, with GPS fixes),
    deliveries and pickups, asked one after the other so later ones reuse the pinned rounds.
    """
    from api.network import Network

    network = Network(province_graph)
    now = int(now_h * H)
    states = live_states(morning, now, fail_every=fail_every) if now_h > 7 else {}
    jobs = morning.problem.jobs
    for k in range(12):
        near = jobs[(k * 7) % len(jobs)]
        job = replace(
            _urgent(morning, "pickup" if k % 2 else "delivery", now),
            job_id=f"URG-same-{k}",
            lon=near.lon + 0.0008,
            lat=near.lat - 0.0004,
            depot_id=near.depot_id,
        )
        full = suggest_insertions(
            morning.problem, morning.plan, states, now, job, network.travel_matrix, limit=100
        )
        pinned = suggest_insertions(
            morning.problem,
            morning.plan,
            states,
            now,
            job,
            network.travel_matrix,
            limit=100,
            round_matrix=network.round_matrix,
        )
        assert pinned == full
        assert full
    # one pinned round per courier asked about, kept from one question to the next
    assert 0 < len(network._rounds) <= len(morning.problem.couriers)


def test_a_round_whose_delivery_was_reported_before_its_pickup_still_takes_a_job(
    morning: DayPlan, matrix: MatrixFn
) -> None:
    """The phone reported a pair's delivery done and not its pickup (taps out of order).

    The pickup stays a stop of its own: no suggestion on that round is refused as
    "delivered before its pickup" (every one of them was).
    """
    route, pickup, delivery = a_round_with_a_pair(morning)
    now = route.stops[route.job_ids.index(delivery)].departure_s + 1
    states = delivered_before_pickup(morning, route, pickup, now)
    cid = route.courier_id
    near = morning.problem.job_by_id()[delivery]
    job = replace(
        _urgent(morning, "pickup", now),
        lon=near.lon + 0.0008,
        lat=near.lat,
        depot_id=morning.problem.courier_by_id()[cid].depot_id,
    )
    found = suggest_insertions(morning.problem, morning.plan, states, now, job, matrix, limit=100)
    mine = [s for s in found if s.courier_id == cid]
    assert mine
    assert not any("before its pickup" in v for s in mine for v in s.violations)
