"""Where does an urgent job fit? Rank the insertions over the couriers of its post office.

A dispatcher on the phone with a citizen needs an answer in a fraction of a second: for
the couriers of the job's post office still at work nearest the job (:data:`MAX_COURIERS`,
so a town office of twenty rounds costs no more than a village's), every position in the
remaining round is priced by its detour; the cheapest positions are then timed in full from the
courier's start (:mod:`routing.schedule`) and checked by the independent checker, and the
suggestions name the courier, the position, the job's ETA, the minutes added to the round
and every other stop that would become late (never silently).

A delivery nobody carries yet is collected at the post office first when the courier has
already left (the office stop is inserted just before it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from routing.check import Violation, check_plan
from routing.edit import MatrixFn
from routing.errors import InputError
from routing.model import UNREACHABLE, Job, Problem
from routing.plan import Plan, Route
from routing.replan import (
    CourierState,
    DayChanges,
    Standing,
    collected_at_office,
    nearest_depot,
    standing,
)
from routing.schedule import RouteStart, schedule_route

#: Positions per courier timed in full (the cheapest by detour).
FULL_CHECKS_PER_COURIER = 4


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One place an urgent job could go.

    Parameters
    ----------
    courier_id
        The courier.
    position
        Index in the courier's remaining round (0: next stop).
    eta_s
        The job's service start, seconds since local midnight.
    added_s
        How much later the round ends (seconds).
    added_m
        Extra distance (metres).
    newly_late
        Other stops that would start after their windows close.
    violations
        What else the checker refuses (capacity, skills, shift), as text; empty when feasible.
    via_office
        Whether the courier collects the item at the post office first.
    """

    courier_id: str
    position: int
    eta_s: int
    added_s: int
    added_m: int
    newly_late: tuple[str, ...]
    violations: tuple[str, ...]
    via_office: bool = False

    @property
    def feasible(self) -> bool:
        """Whether nothing becomes late and nothing else breaks."""
        return not self.newly_late and not self.violations

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "courier_id": self.courier_id,
            "position": self.position,
            "eta_s": self.eta_s,
            "added_s": self.added_s,
            "added_m": self.added_m,
            "newly_late": list(self.newly_late),
            "violations": list(self.violations),
            "via_office": self.via_office,
            "feasible": self.feasible,
        }


@dataclass(slots=True)
class _Office:
    problem: Problem
    members: list[Standing]
    remaining: dict[str, list[str]]
    starts: dict[str, RouteStart]
    durations: Any
    distances: Any
    new_ids: tuple[str, ...]


#: Couriers of the office whose rounds are priced in full: those working nearest the job.
MAX_COURIERS = 8


def _nearest(problem: Problem, members: list[Standing], job: Job, k: int) -> list[Standing]:
    """Return the ``k`` couriers whose position or remaining stops come nearest the job."""
    if len(members) <= k:
        return members
    jobs = problem.job_by_id()
    scale = math.cos(math.radians(job.lat))

    def gap(m: Standing) -> float:
        points = [m.location, *((jobs[j].lon, jobs[j].lat) for j in m.remaining)]
        return min(((x - job.lon) * scale) ** 2 + (y - job.lat) ** 2 for x, y in points)

    return sorted(members, key=gap)[:k]


def _office_view(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, CourierState],
    now_s: int,
    job: Job,
    matrix: MatrixFn,
    max_couriers: int = MAX_COURIERS,
) -> _Office:
    """Return the job's post office at ``now_s``: couriers, remaining rounds, starts, matrices."""
    if job.job_id in problem.job_by_id():
        raise InputError(None, "job_id", job.job_id, "a job with this id is already planned")
    office = job.depot_id or nearest_depot(problem, job)
    changes = DayChanges(now_s=now_s)
    route_of = {r.courier_id: r for r in plan.routes}
    members = [
        standing(problem, c, route_of.get(c.courier_id), states.get(c.courier_id), changes)
        for c in problem.couriers
        if c.depot_id == office
    ]
    members = _nearest(problem, [m for m in members if m.available], job, max_couriers)
    new_jobs: tuple[Job, ...] = (replace(job, depot_id=office),)
    if job.loaded_at_depot and any(m.left for m in members):
        pickup, delivery = collected_at_office(problem, job, office)
        new_jobs = (pickup, delivery)
    wanted = {j for m in members for j in (*m.remaining, *m.frozen)}
    jobs = tuple(j for j in problem.jobs if j.job_id in wanted) + new_jobs
    sub = Problem(problem.depots, tuple(m.courier for m in members), jobs, day=problem.day)
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    rows: dict[str, int] = {}
    loc_of = {j.job_id: sub.job_location(k) for k, j in enumerate(sub.jobs)}
    for m in members:
        cid = m.courier.courier_id
        if not m.left:
            rows[cid] = sub.depot_index(m.courier.depot_id)
        elif m.location_job is not None:
            rows[cid] = loc_of[m.location_job]
        else:
            lons.append(m.location[0])
            lats.append(m.location[1])
            rows[cid] = len(lons) - 1
    durations, distances = matrix(lons, lats)
    home = {m.courier.courier_id: sub.depot_index(m.courier.depot_id) for m in members}
    for m in members:
        cid = m.courier.courier_id
        if int(durations[rows[cid], home[cid]]) >= UNREACHABLE:
            # a fix off every mapped road: start from the last stop reached, else the office
            rows[cid] = loc_of[m.frozen[-1]] if m.frozen else home[cid]
    starts = {
        m.courier.courier_id: RouteStart(
            rows[m.courier.courier_id],
            m.time_s,
            m.load if m.left else sub.start_load(list(m.remaining)),
            m.break_taken,
        )
        for m in members
    }
    return _Office(
        sub,
        members,
        {m.courier.courier_id: list(m.remaining) for m in members},
        starts,
        np.asarray(durations),
        np.asarray(distances),
        tuple(j.job_id for j in new_jobs),
    )


def _start(view: _Office, cid: str, seq: list[str]) -> RouteStart:
    """Return where a courier's round ``seq`` starts (one who has not left loads it all)."""
    start = view.starts[cid]
    member = next(m for m in view.members if m.courier.courier_id == cid)
    if not member.left:  # loads the round's deliveries, the new one included, at the office
        start = replace(start, load=view.problem.start_load(seq))
    return start


def _timed(view: _Office, cid: str, seq: list[str]) -> Route:
    """Time a courier's remaining round from their start."""
    pos = {j.job_id: k for k, j in enumerate(view.problem.jobs)}
    courier = view.problem.courier_by_id()[cid]
    start = _start(view, cid, seq)
    return schedule_route(
        view.problem, courier, [pos[j] for j in seq], view.durations, view.distances, start=start
    )


def suggest_insertions(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, CourierState],
    now_s: int,
    job: Job,
    matrix: MatrixFn,
    *,
    limit: int = 10,
) -> list[Suggestion]:
    """Rank where a new job fits in the rounds of its post office from ``now_s`` on.

    Parameters
    ----------
    problem
        The day's problem of the plan in force.
    plan
        The plan in force.
    states
        Couriers' live states (as for :func:`routing.replan.replan`).
    now_s
        The time of the question, seconds since local midnight.
    job
        The new job (its ``depot_id``, else the nearest post office, decides the couriers).
    matrix
        Travel times and distances between points.
    limit
        How many suggestions to return at most.

    Returns
    -------
    list[Suggestion]
        Feasible ones first, then by minutes added to the round; each names the stops it
        would make late.

    Raises
    ------
    InputError
        If the job's id is already planned.
    """
    view = _office_view(problem, plan, states, now_s, job, matrix)
    jobs = view.problem.job_by_id()
    loc = {j.job_id: view.problem.job_location(k) for k, j in enumerate(view.problem.jobs)}
    new_ids = view.new_ids
    first, last = loc[new_ids[0]], loc[new_ids[-1]]
    dur = view.durations
    out: list[Suggestion] = []
    for m in view.members:
        cid = m.courier.courier_id
        seq = view.remaining[cid]
        base = _timed(view, cid, seq)
        base_late = {s.job_id for s in base.stops if not jobs[s.job_id].in_window(s.start_s)}
        via_office = len(new_ids) == 2
        ids = new_ids if via_office else new_ids[-1:]
        # Price each position by its detour, then time the cheapest in full.
        points = [view.starts[cid].location_idx, *(loc[j] for j in seq)]
        end = view.problem.depot_index(m.courier.end_depot)
        detours = []
        for k in range(len(seq) + 1):
            a = points[k]
            b = loc[seq[k]] if k < len(seq) else end
            inner = int(dur[first, last]) if via_office else 0
            detours.append(int(dur[a, first]) + inner + int(dur[last, b]) - int(dur[a, b]))
        for k in sorted(range(len(seq) + 1), key=detours.__getitem__)[:FULL_CHECKS_PER_COURIER]:
            cand = [*seq[:k], *ids, *seq[k:]]
            route = _timed(view, cid, cand)
            stop = next(s for s in route.stops if s.job_id == new_ids[-1])
            late = tuple(
                s.job_id
                for s in route.stops
                if s.job_id not in ids
                and s.job_id not in base_late
                and not jobs[s.job_id].in_window(s.start_s)
            )
            violations = tuple(str(v) for v in _violations(view, m, cand, route, ids))
            out.append(
                Suggestion(
                    cid,
                    k,
                    stop.start_s,
                    route.end_s - base.end_s,
                    route.distance_m - base.distance_m,
                    late,
                    violations,
                    via_office,
                )
            )
    out.sort(key=lambda s: (not s.feasible, s.added_s, s.eta_s))
    return out[:limit]


def _violations(
    view: _Office, member: Standing, cand: list[str], route: Route, new_ids: tuple[str, ...]
) -> list[Violation]:
    """Check a courier's remaining round with the new job by the independent checker.

    Other stops made late are the dispatcher's call (each suggestion lists them), so only
    their window violations are left out; everything else, the new job's window included,
    counts.
    """
    cid = member.courier.courier_id
    sub_jobs = set(cand) | set(member.frozen)
    sub = Problem(
        view.problem.depots,
        (member.courier,),
        tuple(j for j in view.problem.jobs if j.job_id in sub_jobs),
        day=view.problem.day,
    )
    start = _start(view, cid, cand)
    return [
        v
        for v in check_plan(
            sub,
            _relocate(route, sub),
            _sub_matrix(view.durations, sub, view.problem, start),
            _sub_matrix(view.distances, sub, view.problem, start),
            starts={cid: replace(start, location_idx=sub.num_locations)},
            done=set(member.frozen),
        )
        if v.kind != "window" or v.job_id in new_ids
    ]


def _index_map(sub: Problem, full: Problem) -> list[int]:
    """Map ``sub``'s location indices to ``full``'s (same depots, a subset of the jobs)."""
    pos = {j.job_id: full.job_location(k) for k, j in enumerate(full.jobs)}
    return list(range(len(sub.depots))) + [pos[j.job_id] for j in sub.jobs]


def _sub_matrix(m: Any, sub: Problem, full: Problem, start: RouteStart) -> Any:
    """Return ``sub``'s rows of a matrix of ``full``, the courier's start row last."""
    idx = [*_index_map(sub, full), start.location_idx]
    return m[np.ix_(idx, idx)]


def _relocate(route: Route, sub: Problem) -> Plan:
    """Return the route as a plan of ``sub`` (its stops' location indices in ``sub``)."""
    pos = {j.job_id: sub.job_location(k) for k, j in enumerate(sub.jobs)}
    stops = tuple(replace(s, location_idx=pos[s.job_id]) for s in route.stops)
    return Plan((replace(route, stops=stops),), (), 0)


def insert_job(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, CourierState],
    now_s: int,
    job: Job,
    matrix: MatrixFn,
    *,
    courier_id: str,
    position: int,
) -> tuple[tuple[Job, ...], Route, RouteStart, tuple[str, ...]]:
    """Put a new job in a courier's remaining round at ``position`` (an accepted suggestion).

    Returns
    -------
    tuple
        The new jobs (the job, and its office pickup when it is collected there first), the
        courier's new remaining round (stop ``location_idx`` are not meaningful outside this
        call), its start, and the courier's frozen stops.

    Raises
    ------
    InputError
        If the courier is not at work at the job's post office, or the position is out of range.
    routing.errors.InfeasibleChangeError
        If the round breaks a rule other than a stop becoming late (lateness is the
        dispatcher's call, shown with the suggestion).
    """
    from routing.errors import InfeasibleChangeError

    # the chosen courier, whoever it is (not only the nearest the suggestions priced)
    view = _office_view(problem, plan, states, now_s, job, matrix, len(problem.couriers))
    member = next((m for m in view.members if m.courier.courier_id == courier_id), None)
    if member is None:
        raise InputError(
            None, "courier_id", courier_id, "not a courier at work at this job's post office"
        )
    seq = view.remaining[courier_id]
    if not 0 <= position <= len(seq):
        raise InputError(None, "position", position, f"must be between 0 and {len(seq)}")
    ids = view.new_ids
    cand = [*seq[:position], *ids, *seq[position:]]
    route = _timed(view, courier_id, cand)
    start = _start(view, courier_id, cand)
    violations = _violations(view, member, cand, route, ids)
    if violations:
        msg = "; ".join(str(v) for v in violations[:3])
        raise InfeasibleChangeError(f"the job does not fit there: {msg}", violations)
    new_jobs = tuple(view.problem.job_by_id()[j] for j in ids)
    return new_jobs, route, start, tuple(member.frozen)


__all__ = ["Suggestion", "insert_job", "suggest_insertions"]
