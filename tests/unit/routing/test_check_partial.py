"""The checker on partially executed routes: a start position, time, load on board, break behind."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from routing.check import Violation, check_plan
from routing.model import Load, Problem
from routing.plan import Plan
from routing.schedule import RouteStart, schedule_route
from tests.unit.routing.helpers import H, at, courier, depot, job, matrices


def _kinds(violations: list[Violation]) -> set[str]:
    return {v.kind for v in violations}


def _day() -> tuple[Problem, np.ndarray, np.ndarray, int]:
    """Four jobs east of the office; row ``L`` of the matrices is a GPS fix 3 km east."""
    problem = Problem(
        (depot(),),
        (courier("C", capacity=Load(items=3, weight_g=100_000, cash_vnd=1_000_000)),),
        (
            job("done", 1, 0),
            job("d1", 4, 0),
            job("p1", 5, 1, kind="pickup"),
            job("d2", 6, 0),
        ),
    )
    fix_lon, fix_lat = at(3, 0)
    extended = replace(
        problem,
        depots=(
            *problem.depots,
            replace(problem.depots[0], depot_id="FIX", lon=fix_lon, lat=fix_lat),
        ),
    )
    dur, dist = matrices(extended)
    # reorder: depots of the extended problem are [D, FIX]; put FIX last (row L)
    order = [0, *range(2, extended.num_locations), 1]
    return problem, dur[np.ix_(order, order)], dist[np.ix_(order, order)], problem.num_locations


def _remaining(
    problem: Problem, dur: np.ndarray, dist: np.ndarray, start: RouteStart, ids: list[str]
) -> Plan:
    pos = [problem.job_index(j) for j in ids]
    route = schedule_route(problem, problem.couriers[0], pos, dur, dist, start=start)
    return Plan((route,), (), 0)


def test_a_timed_remaining_round_passes() -> None:
    """A remaining round timed from a GPS fix with its load on board has no violation."""
    problem, dur, dist, fix = _day()
    start = RouteStart(fix, 11 * H, Load(items=2, weight_g=1000), break_taken=True)
    plan = _remaining(problem, dur, dist, start, ["d1", "p1", "d2"])
    assert check_plan(problem, plan, dur, dist, starts={"C": start}, done={"done"}) == []


def test_leaving_before_now_is_refused() -> None:
    """A remaining round may not start before the start's time."""
    problem, dur, dist, fix = _day()
    start = RouteStart(fix, 11 * H, Load(items=2, weight_g=1000), break_taken=True)
    plan = _remaining(problem, dur, dist, start, ["d1", "p1", "d2"])
    earlier = replace(start, time_s=12 * H)
    assert "shift" in _kinds(
        check_plan(problem, plan, dur, dist, starts={"C": earlier}, done={"done"})
    )


def test_what_is_on_board_counts_against_capacity() -> None:
    """Items already on board (collected pickups) plus a new pickup can exceed the capacity."""
    problem, dur, dist, fix = _day()
    full = RouteStart(fix, 11 * H, Load(items=3, weight_g=1000), break_taken=True)
    plan = _remaining(problem, dur, dist, full, ["p1"])
    found = check_plan(problem, plan, dur, dist, starts={"C": full}, done={"done", "d1", "d2"})
    assert "capacity" in _kinds(found)


def test_handing_over_what_is_not_on_board_is_refused() -> None:
    """Delivering an item the courier does not carry drives the load below zero."""
    problem, dur, dist, fix = _day()
    empty = RouteStart(fix, 11 * H, Load(), break_taken=True)
    plan = _remaining(problem, dur, dist, empty, ["d1"])
    found = check_plan(problem, plan, dur, dist, starts={"C": empty}, done={"done", "p1", "d2"})
    assert any(v.kind == "capacity" and "items -1" in v.detail for v in found)


def test_a_served_job_planned_again_is_refused() -> None:
    """A job already served must be on no remaining round."""
    problem, dur, dist, fix = _day()
    start = RouteStart(fix, 11 * H, Load(items=3, weight_g=1500), break_taken=True)
    plan = _remaining(problem, dur, dist, start, ["done", "d1", "p1", "d2"])
    found = check_plan(problem, plan, dur, dist, starts={"C": start}, done={"done"})
    assert any(v.kind == "coverage" and v.job_id == "done" for v in found)


def test_a_second_break_is_refused_and_a_due_break_is_required() -> None:
    """Once the break is behind the courier no other is planned; a due one must be planned."""
    problem = Problem(
        (depot(),),
        (courier("C", brk=(11 * H, 14 * H, H)),),
        (job("d1", 4, 0), job("d2", 6, 0)),
    )
    dur, dist = matrices(problem)
    due = RouteStart(1, 10 * H, Load(items=1, weight_g=500), break_taken=False)
    plan = _remaining(problem, dur, dist, due, ["d2"])
    assert plan.routes[0].break_start_s is not None
    assert check_plan(problem, plan, dur, dist, starts={"C": due}, done={"d1"}) == []
    taken = replace(due, break_taken=True)
    assert "break" in _kinds(check_plan(problem, plan, dur, dist, starts={"C": taken}, done={"d1"}))
    no_break = _remaining(problem, dur, dist, taken, ["d2"])
    assert no_break.routes[0].break_start_s is None
    assert "break" in _kinds(
        check_plan(problem, no_break, dur, dist, starts={"C": due}, done={"d1"})
    )


def test_an_overload_at_the_start_is_a_given_that_may_not_grow() -> None:
    """A courier over capacity at the start may hand things over, but may not collect more.

    (A failed delivery stays on board; a pickup may have been taken anyway.)
    """
    problem, dur, dist, fix = _day()
    over = RouteStart(fix, 11 * H, Load(items=4, weight_g=2000), break_taken=True)
    handing = _remaining(problem, dur, dist, over, ["d1", "d2"])
    assert check_plan(problem, handing, dur, dist, starts={"C": over}, done={"done", "p1"}) == []
    collecting = _remaining(problem, dur, dist, over, ["p1"])
    found = check_plan(
        problem, collecting, dur, dist, starts={"C": over}, done={"done", "d1", "d2"}
    )
    assert "capacity" in _kinds(found)
