"""Re-planning a running day: what happened stays, what is on board stays, the checker agrees."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from routing.eta import haversine_m
from routing.model import UNREACHABLE, Job, Load, TimeWindow
from routing.planner import DayPlan, PlanOptions, plan_day
from routing.replan import (
    CourierState,
    DayChanges,
    Replan,
    ReplanOptions,
    StopProgress,
    replan,
    standing,
)
from routing.scenario import DayScenario, make_day
from routing.vocabulary import STARTED_STATUSES, StopStatus, UnassignedReason

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince

H = 3600


def re_plans(n: int) -> Any:
    """Hypothesis settings for ``n`` re-plans of the module's day (seconds each, shared fixtures)."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def replan_morning(
    morning: DayPlan,
    states: dict[str, CourierState],
    changes: DayChanges,
    graph: CompactGraph,
    scenario: DayScenario,
    **options: Any,
) -> Replan:
    """Re-plan the morning's plan from ``states`` with ``changes`` on the scenario's roads."""
    return replan(
        morning.problem,
        morning.plan,
        states,
        changes,
        graph,
        closures=scenario.closures,
        options=ReplanOptions(**options),
    )


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


def a_round_with_a_pair(day: DayPlan) -> tuple[Any, str, str]:
    """Return a round holding both halves of a pair, its pickup and its delivery."""
    jobs = day.problem.job_by_id()
    partner = day.problem.pair_partner()
    return next(
        (r, j, partner[j])
        for r in sorted(day.plan.routes, key=lambda r: r.courier_id)
        for j in r.job_ids
        if jobs[j].kind == "pickup" and j in partner and partner[j] in r.job_ids
    )


def delivered_before_pickup(
    day: DayPlan, route: Any, pickup: str, now_s: int
) -> dict[str, CourierState]:
    """Play the day until ``now_s``, the round's ``pickup`` never reported (taps out of order)."""
    states = live_states(day, now_s, fail_every=0)
    cid = route.courier_id
    states[cid] = replace(
        states[cid], stops=tuple(p for p in states[cid].stops if p.job_id != pickup)
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
    # Every piece's search found a plan (a courier whose round cannot end made it find none).
    assert UnassignedReason.TIME_LIMIT not in {u.reason for u in out.remaining.unassigned}
    # A pair whose pickup is done is delivered by the courier who collected it (or not at all).
    partner = out.problem.pair_partner()
    owner = {s.job_id: r.courier_id for r in out.remaining.routes for s in r.stops}
    for cid, ids in out.frozen.items():
        for j in ids:
            other = partner.get(j)
            if out.problem.job_by_id()[j].kind == "pickup" and other in owner:
                assert owner[other] == cid
    # So is a parcel loaded at the office by a courier who has served a stop since.
    jobs = out.problem.job_by_id()
    for route in day.plan.routes:
        if started[route.courier_id]:
            for j in route.job_ids:
                if jobs[j].loaded_at_depot and j in owner:
                    assert owner[j] == route.courier_id
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
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=3, workers=2
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


@re_plans(6)
@given(
    now_h=st.floats(min_value=8.0, max_value=15.5),
    fail_every=st.integers(min_value=0, max_value=4),
    n_out=st.integers(min_value=0, max_value=2),
    n_new=st.integers(min_value=0, max_value=4),
    seed=st.integers(min_value=0, max_value=1000),
)
# a courier settled on the way past their stopping time used to hand on what they carried
@example(now_h=12.0, fail_every=0, n_out=2, n_new=0, seed=882)
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
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=1, workers=1, seed=seed
    )
    assert_sound(morning, states, changes, out)


def reported_in_any_order(day: DayPlan, now_s: int, seed: int) -> dict[str, CourierState]:
    """Play the day until about ``now_s`` as phones report it: stops skipped, failed anywhere.

    Each courier has reached a stop or two more or fewer than planned by ``now_s``; of those,
    one in ten is never reported (skipped, or its tap still on the phone), a pair's pickup
    one in three (its delivery may come first), one in five failed, the last may be under
    way; a third of the couriers have a GPS fix near their last stop. A pickup with no room
    left fails.
    """
    rng = random.Random(seed)
    jobs = day.problem.job_by_id()
    couriers = day.problem.courier_by_id()
    states: dict[str, CourierState] = {}
    for route in day.plan.routes:
        reached = sum(s.arrival_s <= now_s for s in route.stops) + rng.randint(-2, 2)
        reached = max(0, min(len(route.stops), reached))
        load = day.problem.start_load(route.job_ids)
        progress = []
        for n, stop in enumerate(route.stops[:reached]):
            job, draw = jobs[stop.job_id], rng.random()
            if draw < (0.3 if job.pair_id and job.kind == "pickup" else 0.1):
                continue
            failed = draw < 0.3 or (
                job.kind == "pickup"
                and not (load + job.demand).fits_in(couriers[route.courier_id].capacity)
            )
            status = StopStatus.FAILED if failed else StopStatus.COMPLETED
            if n == reached - 1 and rng.random() < 0.3:
                status = StopStatus.ARRIVED if not failed else status
            at = stop.arrival_s if status == StopStatus.ARRIVED else stop.departure_s
            progress.append(StopProgress(stop.job_id, status, min(now_s, at)))
            if not failed:
                load = load.serve(job.kind, job.demand)
        fix = None
        if progress and rng.random() < 0.3:
            last = jobs[progress[-1].job_id]
            fix = (last.lon + rng.uniform(-0.01, 0.01), last.lat + rng.uniform(-0.01, 0.01))
        states[route.courier_id] = CourierState(
            route.courier_id, tuple(progress), position=fix, position_s=now_s if fix else None
        )
    return states


@re_plans(5)
@given(
    now_h=st.floats(min_value=8.0, max_value=16.5),
    seed=st.integers(min_value=0, max_value=10**6),
    n_out=st.integers(min_value=0, max_value=2),
)
def test_replan_keeps_its_rules_whatever_order_the_phones_report_in(
    province_graph: CompactGraph,
    scenario: DayScenario,
    morning: DayPlan,
    now_h: float,
    seed: int,
    n_out: int,
) -> None:
    """Stops skipped, failed anywhere, reported out of order: a re-plan is still sound.

    Random days of reports like these found a re-plan failing on half a pair (a delivery
    reported before its pickup) in 18 of 50 re-plans of a 150-job day. This day has one
    pair: forty examples found that failure on the code before the fix; the test runs five.
    """
    now = int(now_h * H)
    states = reported_in_any_order(morning, now, seed)
    routes = sorted(morning.plan.routes, key=lambda r: r.courier_id)
    out_ids = {routes[(seed + 5 * k) % len(routes)].courier_id for k in range(n_out)}
    changes = DayChanges(
        now_s=now, unavailable={c: now + 600 * k for k, c in enumerate(sorted(out_ids))}
    )
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=1, workers=1, seed=seed
    )
    assert_sound(morning, states, changes, out)


def test_a_courier_who_stops_before_reaching_the_next_stop_keeps_what_is_on_board(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """Between two stops, a courier stops working before the drive brings them to the next.

    They stand on the way (so they are still working at ``now``) but will not serve another
    stop: the parcels on their motorbike wait with them, unassigned with the reason, and
    nothing they carry goes to another courier (it used to, once the courier's start had
    moved past their stopping time).
    """
    jobs = scenario.problem.job_by_id()
    partner = scenario.problem.pair_partner()

    def on_board_after(route: Any, k: int) -> set[str]:
        """Jobs only this courier can serve once they have served their first ``k`` stops."""
        served = set(route.job_ids[:k])
        return {
            j
            for j in route.job_ids[k:]
            if jobs[j].loaded_at_depot or (partner.get(j) in served and jobs[j].kind == "delivery")
        }

    # A leg of a round with parcels on board and a drive of over two minutes.
    route, k = next(
        (r, k)
        for r in sorted(morning.plan.routes, key=lambda r: r.courier_id)
        for k in range(1, len(r.stops))
        if r.stops[k].arrival_s - r.stops[k - 1].departure_s > 120 and on_board_after(r, k)
    )
    now = route.stops[k - 1].departure_s + 1
    states = live_states(morning, now, fail_every=0)
    cid = route.courier_id
    assert [p.job_id for p in states[cid].stops] == route.job_ids[:k]
    changes = DayChanges(now_s=now, unavailable={cid: now + 60})
    out = replan_morning(morning, states, changes, province_graph, scenario, time_limit_s=2)
    assert_sound(morning, states, changes, out)
    reasons = {u.job_id: u.reason for u in out.remaining.unassigned}
    for j in on_board_after(route, k):
        assert reasons.get(j) == UnassignedReason.COURIER_UNAVAILABLE, j
    assert not any(r.courier_id == cid and r.stops for r in out.remaining.routes)


def test_a_courier_who_stops_before_they_could_get_back_leaves_the_others_a_plan(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """A courier serving a stop far out stops working half a minute after that service.

    No round of theirs can end at the post office in time. Their post office's whole search
    used to find no plan, and their colleagues' jobs came back ``time_limit``; now they get no
    round, what is on board waits with them, and the others are planned as usual.
    """
    jobs = morning.problem.job_by_id()
    depots = morning.problem.depot_by_id()
    office_of = {c.courier_id: c.depot_id for c in morning.problem.couriers}
    colleagues = Counter(office_of[r.courier_id] for r in morning.plan.routes if r.stops)

    def far(route: Any, k: int) -> float:
        job, home = jobs[route.stops[k].job_id], depots[office_of[route.courier_id]]
        return haversine_m(job.lon, job.lat, home.lon, home.lat)

    # The stop farthest from its post office on a round of an office with other rounds.
    route, k = max(
        (
            (r, k)
            for r in morning.plan.routes
            if colleagues[office_of[r.courier_id]] > 1
            for k in range(len(r.stops) - 1)
            if any(j.loaded_at_depot for j in map(jobs.get, r.job_ids[k + 1 :]) if j)
        ),
        key=lambda rk: far(*rk),
    )
    assert far(route, k) > 2000
    stop = route.stops[k]
    now = stop.arrival_s + 1
    states = live_states(morning, now, fail_every=0)
    cid = route.courier_id
    changes = DayChanges(now_s=now, unavailable={cid: now})
    courier = morning.problem.courier_by_id()[cid]
    free_s = standing(morning.problem, courier, route, states[cid], changes).time_s
    changes = DayChanges(now_s=now, unavailable={cid: free_s + 30})
    out = replan_morning(morning, states, changes, province_graph, scenario, time_limit_s=2)
    assert_sound(morning, states, changes, out)
    reasons = {u.job_id: u for u in out.remaining.unassigned}
    on_board = [j for j in route.job_ids[k + 1 :] if jobs[j].loaded_at_depot]
    for j in on_board:
        assert reasons[j].reason == UnassignedReason.COURIER_UNAVAILABLE, reasons.get(j)
        assert cid in reasons[j].detail
    assert not any(r.courier_id == cid and r.stops for r in out.remaining.routes)
    # The colleagues' own jobs not yet served are still on their rounds.
    office = office_of[cid]
    served = {j for ids in out.frozen.values() for j in ids}
    others = [
        j
        for r in morning.plan.routes
        if office_of[r.courier_id] == office and r.courier_id != cid
        for j in r.job_ids
        if j not in served
    ]
    on_rounds = {s.job_id for r in out.remaining.routes for s in r.stops}
    assert others
    assert sum(j in on_rounds for j in others) >= 0.9 * len(others)


def test_a_delivery_done_after_its_pickup_failed_is_taken_as_it_comes(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """The phone says a pair's pickup failed and its delivery was done all the same.

    The delivery handed over nothing the courier carried (the citizen brought the dossier
    to the post office): with nothing else on board, the re-plan used to fail on a load
    below nothing.
    """
    jobs = morning.problem.job_by_id()
    route, pickup, delivery = a_round_with_a_pair(morning)
    now = route.stops[-1].departure_s + 1  # the round is over; every pickup of it failed
    states = live_states(morning, now, fail_every=0)
    cid = route.courier_id
    stops = tuple(
        replace(p, status=StopStatus.FAILED) if jobs[p.job_id].kind == "pickup" else p
        for p in states[cid].stops
    )
    assert {p.job_id: p.status for p in stops}[delivery] == StopStatus.COMPLETED
    states[cid] = replace(states[cid], stops=stops)
    changes = DayChanges(now_s=now)
    out = replan_morning(morning, states, changes, province_graph, scenario, time_limit_s=1)
    assert_sound(morning, states, changes, out)
    courier = morning.problem.courier_by_id()[cid]
    on_board = standing(morning.problem, courier, route, states[cid], changes).load
    assert on_board.fits_in(courier.capacity)
    assert {pickup, delivery} <= set(out.frozen[cid])


def test_a_delivery_reported_before_its_pickup_leaves_the_pickup_to_make(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """The phone reports a pair's delivery done while its pickup is still to make.

    Taps out of order (the pickup skipped, or its tap still on the phone): the pickup stays
    a stop of its own, and the re-plan used to fail building the office's problem with half
    a pair (or, with the pair kept, report "delivered before its pickup").
    """
    route, pickup, delivery = a_round_with_a_pair(morning)
    now = route.stops[route.job_ids.index(delivery)].departure_s + 1
    states = delivered_before_pickup(morning, route, pickup, now)
    cid = route.courier_id
    changes = DayChanges(now_s=now)
    out = replan_morning(morning, states, changes, province_graph, scenario, time_limit_s=1)
    assert_sound(morning, states, changes, out)
    assert delivery in out.frozen[cid]
    on_round = {s.job_id: r.courier_id for r in out.remaining.routes for s in r.stops}
    reasons = {u.job_id: u.reason for u in out.remaining.unassigned}
    assert pickup in on_round or pickup in reasons


def test_a_short_replan_of_many_offices_on_one_process_keeps_to_its_time(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """A 1 s re-plan of every post office, one after the other, takes about a second.

    Each piece used to get a second at least: nine offices on one process took 9 s.
    """
    now = 9 * H
    states = live_states(morning, now, fail_every=3)
    out = replan_morning(
        morning, states, DayChanges(now_s=now), province_graph, scenario, time_limit_s=1, workers=1
    )
    assert out.stats["pieces"] >= 4
    assert out.stats["timings"]["total_s"] < 3
    assert out.violations == []


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
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=2, workers=2
    )
    assert out.stats["pieces"] > out.stats["offices"]
    assert_sound(morning, states, changes, out)


def test_a_courier_cut_off_by_a_closure_gets_no_round_and_the_others_do(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """A landslide around where a courier stands cuts them off from their post office.

    They get no remaining round and what they carry is unassigned as unreachable; the other
    couriers of their post office are still re-planned (a courier who cannot get home used
    to make their whole office unsolvable, every job left out).
    """
    from shapely.geometry import Point

    from geodata.closures import Closure

    now = 11 * H
    states = live_states(morning, now, fail_every=0)
    states = {c: replace(s, position=None, position_s=None) for c, s in states.items()}
    jobs = morning.problem.job_by_id()
    couriers = morning.problem.courier_by_id()
    reached = {cid: [p.job_id for p in s.stops] for cid, s in states.items() if s.stops}
    route_of = {r.courier_id: r for r in morning.plan.routes}
    office_of = {cid: couriers[cid].depot_id for cid in couriers}

    def on_board(cid: str) -> list[str]:
        """Deliveries loaded in the morning and not yet handed over."""
        return [
            j for j in route_of[cid].job_ids if j not in reached[cid] and jobs[j].loaded_at_depot
        ]

    cut = next(
        cid
        for cid in sorted(reached)
        if on_board(cid) and sum(office_of[c] == office_of[cid] for c in reached) >= 2
    )
    here = jobs[reached[cut][-1]]
    landslide = Closure("landslide", geometry=Point(here.lon, here.lat).buffer(0.004))
    changes = DayChanges(now_s=now, closures=(landslide,))
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=3, workers=2
    )
    assert_sound(morning, states, changes, out)
    assert not any(r.courier_id == cut and r.stops for r in out.remaining.routes)
    reasons = {u.job_id: u.reason for u in out.remaining.unassigned}
    for j in on_board(cut):
        assert reasons.get(j) == UnassignedReason.UNREACHABLE, (j, reasons.get(j))
    others = {c for c in reached if office_of[c] == office_of[cut] and c != cut}
    assert any(r.courier_id in others and r.stops for r in out.remaining.routes)


def test_a_courier_between_stops_is_timed_from_where_the_drive_brings_them(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """A courier who left their last stop and sent no fix is on the way to their next one.

    With nothing changed, each such courier's next stop is reached when the morning plan
    said (the drive since they left counts), not a whole drive after ``now`` as if they
    had waited at the last stop; the re-plan is sound.
    """
    now = 11 * H
    states = live_states(morning, now, fail_every=0)
    states = {c: replace(s, position=None, position_s=None) for c, s in states.items()}
    on_the_way = {}  # courier -> (next stop, its planned arrival)
    for route in morning.plan.routes:
        reached = [s for s in route.stops if s.arrival_s <= now]
        ahead = [s for s in route.stops if s.arrival_s > now]
        if reached and ahead and reached[-1].departure_s < now:
            on_the_way[route.courier_id] = (ahead[0].job_id, ahead[0].arrival_s)
    assert on_the_way, "the morning plan should have couriers between stops at 11:00"
    changes = DayChanges(now_s=now)
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=2, workers=2
    )
    assert_sound(morning, states, changes, out)
    compared = 0
    for route in out.remaining.routes:
        if route.courier_id not in on_the_way or not route.stops:
            continue
        nxt, planned = on_the_way[route.courier_id]
        assert out.starts[route.courier_id].time_s >= now
        if route.stops[0].job_id == nxt:
            compared += 1
            assert route.stops[0].arrival_s == planned, (route.courier_id, nxt)
    assert compared > 0


def test_a_fix_far_from_every_road_starts_the_courier_at_the_stop_they_reached_last(
    province_graph: CompactGraph, scenario: DayScenario, morning: DayPlan
) -> None:
    """A GPS fix no road reaches (in Hanoi) is dropped for the stop the courier reached last.

    The phones reported the round's second stop done, then its first reached (the courier
    went back): the courier is serving the first, not at the second, which comes later in
    the round. The remaining round starts when that service ends (at the fix's time before).
    """
    now = 11 * H
    states = live_states(morning, now, fail_every=0)
    jobs = morning.problem.job_by_id()
    route = next(
        r
        for r in sorted(morning.plan.routes, key=lambda r: r.courier_id)
        if len(r.stops) >= 3 and r.stops[1].departure_s <= now - 120
    )
    first, second = route.stops[0].job_id, route.stops[1].job_id
    states[route.courier_id] = CourierState(
        route.courier_id,
        (
            StopProgress(second, StopStatus.COMPLETED, now - 120),
            StopProgress(first, StopStatus.ARRIVED, now - 60),
        ),
        position=(105.85, 21.03),
        position_s=now,
    )
    changes = DayChanges(now_s=now)
    out = replan_morning(
        morning, states, changes, province_graph, scenario, time_limit_s=2, workers=2
    )
    assert_sound(morning, states, changes, out)
    assert out.starts[route.courier_id].time_s == now - 60 + jobs[first].service_s


def test_a_fix_off_the_couriers_way_is_not_trusted() -> None:
    """A GPS fix from which the way to the next stop is a long detour falls back to the drive.

    On the way (through the fix no longer than the leg plus the slack), the fix places the
    courier at ``now``; off the way, the courier is at the next stop when the drive since
    leaving the last one brings them there; a fix cut off from the next stop is kept.
    """
    from routing.model import Courier
    from routing.replan import FIX_DETOUR_S, Standing

    courier = Courier(
        courier_id="C1", depot_id="D1", shift=TimeWindow(7 * H, 17 * H), capacity=Load(items=10)
    )
    now = 11 * H

    def on_the_road() -> Standing:
        return Standing(
            courier=courier,
            frozen=["A"],
            remaining=["B", "C"],
            left=True,
            available_until=None,
            location=(108.0, 14.0),
            location_job=None,
            time_s=now,
            load=Load(),
            pinned=set(),
            break_taken=True,
            came_from="A",
            came_from_location=(107.9, 14.0),
            came_from_s=now,
            left_at_s=now - 1200,
            on_fix=True,
        )

    kept = on_the_road()
    kept.settle(
        now,
        (108.1, 14.0),
        last_to_next_s=3000,
        last_to_fix_s=1000,
        fix_to_next_s=2000 + FIX_DETOUR_S,
    )
    assert (kept.on_fix, kept.location, kept.location_job, kept.time_s) == (
        True,
        (108.0, 14.0),
        None,
        now,
    )
    off = on_the_road()
    off.settle(
        now,
        (108.1, 14.0),
        last_to_next_s=3000,
        last_to_fix_s=1000,
        fix_to_next_s=2001 + FIX_DETOUR_S,
    )
    assert (off.on_fix, off.location, off.location_job) == (False, (108.1, 14.0), "B")
    assert off.time_s == now - 1200 + 3000
    cut = on_the_road()
    cut.settle(
        now, (108.1, 14.0), last_to_next_s=3000, last_to_fix_s=1000, fix_to_next_s=UNREACHABLE
    )
    assert (cut.on_fix, cut.location_job, cut.time_s) == (True, None, now)
    late = on_the_road()  # should have been there already: there now
    late.on_fix = False
    late.settle(now, (108.1, 14.0), last_to_next_s=600)
    assert (late.location_job, late.time_s) == ("B", now)
