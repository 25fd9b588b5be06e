"""Where does an urgent job fit? Rank the insertions over the couriers of its post office.

A dispatcher on the phone with a citizen needs an answer in a fraction of a second: for
the couriers of the job's post office still at work nearest the job (:data:`MAX_COURIERS`,
so a town office of twenty rounds costs no more than a village's), every position in the
remaining round is priced by its detour; the cheapest positions are then timed in full from the
courier's start (:mod:`routing.schedule`) and checked by the independent checker, and the
suggestions name the courier, the position, the job's ETA, the minutes added to the round
and every other stop that would become late (never silently). Each round gets its own small
matrix (the rest of the round, where the courier stands, the new job): the travel-time
queries grow with the points of a round, not with those of the whole office, and the stops
already reached are not timed again. A caller that keeps rounds' matrices between questions
(the service's road network) passes ``round_matrix``: the next urgent job about the same
round then costs two searches per round (from the round to the job and back), the same
numbers as a full matrix.

A delivery nobody carries yet is collected at the post office first when the courier has
already left (the office stop is inserted just before it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from routing.check import Violation, check_plan
from routing.edit import MatrixFn, RoundMatrixFn
from routing.errors import InputError
from routing.model import Job, Problem
from routing.plan import Plan, Route
from routing.replan import (
    CourierState,
    DayChanges,
    Standing,
    collected_at_office,
    nearest_depot,
    standing,
    unpair_delivered_first,
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
    new_jobs: tuple[Job, ...]
    partner: dict[str, str]
    now_s: int

    @property
    def new_ids(self) -> tuple[str, ...]:
        return tuple(j.job_id for j in self.new_jobs)


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
    max_couriers: int = MAX_COURIERS,
) -> _Office:
    """Return the job's post office at ``now_s``: its couriers' standings and remaining rounds."""
    if job.job_id in problem.job_by_id():
        raise InputError(None, "job_id", job.job_id, "a job with this id is already planned")
    office = job.depot_id or nearest_depot(problem, job)
    changes = DayChanges(now_s=now_s)
    route_of = {r.courier_id: r for r in plan.routes}
    by_id, partner = problem.job_by_id(), problem.pair_partner()
    members = [
        standing(
            problem,
            c,
            route_of.get(c.courier_id),
            states.get(c.courier_id),
            changes,
            jobs=by_id,
            partner=partner,
        )
        for c in problem.couriers
        if c.depot_id == office
    ]
    members = _nearest(problem, [m for m in members if m.available], job, max_couriers)
    new_jobs: tuple[Job, ...] = (replace(job, depot_id=office),)
    if job.loaded_at_depot and any(m.left for m in members):
        pickup, delivery = collected_at_office(problem, job, office)
        new_jobs = (pickup, delivery)
    return _Office(
        problem,
        members,
        {m.courier.courier_id: list(m.remaining) for m in members},
        new_jobs,
        partner,
        now_s,
    )


@dataclass(slots=True)
class _Round:
    """One courier's remaining round with the new job(s): its own problem and matrices.

    The same for every position tried, so built once per courier; the checker sees the
    courier's jobs (the stops reached among them are done) and the new ones.
    """

    member: Standing
    problem: Problem
    pos: dict[str, int]
    durations: Any
    distances: Any
    start: RouteStart
    done: set[str]


def _round(
    view: _Office, member: Standing, matrix: MatrixFn, round_matrix: RoundMatrixFn | None = None
) -> _Round:
    """Return a courier's round with the new job(s), and the matrices between its points.

    Only the rest of the round, where the courier stands and the other half of each pair
    are in it (the stops reached are not timed again): one small matrix per round costs a
    fraction of one over the whole office. With ``round_matrix`` the round's own points
    (offices, its jobs, the GPS fix) are asked for apart from the new job(s), so a provider
    that keeps them answers the next urgent job about the same round from what it has.
    """
    m = member
    cid = m.courier.courier_id
    mine = set(view.remaining[cid])
    mine |= {j for j in (m.location_job, m.came_from, *m.frozen[-1:]) if j is not None}
    mine |= {view.partner[j] for j in mine if j in view.partner}
    theirs = [j for j in view.problem.jobs if j.job_id in mine]
    jobs = unpair_delivered_first(theirs, m.frozen) + view.new_jobs
    needed = {m.courier.depot_id, m.courier.end_depot} | {j.depot_id for j in jobs}
    depots = tuple(d for d in view.problem.depots if d.depot_id in needed)
    sub = Problem(depots, (m.courier,), jobs, day=view.problem.day)
    pos = {j.job_id: k for k, j in enumerate(sub.jobs)}
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    fix = None
    if m.left and m.on_fix:  # a GPS fix: an extra point after the problem's locations
        lons.append(m.location[0])
        lats.append(m.location[1])
        fix = len(lons) - 1
    if round_matrix is None:
        durations, distances = matrix(lons, lats)
    else:
        # the round's points first, the new job(s) last; back to the problem's order after
        n_new = len(view.new_jobs)
        first_new = len(sub.depots) + len(sub.jobs) - n_new
        own = [k for k in range(len(lons)) if not first_new <= k < first_new + n_new]
        new = list(range(first_new, first_new + n_new))
        durations, distances = round_matrix(
            [lons[k] for k in own],
            [lats[k] for k in own],
            [lons[k] for k in new],
            [lats[k] for k in new],
        )
        back = np.argsort(np.asarray(own + new))
        durations = np.asarray(durations)[np.ix_(back, back)]
        distances = np.asarray(distances)[np.ix_(back, back)]
    row = m.start_in(sub, pos, durations, view.now_s, fix)
    load = m.load if m.left else sub.start_load(list(m.remaining))
    return _Round(
        m,
        sub,
        pos,
        np.asarray(durations),
        np.asarray(distances),
        RouteStart(row, m.time_s, load, m.break_taken, m.left),
        set(m.frozen) & set(pos),
    )


def _start(r: _Round, seq: list[str]) -> RouteStart:
    """Return where the round ``seq`` starts (one who has not left loads it all, the new job too)."""
    if r.member.left:
        return r.start
    return replace(r.start, load=r.problem.start_load(seq))


def _timed(r: _Round, seq: list[str]) -> Route:
    """Time a courier's remaining round from their start."""
    return schedule_route(
        r.problem,
        r.member.courier,
        [r.pos[j] for j in seq],
        r.durations,
        r.distances,
        start=_start(r, seq),
    )


def _violations(
    r: _Round, seq: list[str], route: Route, new_ids: tuple[str, ...]
) -> list[Violation]:
    """Check a courier's remaining round with the new job by the independent checker.

    Other stops made late are the dispatcher's call (each suggestion lists them), so only
    their window violations are left out; everything else, the new job's window included,
    counts.
    """
    cid = r.member.courier.courier_id
    return [
        v
        for v in check_plan(
            r.problem,
            Plan((route,), (), 0),
            r.durations,
            r.distances,
            starts={cid: _start(r, seq)},
            done=r.done,
        )
        if v.kind != "window" or v.job_id in new_ids
    ]


def suggest_insertions(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, CourierState],
    now_s: int,
    job: Job,
    matrix: MatrixFn,
    *,
    limit: int = 10,
    round_matrix: RoundMatrixFn | None = None,
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
    round_matrix
        Travel times and distances between a round's points and the new job(s), when the
        caller keeps rounds' matrices between questions (the same numbers as ``matrix``,
        so the same suggestions, faster); else ``matrix`` is asked for each round.

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
    view = _office_view(problem, plan, states, now_s, job)
    jobs = view.problem.job_by_id() | {j.job_id: j for j in view.new_jobs}
    new_ids = view.new_ids
    via_office = len(new_ids) == 2
    ids = new_ids if via_office else new_ids[-1:]
    out: list[Suggestion] = []
    for m in view.members:
        cid = m.courier.courier_id
        r = _round(view, m, matrix, round_matrix)
        seq = view.remaining[cid]
        base = _timed(r, seq)
        base_late = {s.job_id for s in base.stops if not jobs[s.job_id].in_window(s.start_s)}
        # Price each position by its detour, then time the cheapest in full.
        first, last = r.pos[new_ids[0]], r.pos[new_ids[-1]]
        first, last = r.problem.job_location(first), r.problem.job_location(last)
        points = [r.start.location_idx, *(r.problem.job_location(r.pos[j]) for j in seq)]
        points.append(r.problem.depot_index(m.courier.end_depot))
        dur = r.durations
        inner = int(dur[first, last]) if via_office else 0
        detours = [
            int(dur[a, first]) + inner + int(dur[last, b]) - int(dur[a, b])
            for a, b in itertools.pairwise(points)
        ]
        for k in sorted(range(len(seq) + 1), key=detours.__getitem__)[:FULL_CHECKS_PER_COURIER]:
            cand = [*seq[:k], *ids, *seq[k:]]
            route = _timed(r, cand)
            stop = next(s for s in route.stops if s.job_id == new_ids[-1])
            late = tuple(
                s.job_id
                for s in route.stops
                if s.job_id not in ids
                and s.job_id not in base_late
                and not jobs[s.job_id].in_window(s.start_s)
            )
            violations = tuple(str(v) for v in _violations(r, cand, route, ids))
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
    view = _office_view(problem, plan, states, now_s, job, len(problem.couriers))
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
    r = _round(view, member, matrix)
    route = _timed(r, cand)
    start = _start(r, cand)
    violations = _violations(r, cand, route, ids)
    if violations:
        msg = "; ".join(str(v) for v in violations[:3])
        raise InfeasibleChangeError(f"the job does not fit there: {msg}", violations)
    return view.new_jobs, route, start, tuple(member.frozen)


__all__ = ["Suggestion", "insert_job", "suggest_insertions"]
