from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from routing.check import Violation, check_plan
from routing.model import UNREACHABLE, Load, Problem
from routing.plan import Plan, Unassigned
from tests.unit.routing.helpers import H, courier, depot, job, matrices, plan_from_sequences


def _problem(**courier_kw: object) -> Problem:
    jobs = (
        job("a", 1, 0, demand=Load(items=1)),
        job("b", 2, 0, demand=Load(items=1, cash_vnd=2_000_000)),
        job("p", 0, 1, kind="pickup", pair_id="x", demand=Load(items=1)),
        job("q", 0, 2, kind="delivery", pair_id="x", demand=Load(items=1)),
        job("s", 3, 3, demand=Load(items=1), skills=frozenset({"cash"})),
        job("w", 1, 1, kind="pickup", windows=((7 * H, 7 * H + 600),), demand=Load(items=1)),
    )
    return Problem(
        (depot(),),
        (courier("c0", skills=frozenset({"cash"}), **courier_kw), courier("c1")),  # type: ignore[arg-type]
        jobs,
    )


def _kinds(violations: list[Violation]) -> set[str]:
    return {v.kind for v in violations}


@pytest.fixture
def setup() -> tuple[Problem, np.ndarray, np.ndarray, Plan]:
    problem = _problem()
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["w", "a", "s"], "c1": ["p", "q", "b"]}, dur, dist)
    return problem, dur, dist, plan


def test_valid_hand_made_plan_passes(setup: tuple[Problem, np.ndarray, np.ndarray, Plan]) -> None:
    """A plan built by hand within every rule has no violation."""
    problem, dur, dist, plan = setup
    assert check_plan(problem, plan, dur, dist) == []


def test_coverage_missing_and_duplicate(
    setup: tuple[Problem, np.ndarray, np.ndarray, Plan],
) -> None:
    """A job neither routed nor unassigned, or routed and unassigned, is a coverage violation."""
    problem, dur, dist, plan = setup
    r0 = plan.routes[0]
    missing = replace(plan, routes=(replace(r0, stops=r0.stops[:-1]), plan.routes[1]))
    assert "coverage" in _kinds(check_plan(problem, missing, dur, dist))
    twice = replace(plan, unassigned=(Unassigned("a", "unreachable"),))
    assert "coverage" in _kinds(check_plan(problem, twice, dur, dist))


def test_window_and_travel_time(setup: tuple[Problem, np.ndarray, np.ndarray, Plan]) -> None:
    """Late service is a window violation; starting before one can arrive is a travel violation."""
    problem, dur, dist, plan = setup
    late = plan_from_sequences(problem, {"c0": ["a", "s", "w"], "c1": ["p", "q", "b"]}, dur, dist)
    found = check_plan(problem, late, dur, dist)
    assert "window" in _kinds(found)
    assert any(v.job_id == "w" for v in found)
    r0 = plan.routes[0]
    stop = r0.stops[1]
    early = replace(
        stop,
        arrival_s=stop.arrival_s - 60,
        start_s=stop.start_s - 60,
        departure_s=stop.departure_s - 60,
    )
    tampered = replace(
        plan, routes=(replace(r0, stops=(r0.stops[0], early, r0.stops[2])), plan.routes[1])
    )
    assert "travel_time" in _kinds(check_plan(problem, tampered, dur, dist))


def test_capacity_and_cash_ceiling() -> None:
    """Items over capacity and payout cash over the ceiling are both capacity violations."""
    problem = _problem(capacity=Load(items=1, weight_g=10**6, cash_vnd=1_000_000))
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["w", "a", "s", "b"], "c1": ["p", "q"]}, dur, dist)
    found = check_plan(problem, plan, dur, dist)
    details = " ".join(v.detail for v in found if v.kind == "capacity")
    assert "items" in details
    assert "cash_vnd" in details


def test_pairs_order_split_and_half(setup: tuple[Problem, np.ndarray, np.ndarray, Plan]) -> None:
    """A pair must be on one route, pickup first, or wholly unassigned."""
    problem, dur, dist, _ = setup
    order = plan_from_sequences(problem, {"c0": ["w", "a", "s"], "c1": ["q", "p", "b"]}, dur, dist)
    assert "pair" in _kinds(check_plan(problem, order, dur, dist))
    split = plan_from_sequences(problem, {"c0": ["w", "a", "s", "p"], "c1": ["q", "b"]}, dur, dist)
    assert "pair" in _kinds(check_plan(problem, split, dur, dist))
    half = plan_from_sequences(problem, {"c0": ["w", "a", "s"], "c1": ["p", "b"]}, dur, dist)
    assert "pair" in _kinds(check_plan(problem, half, dur, dist))


def test_skill(setup: tuple[Problem, np.ndarray, np.ndarray, Plan]) -> None:
    """A job needing a skill on a courier without it is a skill violation."""
    problem, dur, dist, _ = setup
    plan = plan_from_sequences(problem, {"c0": ["w", "a"], "c1": ["p", "q", "b", "s"]}, dur, dist)
    assert _kinds(check_plan(problem, plan, dur, dist)) == {"skill"}


def test_shift_end() -> None:
    """Returning after the shift end is a shift violation."""
    problem = _problem(shift=(7 * H, 7 * H + 1800))
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["w", "a", "s"], "c1": ["p", "q", "b"]}, dur, dist)
    assert "shift" in _kinds(check_plan(problem, plan, dur, dist))


def test_break_missing_outside_and_overlapping() -> None:
    """A courier with a break needs one inside its window and outside service and travel."""
    problem = _problem(brk=(11 * H, 13 * H, 3600))
    dur, dist = matrices(problem)
    seq = {"c0": ["w", "a", "s"], "c1": ["p", "q", "b"]}
    none = plan_from_sequences(problem, seq, dur, dist)
    assert "break" in _kinds(check_plan(problem, none, dur, dist))
    outside = plan_from_sequences(problem, seq, dur, dist, break_start_s={"c0": 10 * H})
    assert "break" in _kinds(check_plan(problem, outside, dur, dist))
    ok = plan_from_sequences(problem, seq, dur, dist, break_start_s={"c0": 11 * H})
    assert check_plan(problem, ok, dur, dist) == []  # the route ended before 11:00
    r0 = ok.routes[0]
    # Move the whole route into the break: service then overlaps the break.
    shift = 11 * H - r0.start_s
    moved = replace(
        r0,
        start_s=r0.start_s + shift,
        end_s=r0.end_s + shift,
        stops=tuple(
            replace(
                s,
                arrival_s=s.arrival_s + shift,
                start_s=s.start_s + shift,
                departure_s=s.departure_s + shift,
            )
            for s in r0.stops
        ),
        break_start_s=11 * H + 60,
    )
    clash = replace(ok, routes=(moved, ok.routes[1]))
    assert "break" in _kinds(check_plan(problem, clash, dur, dist)) or "travel_time" in _kinds(
        check_plan(problem, clash, dur, dist)
    )


def test_unreachable_arc(setup: tuple[Problem, np.ndarray, np.ndarray, Plan]) -> None:
    """Using an arc marked UNREACHABLE is reported."""
    problem, dur, dist, plan = setup
    dur2 = dur.copy()
    dur2[problem.location_index()["a"], problem.location_index()["s"]] = UNREACHABLE
    assert "unreachable_arc" in _kinds(check_plan(problem, plan, dur2, dist))


def test_totals_load_report_courier_errors(
    setup: tuple[Problem, np.ndarray, np.ndarray, Plan],
) -> None:
    """Wrong totals, wrong reported loads, unknown or repeated couriers are reported."""
    problem, dur, dist, plan = setup
    r0, r1 = plan.routes
    assert "totals" in _kinds(
        check_plan(problem, replace(plan, routes=(replace(r0, distance_m=1), r1)), dur, dist)
    )
    bad_stop = replace(r0.stops[0], load_after=Load(items=99))
    bad = replace(plan, routes=(replace(r0, stops=(bad_stop, *r0.stops[1:])), r1))
    assert "load_report" in _kinds(check_plan(problem, bad, dur, dist))
    assert "unknown_courier" in _kinds(
        check_plan(problem, replace(plan, routes=(replace(r0, courier_id="zz"), r1)), dur, dist)
    )
    twice = replace(plan, routes=(r0, replace(r1, courier_id="c0")))
    assert "courier_twice" in _kinds(check_plan(problem, twice, dur, dist))


def test_preassigned_post_office() -> None:
    """A job pre-assigned to another post office cannot ride with this courier."""
    problem = Problem(
        (depot("D"), depot("E", 4, 4)),
        (courier("c0"),),
        (job("a", 1, 0, depot_id="E"),),
    )
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["a"]}, dur, dist)
    assert "depot" in _kinds(check_plan(problem, plan, dur, dist))
