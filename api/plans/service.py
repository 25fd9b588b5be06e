"""Plans: create (queue a solve), store the solver's answer, read, edit with re-checking, publish.

A plan is versioned per day. Edits to a plan that is not yet published change it in place;
an edit to a published plan creates a new version (a copy, keeping stop progress), which is
published in its turn. Every edit is re-timed and verified by ``routing.check.check_plan``
on the affected routes; an infeasible edit is refused with the violated constraints.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.db import utcnow
from api.errors import ConflictError, InfeasibleEditError, NotFoundError
from api.jobs.service import job_to_json, problem_from_json
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from routing.check import Violation, check_plan
from routing.errors import InputError
from routing.io import format_clock
from routing.model import Courier, Problem
from routing.plan import Plan, Route, Unassigned, reason_message
from routing.solver import build_route

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from api.network import Network

logger = logging.getLogger(__name__)

PlanStatus = Literal["queued", "solving", "ready", "failed", "published", "superseded"]
EDITABLE = ("ready", "published")


def next_version(session: Session, day: date) -> int:
    """Return the next free version number of a day's plans."""
    current = session.scalar(select(func.max(PlanRecord.version)).where(PlanRecord.day == day))
    return int(current or 0) + 1


def create_plan(
    session: Session, *, problem: Problem, options: dict[str, Any], created_by: int | None
) -> PlanRecord:
    """Insert a queued plan for ``problem.day`` (the caller enqueues the solve)."""
    from api.jobs.service import problem_to_json

    assert problem.day is not None
    rec = PlanRecord(
        day=problem.day,
        version=next_version(session, problem.day),
        status="queued",
        options=options,
        problem=problem_to_json(problem),
        created_by=created_by,
        unassigned=[],
        stats={},
    )
    session.add(rec)
    session.flush()
    return rec


def get_plan(session: Session, plan_id: int, *, with_routes: bool = True) -> PlanRecord:
    """Return a plan.

    Raises
    ------
    NotFoundError
        If it does not exist.
    """
    q = select(PlanRecord).where(PlanRecord.id == plan_id)
    if with_routes:
        q = q.options(selectinload(PlanRecord.routes).selectinload(RouteRecord.stops))
    rec = session.scalar(q)
    if rec is None:
        msg = f"plan {plan_id} not found"
        raise NotFoundError(msg)
    return rec


#: Keyed by engine too: one process may serve several databases (the test suite does).
_published_cache: dict[tuple[Any, date], tuple[float, int | None]] = {}
PUBLISHED_CACHE_S = 2.0


def published_plan_id(session: Session, day: date, *, cached: bool = False) -> int | None:
    """Return the id of the day's published plan, if any.

    With ``cached``, a lookup younger than :data:`PUBLISHED_CACHE_S` seconds is reused (the hot
    path of couriers' writes; a newly published version is picked up within that delay).
    """
    now = time.monotonic()
    if cached:
        hit = _published_cache.get((session.get_bind(), day))
        if hit is not None and hit[0] > now:
            return hit[1]
    pid = session.scalar(
        select(PlanRecord.id).where(PlanRecord.day == day, PlanRecord.status == "published")
    )
    _published_cache[(session.get_bind(), day)] = (now + PUBLISHED_CACHE_S, pid)
    return pid


def unassigned_entry(job_id: str, reason: str, detail: str = "") -> dict[str, Any]:
    """Return the stored form of an unassigned job (reason with its messages)."""
    return {
        "job_id": job_id,
        "reason": reason,
        "detail": detail,
        "message_en": reason_message(reason, lang="en")
        if reason != "by_dispatcher"
        else "Unassigned by the dispatcher",
        "message_vi": reason_message(reason, lang="vi")
        if reason != "by_dispatcher"
        else "Điều phối viên bỏ phân công",
    }


def _route_record(
    plan_id: int,
    route: Route,
    problem: Problem,
    legs: list[Any],
    previous: dict[str, StopRecord] | None = None,
) -> RouteRecord:
    jobs = problem.job_by_id()
    rec = RouteRecord(
        plan_id=plan_id,
        courier_id=route.courier_id,
        depot_id=route.depot_id,
        end_depot_id=route.end_depot_id or route.depot_id,
        start_s=route.start_s,
        end_s=route.end_s,
        distance_m=route.distance_m,
        driving_s=route.driving_s,
        waiting_s=route.waiting_s,
        break_start_s=route.break_start_s,
        break_duration_s=route.break_duration_s,
        legs=legs,
    )
    for seq, stop in enumerate(route.stops):
        job = jobs[stop.job_id]
        s = StopRecord(
            plan_id=plan_id,
            seq=seq,
            job_id=stop.job_id,
            job=job_to_json(job),
            lon=job.lon,
            lat=job.lat,
            window_end_s=job.last_end_s,
            arrival_s=stop.arrival_s,
            start_s=stop.start_s,
            departure_s=stop.departure_s,
            waiting_s=stop.waiting_s,
            load_after={
                "items": stop.load_after.items,
                "weight_g": stop.load_after.weight_g,
                "cash_vnd": stop.load_after.cash_vnd,
            },
        )
        old = (previous or {}).get(stop.job_id)
        if old is not None:
            s.status, s.status_at, s.arrived_at = old.status, old.status_at, old.arrived_at
            s.done_at, s.fail_reason = old.done_at, old.fail_reason
        rec.stops.append(s)
    return rec


def save_result(
    session: Session,
    plan: PlanRecord,
    *,
    problem: Problem,
    result: Plan,
    legs: dict[str, list[Any]],
    violations: Sequence[Violation] = (),
    stats: dict[str, Any] | None = None,
) -> None:
    """Store the solver's plan: routes, stops (with job snapshots), unassigned jobs."""
    for r in list(plan.routes):
        session.delete(r)
    session.flush()
    for route in result.routes:
        if route.stops:
            plan.routes.append(
                _route_record(plan.id, route, problem, legs.get(route.courier_id, []))
            )
    plan.unassigned = [unassigned_entry(u.job_id, u.reason, u.detail) for u in result.unassigned]
    plan.objective = int(result.objective)
    plan.stats = {
        **(stats or {}),
        "violations": [str(v) for v in violations],
        "num_routes": result.num_routes,
        "distance_m": result.distance_m,
        "driving_s": result.driving_s,
    }
    plan.status = "ready"
    plan.finished_at = utcnow()
    session.flush()


def _clock(s: int | None) -> str | None:
    return None if s is None else format_clock(s)


def stop_dict(s: StopRecord) -> dict[str, Any]:
    """Return the JSON of a planned stop."""
    return {
        "seq": s.seq,
        "job_id": s.job_id,
        "kind": s.job["kind"],
        "category": s.job.get("category", ""),
        "lon": s.job["lon"],
        "lat": s.job["lat"],
        "arrival_s": s.arrival_s,
        "start_s": s.start_s,
        "departure_s": s.departure_s,
        "eta": _clock(s.arrival_s),
        "status": s.status,
    }


def plan_dict(plan: PlanRecord) -> dict[str, Any]:
    """Return a plan as JSON: summary, routes with stops, unassigned jobs with reasons."""
    routes = [
        {
            "courier_id": r.courier_id,
            "depot_id": r.depot_id,
            "end_depot_id": r.end_depot_id,
            "start_s": r.start_s,
            "end_s": r.end_s,
            "distance_m": r.distance_m,
            "driving_s": r.driving_s,
            "break_start_s": r.break_start_s,
            "stops": [stop_dict(s) for s in r.stops],
        }
        for r in plan.routes
    ]
    return {
        "id": plan.id,
        "day": plan.day,
        "version": plan.version,
        "status": plan.status,
        "parent_id": plan.parent_id,
        "revision": plan.revision,
        "objective": plan.objective,
        "created_at": plan.created_at,
        "published_at": plan.published_at,
        "error": plan.error,
        "stats": plan.stats,
        "routes": routes,
        "unassigned": plan.unassigned,
    }


def plan_geojson(plan: PlanRecord) -> dict[str, Any]:
    """Return the plan as an RFC 7946 FeatureCollection: depots, legs, stops, unassigned jobs."""
    feats: list[dict[str, Any]] = []
    for d in plan.problem.get("depots", []):
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]},
                "properties": {"type": "depot", "depot_id": d["depot_id"], "name": d["name"]},
            }
        )
    for r in plan.routes:
        for k, leg in enumerate(r.legs):
            if leg and len(leg) >= 2:
                feats.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "LineString", "coordinates": leg},
                        "properties": {"type": "leg", "courier_id": r.courier_id, "leg": k},
                    }
                )
        for s in r.stops:
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [s.job["lon"], s.job["lat"]]},
                    "properties": {"type": "stop", "courier_id": r.courier_id, **stop_dict(s)},
                }
            )
    jobs = {j["job_id"]: j for j in plan.problem.get("jobs", [])}
    for u in plan.unassigned:
        j = jobs.get(u["job_id"])
        if j is not None:
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [j["lon"], j["lat"]]},
                    "properties": {"type": "unassigned", **u},
                }
            )
    return {"type": "FeatureCollection", "features": feats}


def publish_plan(session: Session, plan: PlanRecord) -> PlanRecord:
    """Publish a ready plan: it becomes the day's rounds; an earlier published one is superseded.

    Raises
    ------
    ConflictError
        If the plan is not ready (still solving, failed, superseded or already published).
    """
    if plan.status != "ready":
        msg = f"plan {plan.id} is {plan.status}; only a ready plan can be published"
        raise ConflictError(msg)
    for other in session.scalars(
        select(PlanRecord).where(PlanRecord.day == plan.day, PlanRecord.status == "published")
    ):
        other.status = "superseded"
    session.flush()
    plan.status = "published"
    plan.published_at = utcnow()
    session.flush()
    _published_cache.pop((session.get_bind(), plan.day), None)
    return plan


def clone_plan(session: Session, plan: PlanRecord) -> PlanRecord:
    """Copy a plan into a new ready version (stop progress included) for editing."""
    new = PlanRecord(
        day=plan.day,
        version=next_version(session, plan.day),
        status="ready",
        parent_id=plan.id,
        options=plan.options,
        problem=plan.problem,
        unassigned=list(plan.unassigned),
        objective=plan.objective,
        stats=dict(plan.stats),
        created_by=plan.created_by,
        finished_at=utcnow(),
    )
    session.add(new)
    session.flush()
    for r in plan.routes:
        nr = RouteRecord(
            plan_id=new.id,
            courier_id=r.courier_id,
            depot_id=r.depot_id,
            end_depot_id=r.end_depot_id,
            start_s=r.start_s,
            end_s=r.end_s,
            distance_m=r.distance_m,
            driving_s=r.driving_s,
            waiting_s=r.waiting_s,
            break_start_s=r.break_start_s,
            break_duration_s=r.break_duration_s,
            legs=r.legs,
        )
        for s in r.stops:
            nr.stops.append(
                StopRecord(
                    plan_id=new.id,
                    seq=s.seq,
                    job_id=s.job_id,
                    job=s.job,
                    lon=s.lon,
                    lat=s.lat,
                    window_end_s=s.window_end_s,
                    arrival_s=s.arrival_s,
                    start_s=s.start_s,
                    departure_s=s.departure_s,
                    waiting_s=s.waiting_s,
                    load_after=s.load_after,
                    status=s.status,
                    status_at=s.status_at,
                    arrived_at=s.arrived_at,
                    done_at=s.done_at,
                    fail_reason=s.fail_reason,
                )
            )
        new.routes.append(nr)
    session.flush()
    return new


# -- edits -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edit:
    """A dispatcher's change: move a job, reorder a route, or unassign a job."""

    op: Literal["move", "reorder", "unassign"]
    job_id: str | None = None
    courier_id: str | None = None
    position: int | None = None
    job_ids: tuple[str, ...] = ()


def schedule_route(
    problem: Problem,
    courier: Courier,
    positions: list[int],
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
) -> Route:
    """Time a stop sequence as early as possible and build its route.

    The courier leaves as soon as shift and post office allow, starts each service at the
    earliest allowed time and takes the lunch break on the first leg after which service would
    run into the break window (or on the way back). Infeasibilities are left for the checker.
    """
    depots = problem.depot_by_id()
    start_s = max(courier.shift.start_s, depots[courier.depot_id].opening.start_s)
    bw = courier.break_window if courier.has_break else None
    brk = courier.break_duration_s if bw is not None else 0
    break_start: int | None = None
    prev_loc, t = problem.depot_index(courier.depot_id), start_s
    starts: list[int] = []
    for p in positions:
        job = problem.jobs[p]
        loc = problem.job_location(p)
        travel = int(durations[prev_loc, loc])
        s0 = job.earliest_start_from(t + travel)
        if (
            bw is not None
            and break_start is None
            and (s0 is None or s0 + job.service_s > bw.start_s)
        ):
            break_start = max(t, bw.start_s)
            s0 = job.earliest_start_from(max(t + travel + brk, break_start + brk))
        start = s0 if s0 is not None else t + travel + (brk if break_start is not None else 0)
        starts.append(start)
        prev_loc, t = loc, start + job.service_s
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
        start_s=start_s,
        end_s=end_s,
        break_start_s=break_start,
        durations=durations,
        distances=distances,
    )


def _sequences(plan: PlanRecord) -> dict[str, list[str]]:
    return {r.courier_id: [s.job_id for s in r.stops] for r in plan.routes}


def _apply(
    edit: Edit, seqs: dict[str, list[str]], problem: Problem, unassigned: set[str]
) -> tuple[list[dict[str, list[str]]], set[str], set[str]]:
    """Return candidate sequence maps (one per insertion position), affected couriers, new unassigned."""
    jobs = problem.job_by_id()
    couriers = problem.courier_by_id()
    if edit.op in ("move", "unassign") and (edit.job_id is None or edit.job_id not in jobs):
        msg = f"job {edit.job_id!r} is not in this plan"
        raise NotFoundError(msg)
    if edit.op in ("move", "reorder") and (
        edit.courier_id is None or edit.courier_id not in couriers
    ):
        msg = f"courier {edit.courier_id!r} is not in this plan"
        raise NotFoundError(msg)
    base = {c: list(v) for c, v in seqs.items()}
    affected: set[str] = set()
    new_unassigned = set(unassigned)
    if edit.op == "reorder":
        assert edit.courier_id is not None
        current = base.get(edit.courier_id, [])
        if sorted(edit.job_ids) != sorted(current):
            raise InputError(
                None,
                "job_ids",
                list(edit.job_ids)[:10],
                f"must be a permutation of the route's jobs {current}",
            )
        base[edit.courier_id] = list(edit.job_ids)
        return [base], {edit.courier_id}, new_unassigned
    assert edit.job_id is not None
    for c, seq in base.items():
        if edit.job_id in seq:
            seq.remove(edit.job_id)
            affected.add(c)
    if edit.op == "unassign":
        if not affected:
            msg = f"job {edit.job_id} is not on any route"
            raise ConflictError(msg)
        new_unassigned.add(edit.job_id)
        return [base], affected, new_unassigned
    assert edit.courier_id is not None
    new_unassigned.discard(edit.job_id)
    affected.add(edit.courier_id)
    target = base.setdefault(edit.courier_id, [])
    if edit.position is not None:
        positions = [min(max(edit.position, 0), len(target))]
    else:
        positions = list(range(len(target) + 1))
    candidates = []
    for pos in positions:
        cand = {c: list(v) for c, v in base.items()}
        cand[edit.courier_id].insert(pos, edit.job_id)
        candidates.append(cand)
    return candidates, affected, new_unassigned


def edit_plan(session: Session, plan: PlanRecord, edit: Edit, network: Network) -> PlanRecord:
    """Apply an edit if the affected routes stay feasible; return the (possibly new) plan version.

    Raises
    ------
    ConflictError
        If the plan is not editable.
    NotFoundError
        If a job or courier is unknown.
    InputError
        If a reorder is not a permutation of the route.
    InfeasibleEditError
        Listing the violated constraints, if no candidate passes the checker.
    """
    if plan.status not in EDITABLE:
        msg = f"plan {plan.id} is {plan.status}; only a ready or published plan can be edited"
        raise ConflictError(msg)
    problem = problem_from_json(plan.problem)
    unassigned = {u["job_id"] for u in plan.unassigned}
    candidates, affected, new_unassigned = _apply(edit, _sequences(plan), problem, unassigned)

    # The sub-problem: depots, affected couriers (plus those holding a pair partner), their jobs.
    partner = problem.pair_partner()
    owner = {j: c for c, seq in candidates[0].items() for j in seq}
    involved = set(affected)
    while True:
        jobs_in = {j for c in involved for j in candidates[0].get(c, [])}
        if edit.job_id:
            jobs_in.add(edit.job_id)
        jobs_in |= {partner[j] for j in list(jobs_in) if j in partner}
        extra = {owner[j] for j in jobs_in if j in owner} - involved
        if not extra:
            break
        involved |= extra
    couriers = problem.courier_by_id()
    sub_jobs = tuple(j for j in problem.jobs if j.job_id in jobs_in)
    sub = Problem(
        problem.depots,
        tuple(couriers[c] for c in sorted(involved)),
        sub_jobs,
        day=problem.day,
    )
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    tm, snaps = network.matrix(lons, lats)
    pos_of = {j.job_id: i for i, j in enumerate(sub.jobs)}
    old_reasons = {u["job_id"]: u["reason"] for u in plan.unassigned}
    sub_unassigned = tuple(
        Unassigned(
            j,
            old_reasons.get(j, "dropped_low_priority")
            if old_reasons.get(j, "") != "by_dispatcher"
            else "dropped_low_priority",  # type: ignore[arg-type]
            "",
        )
        for j in sorted(jobs_in & new_unassigned)
    )
    best: tuple[int, list[Route]] | None = None
    first_violations: list[Violation] = []
    for cand in candidates:
        routes = [
            schedule_route(
                sub, couriers[c], [pos_of[j] for j in cand.get(c, [])], tm.time_s, tm.distance_m
            )
            for c in sorted(involved)
        ]
        violations = check_plan(
            sub, Plan(tuple(routes), sub_unassigned, 0), tm.time_s, tm.distance_m
        )
        if violations:
            if not first_violations:
                first_violations = violations
            continue
        cost = sum(r.driving_s for r in routes)
        if best is None or cost < best[0]:
            best = (cost, routes)
    if best is None:
        detail = "; ".join(str(v) for v in first_violations[:3])
        msg = f"edit rejected: {detail}"
        raise InfeasibleEditError(
            msg,
            errors=[
                {
                    "kind": v.kind,
                    "column": v.courier_id,
                    "value": v.job_id,
                    "reason": v.detail,
                }
                for v in first_violations
            ],
        )
    if plan.status == "published":
        plan = clone_plan(session, plan)
        session.refresh(plan)
    from geodata.geometry import leg_geometry

    previous = {s.job_id: s for r in plan.routes for s in r.stops}
    for r in list(plan.routes):
        if r.courier_id in involved:
            plan.routes.remove(r)
            session.delete(r)
    session.flush()
    for route in best[1]:
        if not route.stops:
            continue
        locs = [sub.depot_index(route.depot_id)] + [s.location_idx for s in route.stops]
        locs.append(sub.depot_index(route.end_depot_id or route.depot_id))
        legs = []
        for a, b in itertools.pairwise(locs):
            line = leg_geometry(network.router, snaps, a, b)  # type: ignore[arg-type]
            legs.append([list(c) for c in line.coords] if line is not None else [])
        plan.routes.append(_route_record(plan.id, route, sub, legs, previous))
    kept = [u for u in plan.unassigned if u["job_id"] in new_unassigned]
    if edit.op == "unassign" and edit.job_id:
        kept.append(unassigned_entry(edit.job_id, "by_dispatcher"))
    plan.unassigned = kept
    plan.revision += 1
    session.flush()
    logger.info(
        "plan %d edited (%s %s), revision %d",
        plan.id,
        edit.op,
        edit.job_id or edit.courier_id,
        plan.revision,
    )
    return plan
