"""Check a plan independently of the solver: times, loads, pairs, skills, breaks, coverage.

This module recomputes everything from the problem and the matrices. It imports neither
OR-Tools nor the solver, so a modelling mistake in the solver cannot hide here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from routing.model import LOAD_DIMENSIONS, UNREACHABLE, Courier, Job, Problem
from routing.plan import REASON_CODES

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from routing.plan import Plan, Route, Stop
    from routing.schedule import RouteStart

ViolationKind = Literal[
    "coverage",
    "unknown_courier",
    "unknown_job",
    "courier_twice",
    "depot",
    "location",
    "unreachable_arc",
    "travel_time",
    "stop_times",
    "window",
    "shift",
    "break",
    "capacity",
    "load_report",
    "pair",
    "skill",
    "totals",
    "reason",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in a plan.

    Parameters
    ----------
    kind
        Which rule (a :data:`ViolationKind`).
    courier_id
        The courier concerned, if any.
    job_id
        The job concerned, if any.
    detail
        What was found, with the numbers.
    """

    kind: ViolationKind
    courier_id: str | None
    job_id: str | None
    detail: str

    def __str__(self) -> str:
        who = ", ".join(x for x in (self.courier_id, self.job_id) if x)
        return f"{self.kind} [{who}]: {self.detail}"


def check_plan(
    problem: Problem,
    plan: Plan,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    *,
    starts: Mapping[str, RouteStart] | None = None,
    done: Collection[str] = (),
) -> list[Violation]:
    """Return every rule the plan breaks; an empty list means the plan is feasible.

    Checked: each job is routed exactly once or unassigned (with a known reason) exactly once;
    routes belong to known couriers (one each) and start/end at their depots; no unreachable
    arc; service starts inside a window, after the travel (and the break, if taken on that
    leg); the route lies inside the shift and depot hours; the break lies inside its window
    and does not overlap service; loads (start load = unpaired deliveries) stay within every
    capacity, cash included, and match the reported ``load_after``; pairs are on the same
    route, pickup first, or both unassigned; skills and pre-assigned post offices are
    respected; reported distance and driving time match the matrices.

    Parameters
    ----------
    problem
        The problem the plan claims to solve.
    plan
        The plan.
    durations, distances
        L x L matrices in location order (depots then jobs).

    Returns
    -------
    list[Violation]
        Violations in discovery order.
    """
    out: list[Violation] = []
    durations = np.asarray(durations)
    distances = np.asarray(distances)
    jobs = problem.job_by_id()
    job_loc = {j.job_id: problem.job_location(i) for i, j in enumerate(problem.jobs)}
    couriers = problem.courier_by_id()

    # Coverage.
    routed = Counter(s.job_id for r in plan.routes for s in r.stops)
    unassigned = Counter(u.job_id for u in plan.unassigned)
    for job_id in set(routed) | set(unassigned):
        if job_id not in jobs:
            out.append(Violation("unknown_job", None, job_id, "job is not in the problem"))
    done = set(done)
    for job_id in jobs:
        n_routed, n_un = routed.get(job_id, 0), unassigned.get(job_id, 0)
        if job_id in done:
            if n_routed + n_un:
                out.append(Violation("coverage", None, job_id, "already served, yet planned again"))
            continue
        if n_routed + n_un != 1:
            out.append(
                Violation(
                    "coverage",
                    None,
                    job_id,
                    f"routed {n_routed} times and unassigned {n_un} times (expected once)",
                )
            )
    for u in plan.unassigned:
        if u.reason not in REASON_CODES:
            out.append(Violation("reason", None, u.job_id, f"unknown reason {u.reason!r}"))

    # Pairs.
    position: dict[str, tuple[str, int]] = {}
    for route in plan.routes:
        for k, stop in enumerate(route.stops):
            position[stop.job_id] = (route.courier_id, k)
    pairs: dict[str, list[Job]] = {}
    for job in problem.jobs:
        if job.pair_id is not None:
            pairs.setdefault(job.pair_id, []).append(job)
    for pair in pairs.values():
        job = pair[0]
        pickup = next(j for j in pair if j.kind == "pickup")
        delivery = next(j for j in pair if j.kind == "delivery")
        p, d = position.get(pickup.job_id), position.get(delivery.job_id)
        if pickup.job_id in done:
            continue  # the delivery is on board its courier: the load check follows it
        if delivery.job_id in done:
            out.append(Violation("pair", None, job.pair_id, "delivered before its pickup"))
            continue
        if p is None and d is None:
            continue
        if p is None or d is None:
            out.append(Violation("pair", None, job.pair_id, "only one half of the pair is routed"))
        elif p[0] != d[0]:
            out.append(
                Violation("pair", p[0], job.pair_id, f"halves on couriers {p[0]} and {d[0]}")
            )
        elif p[1] > d[1]:
            out.append(Violation("pair", p[0], job.pair_id, "delivery before pickup"))

    # Routes.
    seen_couriers: set[str] = set()
    for route in plan.routes:
        courier = couriers.get(route.courier_id)
        if courier is None:
            out.append(Violation("unknown_courier", route.courier_id, None, "not in the problem"))
            continue
        if route.courier_id in seen_couriers:
            out.append(Violation("courier_twice", route.courier_id, None, "two routes"))
        seen_couriers.add(route.courier_id)
        if any(s.job_id not in jobs for s in route.stops):
            continue
        start = (starts or {}).get(route.courier_id)
        out.extend(_check_route(problem, courier, route, durations, distances, job_loc, start))
    return out


def _check_route(
    problem: Problem,
    courier: Courier,
    route: Route,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    job_loc: dict[str, int],
    start: RouteStart | None = None,
) -> list[Violation]:
    out: list[Violation] = []
    cid = courier.courier_id
    jobs = problem.job_by_id()
    depots = problem.depot_by_id()
    if route.depot_id != courier.depot_id:
        out.append(
            Violation("depot", cid, None, f"starts at {route.depot_id}, home is {courier.depot_id}")
        )
    if route.end_depot_id is not None and route.end_depot_id != courier.end_depot:
        out.append(
            Violation("depot", cid, None, f"ends at {route.end_depot_id}, not {courier.end_depot}")
        )
    end_loc = problem.depot_index(courier.end_depot)
    if start is None:
        start_loc = problem.depot_index(courier.depot_id)
        earliest = max(courier.shift.start_s, depots[courier.depot_id].opening.start_s)
    else:
        start_loc, earliest = start.location_idx, start.time_s
    latest = min(courier.shift.end_s, depots[courier.end_depot].opening.end_s)
    if route.start_s < earliest:
        out.append(Violation("shift", cid, None, f"leaves at {route.start_s} before {earliest}"))
    if route.end_s > latest:
        out.append(Violation("shift", cid, None, f"returns at {route.end_s} after {latest}"))

    # Break placement.
    brk_start = route.break_start_s
    owes_break = courier.has_break and not (start is not None and start.break_taken)
    brk_len = courier.break_duration_s if courier.has_break else 0
    if start is not None and start.break_taken and brk_start is not None:
        out.append(Violation("break", cid, None, "a second break planned"))
    if owes_break and courier.break_window is not None:
        if brk_start is None:
            out.append(Violation("break", cid, None, "no break planned"))
        elif not (
            courier.break_window.start_s <= brk_start
            and brk_start + brk_len <= courier.break_window.end_s
        ):
            out.append(
                Violation(
                    "break",
                    cid,
                    None,
                    f"break [{brk_start}, {brk_start + brk_len}] outside window "
                    f"[{courier.break_window.start_s}, {courier.break_window.end_s}]",
                )
            )
    brk_used = brk_start is None or brk_len == 0
    if brk_start is not None and brk_start + brk_len <= route.start_s:
        brk_used = True  # taken before leaving the post office

    # Times along the route.
    prev_loc, prev_dep = start_loc, route.start_s
    distance_m = driving_s = 0
    for stop in route.stops:
        job = jobs[stop.job_id]
        if stop.location_idx != job_loc[stop.job_id]:
            out.append(
                Violation("location", cid, stop.job_id, f"location {stop.location_idx} is wrong")
            )
        loc = job_loc[stop.job_id]
        travel = int(durations[prev_loc, loc])
        if travel >= UNREACHABLE or int(distances[prev_loc, loc]) >= UNREACHABLE:
            out.append(Violation("unreachable_arc", cid, stop.job_id, "no road on this leg"))
            return out
        needed = travel
        if not brk_used and brk_start is not None and brk_start + brk_len <= stop.start_s:
            if brk_start < prev_dep:
                out.append(Violation("break", cid, stop.job_id, "break overlaps service"))
            needed += brk_len
            brk_used = True
        if stop.start_s - prev_dep < needed:
            out.append(
                Violation(
                    "travel_time",
                    cid,
                    stop.job_id,
                    f"service starts {stop.start_s} but cannot before {prev_dep + needed}",
                )
            )
        if not any(w.contains(stop.start_s) for w in job.windows):
            out.append(
                Violation(
                    "window",
                    cid,
                    stop.job_id,
                    f"service starts {stop.start_s} outside "
                    f"{[(w.start_s, w.end_s) for w in job.windows]}",
                )
            )
        if not (
            stop.arrival_s <= stop.start_s
            and stop.departure_s == stop.start_s + job.service_s
            and stop.waiting_s
            in _waiting_options(stop.start_s - stop.arrival_s, brk_start, brk_len, stop)
            and stop.arrival_s >= prev_dep + travel
        ):
            out.append(
                Violation(
                    "stop_times",
                    cid,
                    stop.job_id,
                    f"inconsistent arrival/start/departure/waiting {stop.arrival_s}/"
                    f"{stop.start_s}/{stop.departure_s}/{stop.waiting_s}",
                )
            )
        if not job.skills <= courier.skills:
            out.append(
                Violation("skill", cid, stop.job_id, f"needs {sorted(job.skills - courier.skills)}")
            )
        if job.depot_id is not None and job.depot_id != courier.depot_id:
            out.append(
                Violation("depot", cid, stop.job_id, f"pre-assigned to post office {job.depot_id}")
            )
        distance_m += int(distances[prev_loc, loc])
        driving_s += travel
        prev_loc, prev_dep = loc, stop.start_s + job.service_s
    travel = int(durations[prev_loc, end_loc])
    if travel >= UNREACHABLE:
        out.append(Violation("unreachable_arc", cid, None, "no road back to the post office"))
        return out
    needed = travel
    if not brk_used and brk_start is not None:
        if brk_start < prev_dep and route.stops:
            out.append(Violation("break", cid, None, "break overlaps service"))
        if brk_start + brk_len <= route.end_s:
            needed += brk_len
        brk_used = True
    if route.end_s - prev_dep < needed:
        out.append(
            Violation(
                "travel_time", cid, None, f"back at {route.end_s}, not before {prev_dep + needed}"
            )
        )
    distance_m += int(distances[prev_loc, end_loc])
    driving_s += travel
    if distance_m != route.distance_m or driving_s != route.driving_s:
        out.append(
            Violation(
                "totals",
                cid,
                None,
                f"reported {route.distance_m} m / {route.driving_s} s, "
                f"recomputed {distance_m} m / {driving_s} s",
            )
        )

    # Loads: start with what is on board (in the morning: the unpaired deliveries), then
    # apply each stop.
    cap: tuple[int, ...] = courier.capacity.as_tuple()
    load = [0, 0, 0]
    if start is not None:
        load = list(start.load.as_tuple())
        if start.left:
            # What is on board is a given (a failed delivery stays, a pickup was collected
            # anyway): the rest may not carry more than the capacity, or than it carries now.
            cap = tuple(max(c, a) for c, a in zip(cap, load, strict=True))
    else:
        for stop in route.stops:
            job = jobs[stop.job_id]
            if job.kind == "delivery" and job.pair_id is None:
                load = [a + b for a, b in zip(load, job.demand.as_tuple(), strict=True)]
    out.extend(_check_load(cid, None, load, cap, "at the depot" if start is None else "at start"))
    for stop in route.stops:
        job = jobs[stop.job_id]
        sign = 1 if job.kind == "pickup" else -1
        load = [a + sign * b for a, b in zip(load, job.demand.as_tuple(), strict=True)]
        out.extend(_check_load(cid, stop.job_id, load, cap, "after the stop"))
        if tuple(load) != stop.load_after.as_tuple():
            out.append(
                Violation(
                    "load_report",
                    cid,
                    stop.job_id,
                    f"reports {stop.load_after.as_tuple()}, recomputed {tuple(load)}",
                )
            )
    return out


def _check_load(
    cid: str, job_id: str | None, load: list[int], cap: tuple[int, ...], where: str
) -> list[Violation]:
    out = []
    for name, amount, limit in zip(LOAD_DIMENSIONS, load, cap, strict=True):
        if amount > limit or amount < 0:
            out.append(
                Violation("capacity", cid, job_id, f"{name} {amount} {where}, limit {limit}")
            )
    return out


def _waiting_options(
    idle_s: int, brk_start: int | None, brk_len: int, stop: Stop
) -> tuple[int, ...]:
    """Return the acceptable ``waiting_s`` of a stop: idle time, minus the break if taken there."""
    if (
        brk_start is not None
        and stop.arrival_s <= brk_start
        and brk_start + brk_len <= stop.start_s
    ):
        return (idle_s, idle_s - brk_len)
    return (idle_s,)
