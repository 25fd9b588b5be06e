"""Re-planning a running day: what happened stays, what is on board stays, the checker agrees."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.model import Job, Load, TimeWindow
from routing.planner import DayPlan, PlanOptions, plan_day
from routing.replan import CourierState, DayChanges, Replan, ReplanOptions, StopProgress, replan
from routing.scenario import DayScenario, make_day
from routing.vocabulary import STARTED_STATUSES, StopStatus, UnassignedReason

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince

H = 3600


@pytest.fixture(scope="module")
def scenario(province: SyntheticProvince) -> DayScenario:
    return make_day(province, n_jobs=70, n_couriers=12, seed=11)


@pytest.fixture(scope="module")
def morning(
    province: SyntheticProvince, province_graph: CompactGraph, scenario: DayScenario
) -> DayPlan:
    options = PlanOptions(time_limit_s=2, workers=2, geometry=False)
    return plan_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=options,
    )


def live_states(day: DayPlan, now_s: int, fail_every: int) -> dict[str, CourierState]:
    """Play the morning plan until ``now_s``.

    Stops left before then are done (some failed), the stop being served at ``now_s`` is
    arrived, and every third courier has a GPS fix. A failed delivery stays on the motorbike,
    so a later pickup with no room left for it fails too (the plan counted on the handover).
    """
    states: dict[str, CourierState] = {}
    jobs = day.problem.job_by_id()
    couriers = day.problem.courier_by_id()
    for k, route in enumerate(day.plan.routes):
        progress = []
        load = day.problem.start_load(route.job_ids)
        capacity = couriers[route.courier_id].capacity
        for n, stop in enumerate(route.stops):
            job = jobs[stop.job_id]
            failed = bool(fail_every) and n % fail_every == fail_every - 1
            if job.kind == "pickup" and not (load + job.demand).fits_in(capacity):
                failed = True
            if stop.departure_s <= now_s:
                status = StopStatus.FAILED if failed else StopStatus.COMPLETED
                progress.append(StopProgress(stop.job_id, status, stop.departure_s))
            elif stop.arrival_s <= now_s:
                status = (
                    StopStatus.FAILED if failed and job.kind == "pickup" else StopStatus.ARRIVED
                )
                progress.append(StopProgress(stop.job_id, status, stop.arrival_s))
            else:
                break
            if not failed:
                load = load.serve(job.kind, job.demand)
        fix = None
        if k % 3 == 0 and progress:
            last = jobs[progress[-1].job_id]
            fix = (last.lon + 0.002, last.lat - 0.001)
        states[route.courier_id] = CourierState(
            route.courier_id, tuple(progress), position=fix, position_s=now_s if fix else None
        )
    return states


def urgent(day: DayPlan, k: int, kind: str, now_s: int) -> Job:
    """A new urgent job near an existing one."""
    near = day.problem.jobs[(k * 7) % len(day.problem.jobs)]
    return replace(
        near,
        job_id=f"URGENT-{k}",
        kind=kind,  # type: ignore[arg-type]
        lon=near.lon + 0.001,
        lat=near.lat + 0.001,
        pair_id=None,
        windows=(TimeWindow(now_s, 17 * H),),
        skills=frozenset(),
        priority=5,
        demand=Load(items=1, weight_g=800),
    )


def assert_sound(
    day: DayPlan, states: dict[str, CourierState], changes: DayChanges, out: Replan
) -> None:
    """The properties every re-plan keeps."""
    # The independent checker (partial routes: starts and frozen jobs) agrees.
    assert out.violations == []
    # Nothing served moves: each courier's frozen stops are their started stops, in order.
    started = {
        cid: [p.job_id for p in s.stops if p.status in STARTED_STATUSES]
        for cid, s in states.items()
    }
    order = {r.courier_id: r.job_ids for r in day.plan.routes}
    for cid, ids in started.items():
        assert list(out.frozen.get(cid, ())) == [j for j in order[cid] if j in ids]
    frozen = {j for ids in out.frozen.values() for j in ids}
    # Completeness: every job is frozen, on one remaining round, or unassigned with a reason.
    routed = [s.job_id for r in out.remaining.routes for s in r.stops]
    unassigned = [u.job_id for u in out.remaining.unassigned]
    assert not frozen & set(routed + unassigned)
    assert Counter(routed + unassigned + sorted(frozen)) == Counter(
        j.job_id for j in out.problem.jobs
    )
    assert {u.reason for u in out.remaining.unassigned} <= set(UnassignedReason)
    # A pair whose pickup is done is delivered by the courier who collected it (or not at all).
    partner = out.problem.pair_partner()
    owner = {s.job_id: r.courier_id for r in out.remaining.routes for s in r.stops}
    for cid, ids in out.frozen.items():
        for j in ids:
            other = partner.get(j)
            if out.problem.job_by_id()[j].kind == "pickup" and other in owner:
                assert owner[other] == cid
    # Loads on board never exceed capacity, and nothing is handed over that is not on board.
    couriers = out.problem.courier_by_id()
    for route in out.remaining.routes:
        cap = couriers[route.courier_id].capacity
        assert out.starts[route.courier_id].load.fits_in(cap)
        for stop in route.stops:
            assert stop.load_after.fits_in(cap)
    # Couriers who stop working get nothing after they stop; every round starts from now.
    for route in out.remaining.routes:
        stop_at = changes.unavailable.get(route.courier_id)
        if stop_at is not None:
            assert route.end_s <= max(stop_at, changes.now_s)
        assert route.start_s >= changes.now_s


def test_replan_at_eleven_with_urgent_jobs_and_a_courier_out(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """At 11:00 with urgent jobs, a courier out and a cancellation, the re-plan is sound.

    The stopped courier's jobs go elsewhere or say why, and untouched couriers keep theirs.
    """
    now = 11 * H
    states = live_states(morning, now, fail_every=4)
    busy = max(morning.plan.routes, key=lambda r: len(r.stops))
    out_courier = busy.courier_id
    remaining_of_out = [
        j for j in busy.job_ids if all(p.job_id != j for p in states[out_courier].stops)
    ]
    started = {p.job_id for s in states.values() for p in s.stops}
    cancelled = next(
        j
        for r in morning.plan.routes
        if r.courier_id != out_courier
        for j in r.job_ids[::-1]
        if j not in started
    )
    changes = DayChanges(
        now_s=now,
        new_jobs=(urgent(morning, 1, "pickup", now), urgent(morning, 2, "delivery", now)),
        cancelled=frozenset({cancelled}),
        unavailable={out_courier: now},
    )
    out = replan(
        morning.problem,
        morning.plan,
        states,
        changes,
        province_graph,
        closures=scenario.closures,
        options=ReplanOptions(time_limit_s=3, workers=2),
    )
    assert_sound(morning, states, changes, out)
    reasons = {u.job_id: u.reason for u in out.remaining.unassigned}
    assert reasons.get(cancelled) == UnassignedReason.CANCELLED
    on_rounds = {s.job_id for r in out.remaining.routes for s in r.stops}
    assert not any(r.courier_id == out_courier and r.stops for r in out.remaining.routes)
    for j in remaining_of_out:  # each of the stopped courier's jobs went elsewhere or says why
        assert j in on_rounds or j in reasons
    # The new delivery nobody carries is collected at its post office first.
    if "URGENT-2" in on_rounds:
        pickup = next(j for j in out.problem.jobs if j.job_id.startswith("URGENT-2@"))
        assert pickup.pair_id == out.problem.job_by_id()["URGENT-2"].pair_id
    # Stability: the couriers the changes did not touch keep their jobs.
    diff = {c.job_id: c for c in out.changes}
    touched = {out_courier} | {r.courier_id for r in morning.plan.routes if cancelled in r.job_ids}
    kept = [
        diff[j].kind == "kept"
        for r in morning.plan.routes
        if r.courier_id not in touched
        for j in r.job_ids
        if j in diff
    ]
    assert sum(kept) >= 0.9 * len(kept)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    now_h=st.floats(min_value=8.0, max_value=15.5),
    fail_every=st.integers(min_value=0, max_value=4),
    n_out=st.integers(min_value=0, max_value=2),
    n_new=st.integers(min_value=0, max_value=4),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_replan_properties(
    province_graph: CompactGraph,
    scenario: DayScenario,
    morning: DayPlan,
    now_h: float,
    fail_every: int,
    n_out: int,
    n_new: int,
    seed: int,
) -> None:
    """Whatever the time and the changes, a re-plan keeps the running day's rules.

    Served stops never move, pairs with a done pickup stay with their courier, loads stay
    within capacity, every job is accounted for, and the independent checker finds nothing.
    """
    now = int(now_h * H)
    states = live_states(morning, now, fail_every)
    routes = sorted(morning.plan.routes, key=lambda r: r.courier_id)
    out_ids = [routes[(seed + k * 5) % len(routes)].courier_id for k in range(n_out)]
    new = tuple(
        urgent(morning, seed + k, "pickup" if (seed + k) % 2 else "delivery", now)
        for k in range(n_new)
    )
    changes = DayChanges(
        now_s=now, new_jobs=new, unavailable={c: now + 1800 * k for k, c in enumerate(out_ids)}
    )
    out = replan(
        morning.problem,
        morning.plan,
        states,
        changes,
        province_graph,
        closures=scenario.closures,
        options=ReplanOptions(time_limit_s=1, workers=1, seed=seed),
    )
    assert_sound(morning, states, changes, out)


def test_big_offices_are_replanned_in_sound_pieces(
    province_graph: CompactGraph,
    scenario: DayScenario,
    morning: DayPlan,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut into pieces of a few jobs, a re-plan keeps every rule and every job's courier."""
    monkeypatch.setattr("routing.replan.MAX_PIECE_JOBS", 6)
    now = 10 * H
    states = live_states(morning, now, fail_every=5)
    changes = DayChanges(
        now_s=now, new_jobs=(urgent(morning, 3, "pickup", now), urgent(morning, 4, "delivery", now))
    )
    out = replan(
        morning.problem,
        morning.plan,
        states,
        changes,
        province_graph,
        closures=scenario.closures,
        options=ReplanOptions(time_limit_s=2, workers=2),
    )
    assert out.stats["pieces"] > out.stats["offices"]
    assert_sound(morning, states, changes, out)
