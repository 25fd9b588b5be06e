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
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from api.db import utcnow
from api.errors import ConflictError, NotFoundError
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from routing.check import Violation
from routing.clock import format_clock
from routing.codec import (
    job_from_json,
    job_to_json,
    load_to_json,
    problem_from_json,
    unassigned_to_json,
)
from routing.edit import Edit, Running, apply_edit
from routing.model import Problem
from routing.plan import Plan, Route, Unassigned, office_balance
from routing.vocabulary import UnassignedReason

if TYPE_CHECKING:
    from api.network import Network

logger = logging.getLogger(__name__)

PlanStatus = Literal["queued", "solving", "ready", "failed", "published", "superseded"]
EDITABLE = ("ready", "published")


def next_version(session: Session, day: date) -> int:
    """Return the next free version number of a day's plans."""
    current = session.scalar(select(func.max(PlanRecord.version)).where(PlanRecord.day == day))
    return int(current or 0) + 1


def plan_time_limit_s(asked: float | None, service_default: float | None, n_jobs: int) -> float:
    """Return a plan's wall time: the one asked, else the service's, else one for the day's size."""
    from routing.planner import default_time_limit_s

    if asked is not None:
        return asked
    if service_default is not None:
        return service_default
    return round(default_time_limit_s(n_jobs), 1)


def create_plan(
    session: Session, *, problem: Problem, options: dict[str, Any], created_by: int | None
) -> PlanRecord:
    """Insert a queued plan for ``problem.day`` (the caller enqueues the solve)."""
    from routing.codec import problem_to_json

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
    return unassigned_to_json(Unassigned(job_id, UnassignedReason(reason), detail))


def route_record(
    plan_id: int,
    route: Route,
    problem: Problem,
    legs: list[Any],
    previous: dict[str, StopRecord] | None = None,
) -> RouteRecord:
    """Return a route's stored form: its stops with their job snapshots (and ``previous`` progress)."""
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
            load_after=load_to_json(stop.load_after),
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
                route_record(plan.id, route, problem, legs.get(route.courier_id, []))
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
    job = job_from_json(s.job)
    return {
        "seq": s.seq,
        "job_id": s.job_id,
        "kind": job.kind,
        "category": job.category,
        "zone_id": job.zone_id,
        "lon": job.lon,
        "lat": job.lat,
        "arrival_s": s.arrival_s,
        "start_s": s.start_s,
        "departure_s": s.departure_s,
        "eta": _clock(s.arrival_s),
        "status": s.status,
    }


def plan_dict(plan: PlanRecord) -> dict[str, Any]:
    """Return a plan as JSON: summary, routes with stops, unassigned jobs with reasons.

    Each round carries its working time against its post office's mean, and ``balance``
    each office's longest round over its mean (``routing.plan.office_balance``), from the
    rounds as stored now (edits included).
    """
    balance = office_balance((r.depot_id, r.end_s - r.start_s) for r in plan.routes if r.stops)
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
            "working_s": r.end_s - r.start_s,
            "office_mean_working_s": (
                round(balance[r.depot_id].mean_working_s) if r.depot_id in balance else None
            ),
            "vs_office_mean": (
                round(balance[r.depot_id].vs_mean(r.end_s - r.start_s), 3)
                if r.depot_id in balance
                else None
            ),
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
        "balance": [b.to_dict() for b in balance.values()],
    }


def plan_geojson(plan: PlanRecord) -> dict[str, Any]:
    """Return the plan as an RFC 7946 FeatureCollection: depots, legs, stops, unassigned jobs."""
    feats: list[dict[str, Any]] = []
    problem = problem_from_json(plan.problem)
    for d in problem.depots:
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [d.lon, d.lat]},
                "properties": {"type": "depot", "depot_id": d.depot_id, "name": d.name},
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
                    "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                    "properties": {"type": "stop", "courier_id": r.courier_id, **stop_dict(s)},
                }
            )
    jobs = problem.job_by_id()
    for u in plan.unassigned:
        j = jobs.get(u["job_id"])
        if j is not None:
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [j.lon, j.lat]},
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
    try:
        session.flush()
    except IntegrityError as e:  # another version of the day was published at the same moment
        session.rollback()
        msg = f"another version of {plan.day} was published meanwhile; reload the day and retry"
        raise ConflictError(msg) from e
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
        new.routes.append(copy_route(new.id, r))
    session.flush()
    return new


def copy_stop(plan_id: int, s: StopRecord) -> StopRecord:
    """Return a stop of another version, its progress included, for version ``plan_id``."""
    return StopRecord(
        plan_id=plan_id,
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


def copy_route(plan_id: int, r: RouteRecord) -> RouteRecord:
    """Return a round of another version, with its stops and their progress, for ``plan_id``."""
    nr = RouteRecord(
        plan_id=plan_id,
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
        nr.stops.append(copy_stop(plan_id, s))
    return nr


# -- edits -------------------------------------------------------------------------------------


def edit_plan(
    session: Session,
    plan: PlanRecord,
    edit: Edit,
    network: Network,
    *,
    running: Running | None = None,
) -> PlanRecord:
    """Store a dispatcher's edit, decided by :func:`routing.edit.apply_edit`.

    A published plan is copied into a new version first (stop progress included); the rounds
    the edit touched are replaced, drawn along the roads, and the revision goes up. On a
    running day (``running``, from :func:`api.plans.running.edit_state`) the touched rounds
    are timed from their couriers' live starts.

    Raises
    ------
    ConflictError
        If the plan is not editable.
    routing.errors.UnknownIdError, routing.errors.PlanConflictError, InputError,
    routing.errors.InfeasibleChangeError
        From :func:`routing.edit.apply_edit`.
    """
    if plan.status not in EDITABLE:
        msg = f"plan {plan.id} is {plan.status}; only a ready or published plan can be edited"
        raise ConflictError(msg)
    problem = problem_from_json(plan.problem)
    snaps: list[Any] = []

    def matrix(lons: Sequence[float], lats: Sequence[float]) -> tuple[Any, Any]:
        tm, snapped = network.matrix(list(lons), list(lats))
        snaps.append(snapped)
        return tm.time_s, tm.distance_m

    result = apply_edit(
        problem,
        {r.courier_id: [s.job_id for s in r.stops] for r in plan.routes},
        {u["job_id"]: u["reason"] for u in plan.unassigned},
        edit,
        matrix,
        running=running,
    )
    if plan.status == "published":
        plan = clone_plan(session, plan)
        session.refresh(plan)
    previous = {s.job_id: s for r in plan.routes for s in r.stops}
    for r in list(plan.routes):
        if r.courier_id in result.routes:
            plan.routes.remove(r)
            session.delete(r)
    session.flush()
    for route in result.routes.values():
        if route.stops:
            legs = route_legs(network, snaps[-1], result.problem, route)
            plan.routes.append(route_record(plan.id, route, result.problem, legs, previous))
    kept = [u for u in plan.unassigned if u["job_id"] in result.unassigned]
    if edit.op == "unassign" and edit.job_id:
        kept.append(unassigned_entry(edit.job_id, UnassignedReason.BY_DISPATCHER))
        listed = {u["job_id"] for u in kept}
        for other in sorted(result.unassigned - listed):  # the other half of a pair
            detail = f"its other half {edit.job_id} was unassigned by the dispatcher"
            kept.append(unassigned_entry(other, UnassignedReason.PAIR_INCOMPLETE, detail))
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


def route_legs(network: Network, snaps: Any, problem: Problem, route: Route) -> list[Any]:
    """Draw a route's legs along the roads (for the maps)."""
    from geodata.geometry import leg_geometry

    locs = [problem.depot_index(route.depot_id)] + [s.location_idx for s in route.stops]
    locs.append(problem.depot_index(route.end_depot_id or route.depot_id))
    legs = []
    for a, b in itertools.pairwise(locs):
        line = leg_geometry(network.router, snaps, a, b)  # type: ignore[arg-type]
        legs.append([list(c) for c in line.coords] if line is not None else [])
    return legs
