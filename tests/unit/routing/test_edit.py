"""Hand edits of a running day are timed from each courier's live start, not from the morning."""

from __future__ import annotations

import pytest

from routing.edit import Edit, Running, apply_edit
from routing.errors import InfeasibleChangeError, PlanConflictError
from routing.model import Load, Problem
from routing.plan import Plan
from routing.replan import CourierState, StopProgress
from routing.vocabulary import StopStatus
from tests.unit.routing.helpers import H, courier, depot, job, matrices, plan_from_sequences


def _day() -> tuple[Problem, Plan]:
    """c0 (room for 2 items) delivers a and b eastwards; c1 collects p and y, then delivers e."""
    one = Load(items=1, weight_g=500)
    problem = Problem(
        (depot("D"),),
        (courier("c0", capacity=Load(items=2, weight_g=50_000, cash_vnd=0)), courier("c1")),
        (
            job("a", 3, 0, demand=one),
            job("b", 6, 0, demand=one),
            job("p", 6.5, 0, kind="pickup", demand=one),
            job("y", 9, 0, kind="pickup", demand=one, windows=((7 * H, 11 * H + 1800),)),
            job("e", 2, 1, demand=one),
        ),
    )
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["a", "b"], "c1": ["p", "y", "e"]}, dur, dist)
    return problem, plan


def _matrix(problem: Problem):  # type: ignore[no-untyped-def]
    """Travel times between any points, as the service's matrix function gives them."""

    def travel(lons, lats):  # type: ignore[no-untyped-def]
        fake = Problem(
            (depot("D"),),
            (),
            tuple(
                job(f"x{k}", (lon - 108.0) * 111.0, (lat - 14.35) * 111.0)
                for k, (lon, lat) in enumerate(zip(lons[1:], lats[1:], strict=True))
            ),
        )
        return matrices(fake)

    return travel


def _served(at_s: int) -> dict[str, CourierState]:
    """c0 has handed over a and b by ``at_s``; c1 has no news."""
    done = (
        StopProgress("a", StopStatus.COMPLETED, at_s - 900),
        StopProgress("b", StopStatus.COMPLETED, at_s),
    )
    return {"c0": CourierState("c0", done)}


def _edit(problem: Problem, plan: Plan, edit: Edit, running: Running | None):  # type: ignore[no-untyped-def]
    return apply_edit(
        problem,
        {r.courier_id: list(r.job_ids) for r in plan.routes},
        {u.job_id: str(u.reason) for u in plan.unassigned},
        edit,
        _matrix(problem),
        running=running,
    )


def test_room_freed_by_the_deliveries_made_takes_a_pickup() -> None:
    """A pickup over capacity in the morning fits once the courier has handed over its deliveries.

    The stops reached stay first with their stored times; the pickup is timed from now.
    """
    problem, plan = _day()
    move = Edit("move", job_id="p", courier_id="c0", position=0)
    with pytest.raises(InfeasibleChangeError) as morning:
        _edit(problem, plan, move, None)
    assert any(v.kind == "capacity" for v in morning.value.violations)
    now = 10 * H
    result = _edit(problem, plan, move, Running(plan, _served(now), now))
    stops = result.routes["c0"].stops
    assert [s.job_id for s in stops] == ["a", "b", "p"]
    before = {s.job_id: s for s in plan.routes[0].stops}
    assert [(s.arrival_s, s.start_s) for s in stops[:2]] == [
        (before[j].arrival_s, before[j].start_s) for j in ("a", "b")
    ]
    assert stops[2].start_s >= now
    assert stops[2].load_after.items == 1
    assert [s.job_id for s in result.routes["c1"].stops] == ["y", "e"]
    assert result.routes["c1"].stops[0].start_s >= now  # c1 is on the road since the morning


@pytest.mark.parametrize("now_s", [11 * H + 1500, None])
def test_a_move_late_from_the_live_start_is_refused(now_s: int | None) -> None:
    """A pickup that fits the morning round is refused once the courier is too late to reach it.

    Without a time ("now" unknown, a day gone by), each courier is timed from their latest
    news, here the last stop served.
    """
    problem, plan = _day()
    move = Edit("move", job_id="y", courier_id="c0")
    morning = _edit(problem, plan, move, None)
    assert "y" in [s.job_id for s in morning.routes["c0"].stops]
    with pytest.raises(InfeasibleChangeError) as live:
        _edit(problem, plan, move, Running(plan, _served(11 * H + 1500), now_s))
    assert any(v.kind == "window" and v.job_id == "y" for v in live.value.violations)


def test_lateness_the_day_already_has_does_not_refuse_an_edit() -> None:
    """A round already late (c1 cannot reach y in time any more) still gives a job away."""
    problem, plan = _day()
    now = 11 * H + 1700
    result = _edit(problem, plan, Edit("unassign", job_id="p"), Running(plan, _served(now), now))
    assert [s.job_id for s in result.routes["c1"].stops] == ["y", "e"]
    assert "p" in result.unassigned


def test_served_stops_and_deliveries_on_another_motorbike_do_not_move() -> None:
    """A stop reached never moves; a delivery loaded in the morning stays with its courier."""
    problem, plan = _day()
    running = Running(plan, _served(10 * H), 10 * H)
    with pytest.raises(PlanConflictError, match="served"):
        _edit(problem, plan, Edit("move", job_id="a", courier_id="c1"), running)
    with pytest.raises(PlanConflictError, match="left without it"):
        _edit(problem, plan, Edit("move", job_id="e", courier_id="c0"), running)


def test_a_courier_between_stops_is_timed_from_where_the_drive_brings_them() -> None:
    """An edit times a courier who left their last stop from the next one, as a re-plan does.

    c1 collected p and drove off towards y with no GPS fix since; halfway there the
    dispatcher takes e off the round. y is reached when the drive from p brings c1 there,
    not a whole drive after the edit (as if c1 had waited at p until then).
    """
    problem, plan = _day()
    c1 = next(r for r in plan.routes if r.courier_id == "c1")
    p, y = c1.stops[0], c1.stops[1]
    states = {"c1": CourierState("c1", (StopProgress("p", StopStatus.COMPLETED, p.departure_s),))}
    drive = y.arrival_s - p.departure_s
    now = p.departure_s + drive // 2
    result = _edit(problem, plan, Edit("unassign", job_id="e"), Running(plan, states, now))
    (first,) = result.routes["c1"].stops[1:2]
    assert first.job_id == "y"
    assert first.arrival_s == p.departure_s + drive < now + drive


def test_a_fix_no_road_reaches_starts_the_courier_where_they_stood_last() -> None:
    """A GPS fix off every road is dropped for the stop reached last, as a re-plan does.

    c1 collected y, then went back to p (being served when the edit comes); the phone's fix
    lies where no road leads. Moving e (on c1's round, after both) times it from the end of p's
    service, not from y at the fix's time.
    """
    from routing.model import UNREACHABLE

    problem, plan = _day()
    now = 11 * H
    far = (0.0, 0.0)
    states = {
        "c1": CourierState(
            "c1",
            (
                StopProgress("y", StopStatus.COMPLETED, now - 900),
                StopProgress("p", StopStatus.ARRIVED, now - 60),
            ),
            position=far,
            position_s=now,
        )
    }
    roads = _matrix(problem)

    def travel(lons, lats):  # type: ignore[no-untyped-def]
        dur, dist = roads(lons, lats)
        for k, point in enumerate(zip(lons, lats, strict=True)):
            if point == far:  # no road reaches the fix
                dur[k, :] = dur[:, k] = dist[k, :] = dist[:, k] = UNREACHABLE
                dur[k, k] = dist[k, k] = 0
        return dur, dist

    result = apply_edit(
        problem,
        {r.courier_id: list(r.job_ids) for r in plan.routes},
        {},
        Edit("move", job_id="e", courier_id="c1", position=2),
        travel,
        running=Running(plan, states, now),
    )
    jobs = problem.job_by_id()
    dur, _ = matrices(problem)
    at = {j.job_id: problem.job_location(k) for k, j in enumerate(problem.jobs)}
    (e,) = [s for s in result.routes["c1"].stops if s.job_id == "e"]
    free = now - 60 + jobs["p"].service_s
    assert e.arrival_s == free + int(dur[at["p"], at["e"]])


def test_a_round_whose_delivery_was_reported_before_its_pickup_can_still_be_edited() -> None:
    """The phone reports a pair's delivery done while its pickup is still to make.

    The pickup stays a stop of its own on the round; every edit of that round used to be
    refused as "delivered before its pickup".
    """
    one = Load(items=1, weight_g=500)
    problem = Problem(
        (depot("D"),),
        (courier("c0"), courier("c1")),
        (
            job("q", 2, 0, kind="pickup", demand=one, pair_id="P1"),
            job("r", 4, 0, demand=one, pair_id="P1"),
            job("s", 5, 1, demand=one),
            job("t", 5, 2, kind="pickup", demand=one),
        ),
    )
    dur, dist = matrices(problem)
    plan = plan_from_sequences(problem, {"c0": ["q", "r", "s"], "c1": ["t"]}, dur, dist)
    now = plan.routes[0].stops[1].departure_s + 60
    states = {"c0": CourierState("c0", (StopProgress("r", StopStatus.COMPLETED, now - 60),))}
    running = Running(plan, states, now)
    result = _edit(problem, plan, Edit("move", job_id="t", courier_id="c0"), running)
    assert result.routes["c0"].stops[0].job_id == "r"
    assert {"q", "s", "t"} == {s.job_id for s in result.routes["c0"].stops[1:]}
    result = _edit(problem, plan, Edit("unassign", job_id="q"), running)
    assert "q" in result.unassigned
