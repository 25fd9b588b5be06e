"""Time a courier's stop sequence: arrivals, service starts, waiting, the break and loads.

The one place a route is timed outside the search: the solver's extraction, the dispatcher's
edits, the re-planning of a running day and the urgent-job suggestions all build their
:class:`~routing.plan.Route` here. A route starts either in the morning at the courier's
post office (loaded with the round's deliveries) or from a :class:`RouteStart`: where the
courier is now, since when, with what on board and whether the lunch break is behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from routing.model import Courier, Load, Problem
from routing.plan import Route, Stop

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class RouteStart:
    """Where a courier's remaining round begins.

    Parameters
    ----------
    location_idx
        Row of the matrices for the courier's position: a location of the problem or an
        extra row after them (a GPS fix).
    time_s
        When the remaining round starts there, seconds since local midnight.
    load
        Everything on board at that moment: deliveries loaded in the morning and not yet
        handed over, pickups collected, payout cash not yet paid.
    break_taken
        Whether the lunch break is behind the courier (taken, or its window has passed).
    left
        Whether the courier has left the post office: what is on board is then a given (a
        failed delivery stays, a pickup was collected anyway). Not yet: ``load`` is what they
        will load there, and it must fit.
    """

    location_idx: int
    time_s: int
    load: Load
    break_taken: bool = False
    left: bool = True


def morning_start(problem: Problem, courier: Courier, job_ids: list[str]) -> RouteStart:
    """Return the start of a round in the morning: the post office, opening time, deliveries loaded."""
    depot = problem.depot_by_id()[courier.depot_id]
    return RouteStart(
        problem.depot_index(courier.depot_id),
        max(courier.shift.start_s, depot.opening.start_s),
        problem.start_load(job_ids),
        left=False,
    )


def build_route(
    problem: Problem,
    courier: Courier,
    job_positions: list[int],
    service_starts: list[int],
    *,
    start_s: int,
    end_s: int,
    break_start_s: int | None,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    start: RouteStart | None = None,
) -> Route:
    """Build a :class:`Route` from a stop sequence and service start times.

    Arrival at a stop is the departure from the previous one plus the travel time, plus the
    break when the break is taken on that leg; waiting is what remains until service start.
    Loads start from ``start.load`` (or, in the morning, the round's unpaired deliveries).

    Parameters
    ----------
    problem
        The problem.
    courier
        The courier driving the route.
    job_positions
        Positions in ``problem.jobs`` in visiting order.
    service_starts
        Service start per stop, seconds.
    start_s, end_s
        Departure from the start and arrival at the end depot.
    break_start_s
        Start of the break, or ``None``.
    durations, distances
        Location matrices (at least every location of the problem).
    start
        Where the remaining round starts; ``None`` for the morning at the post office.

    Returns
    -------
    Route
        The route with per-stop times and loads.
    """
    jobs = [problem.jobs[p] for p in job_positions]
    if start is None:
        start = morning_start(problem, courier, [j.job_id for j in jobs])
    start_loc = start.location_idx
    end_loc = problem.depot_index(courier.end_depot)
    load = start.load
    stops: list[Stop] = []
    prev_loc, prev_dep = start_loc, start_s
    distance_m = driving_s = waiting_s = 0
    brk = courier.break_duration_s if break_start_s is not None else 0
    for p, job, begin in zip(job_positions, jobs, service_starts, strict=True):
        loc = problem.job_location(p)
        travel = int(durations[prev_loc, loc])
        arrival = prev_dep + travel
        break_here = 0  # break taken while waiting at this stop
        if break_start_s is not None and prev_dep <= break_start_s and break_start_s + brk <= begin:
            if break_start_s < arrival:
                arrival += brk  # the break interrupts the ride
            else:
                break_here = brk
        arrival = min(arrival, begin)
        load = load.serve(job.kind, job.demand)
        stops.append(
            Stop(
                job.job_id,
                loc,
                arrival,
                begin,
                begin + job.service_s,
                max(0, begin - arrival - break_here),
                load,
            )
        )
        distance_m += int(distances[prev_loc, loc])
        driving_s += travel
        waiting_s += max(0, begin - arrival - break_here)
        prev_loc, prev_dep = loc, begin + job.service_s
    distance_m += int(distances[prev_loc, end_loc])
    driving_s += int(durations[prev_loc, end_loc])
    return Route(
        courier_id=courier.courier_id,
        depot_id=courier.depot_id,
        start_s=start_s,
        end_s=end_s,
        stops=tuple(stops),
        distance_m=distance_m,
        driving_s=driving_s,
        working_s=end_s - start_s,
        waiting_s=waiting_s,
        break_start_s=break_start_s,
        end_depot_id=courier.end_depot,
        break_duration_s=brk,
    )


def schedule_route(
    problem: Problem,
    courier: Courier,
    positions: list[int],
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    *,
    start: RouteStart | None = None,
) -> Route:
    """Time a stop sequence as early as possible and build its route.

    The courier leaves as soon as the start allows (shift and post office in the morning),
    starts each service at the earliest allowed time and takes the lunch break on the first
    leg after which service would run into the break window (or on the way back), unless
    ``start.break_taken``; that stop is served first when that is sooner (the break would
    push it out of its window, or to a later one) and the break still fits after it. Infeasibilities (late stops, overloads) are left for the checker.

    Parameters
    ----------
    problem
        The problem.
    courier
        The courier.
    positions
        Positions in ``problem.jobs`` in visiting order.
    durations, distances
        Location matrices (at least every location of the problem).
    start
        Where the remaining round starts; ``None`` for the morning at the post office.

    Returns
    -------
    Route
    """
    if start is None:
        start = morning_start(problem, courier, [problem.jobs[p].job_id for p in positions])
    bw = courier.break_window if courier.has_break and not start.break_taken else None
    brk = courier.break_duration_s if bw is not None else 0
    break_start: int | None = None
    prev_loc, t = start.location_idx, start.time_s
    starts: list[int] = []
    for p in positions:
        job = problem.jobs[p]
        loc = problem.job_location(p)
        ready = t + int(durations[prev_loc, loc])
        s0 = job.earliest_start_from(ready)
        if (
            bw is not None
            and break_start is None
            and (s0 is None or s0 + job.service_s > bw.start_s)
        ):
            after = max(ready + brk, max(t, bw.start_s) + brk)
            s1 = job.earliest_start_from(after)
            # Serve this stop first when that is sooner (the break would push it out of its
            # window, or to a later one) and the break still fits after it.
            sooner = s0 is not None and (s1 is None or s0 < s1)
            if not (sooner and s0 is not None and s0 + job.service_s + brk <= bw.end_s):
                break_start = max(t, bw.start_s)
                ready, s0 = after, s1
        begin = s0 if s0 is not None else ready  # past every window: late, as soon as possible
        starts.append(begin)
        prev_loc, t = loc, begin + job.service_s
    end_loc = problem.depot_index(courier.end_depot)
    end_s = t + int(durations[prev_loc, end_loc])
    if bw is not None and break_start is None:
        break_start = max(t, bw.start_s)
        end_s = max(end_s + brk, break_start + brk)
    return build_route(
        problem,
        courier,
        positions,
        starts,
        start_s=start.time_s,
        end_s=end_s,
        break_start_s=break_start,
        durations=durations,
        distances=distances,
        start=start,
    )
