"""The running day in the store: read a published plan's live state, store re-plans and insertions.

Every decision is :mod:`routing`'s (:func:`routing.replan.replan`,
:func:`routing.suggest.suggest_insertions`); this module reads what they need from the
database (the plan in force, stop statuses, couriers' latest GPS fixes) and stores what they
return as a new draft version. It also keeps the rule that no stop event is lost between
versions: a version being published takes the status of every stop from all the stop events
stored for the day, whichever version they were posted on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db import utcnow
from api.events.models import Position, StopEvent
from api.jobs.models import JobRecord
from api.jobs.service import parse_upload
from api.plans.models import PlanRecord, RouteRecord
from api.plans.service import (
    copy_route,
    copy_stop,
    next_version,
    route_legs,
    route_record,
    unassigned_entry,
)
from routing import io as rio
from routing.clock import local_seconds
from routing.codec import (
    job_from_json,
    job_to_json,
    load_from_json,
    problem_from_json,
    problem_to_json,
)
from routing.edit import Running
from routing.model import Job, Problem
from routing.plan import Plan, Route, Stop, Unassigned
from routing.replan import CourierState, Replan, StopProgress
from routing.vocabulary import EventKind, StopStatus

if TYPE_CHECKING:
    from api.network import Network


@dataclass(frozen=True, slots=True)
class LiveDay:
    """A published plan as the running day sees it."""

    problem: Problem
    plan: Plan
    states: dict[str, CourierState]


def _route_from_record(r: RouteRecord) -> Route:
    stops = tuple(
        Stop(
            s.job_id,
            0,
            s.arrival_s,
            s.start_s,
            s.departure_s,
            s.waiting_s,
            load_from_json(s.load_after),
        )
        for s in r.stops
    )
    return Route(
        courier_id=r.courier_id,
        depot_id=r.depot_id,
        start_s=r.start_s,
        end_s=r.end_s,
        stops=stops,
        distance_m=r.distance_m,
        driving_s=r.driving_s,
        working_s=r.end_s - r.start_s,
        waiting_s=r.waiting_s,
        break_start_s=r.break_start_s,
        end_depot_id=r.end_depot_id,
        break_duration_s=r.break_duration_s,
    )


def live_day(session: Session, plan: PlanRecord) -> LiveDay:
    """Return a plan's problem, rounds and each courier's live state (stops reached, last fix)."""
    problem = problem_from_json(plan.problem)
    routes = [_route_from_record(r) for r in plan.routes]
    unassigned = tuple(
        Unassigned(u["job_id"], u["reason"], u.get("detail", "")) for u in plan.unassigned
    )
    latest = (
        select(Position.courier_id, func.max(Position.device_ts).label("ts"))
        .where(Position.plan_id == plan.id)
        .group_by(Position.courier_id)
        .subquery()
    )
    fixes = {
        cid: (lon, lat, ts)
        for cid, lon, lat, ts in session.execute(
            select(Position.courier_id, Position.lon, Position.lat, Position.device_ts).join(
                latest,
                (Position.courier_id == latest.c.courier_id) & (Position.device_ts == latest.c.ts),
            )
        )
    }
    states: dict[str, CourierState] = {}
    for r in plan.routes:
        progress = tuple(
            StopProgress(
                s.job_id,
                StopStatus(s.status),
                local_seconds(s.status_at, plan.day) if s.status_at is not None else None,
            )
            for s in r.stops
            if s.status != StopStatus.PLANNED
        )
        fix = fixes.get(r.courier_id)
        states[r.courier_id] = CourierState(
            r.courier_id,
            progress,
            position=(fix[0], fix[1]) if fix else None,
            position_s=local_seconds(fix[2], plan.day) if fix else None,
        )
    return LiveDay(problem, Plan(tuple(routes), unassigned, plan.objective or 0), states)


def edit_state(session: Session, plan: PlanRecord, now_s: int | None) -> Running | None:
    """Return the running day an edit of ``plan`` is timed from (None: not running yet).

    A plan runs once it is published, or when its stops carry progress (a draft version of
    a running day).
    """
    started = any(s.status != StopStatus.PLANNED for r in plan.routes for s in r.stops)
    if plan.status != "published" and not started:
        return None
    day = live_day(session, plan)
    return Running(day.plan, day.states, now_s)


def parse_job_rows(rows: Sequence[dict[str, Any]]) -> list[Job]:
    """Validate new jobs given as JSON rows keyed like the jobs file's columns.

    Raises
    ------
    routing.errors.InputFileError
        Naming the row (from 2, as in a spreadsheet), column and reason of every bad row.
    """
    if not rows:
        return []
    data = json.dumps(list(rows)).encode()
    return list(parse_upload(data, ".json", rio.read_jobs, keep_good=False).records)


def uploaded_new_jobs(session: Session, day: date, problem: Problem) -> list[Job]:
    """Return the jobs uploaded for the day since the plan was made (not in its problem)."""
    known = {j.job_id for j in problem.jobs}
    return [
        job_from_json(rec.record)
        for rec in session.scalars(
            select(JobRecord).where(JobRecord.day == day).order_by(JobRecord.id)
        )
        if rec.job_id not in known
    ]


def create_draft(session: Session, parent: PlanRecord, options: dict[str, Any]) -> PlanRecord:
    """Insert a queued version of ``parent``'s day that a worker will fill (a re-plan)."""
    rec = PlanRecord(
        day=parent.day,
        version=next_version(session, parent.day),
        status="queued",
        parent_id=parent.id,
        options=options,
        problem=parent.problem,
        created_by=parent.created_by,
        unassigned=[],
        stats={},
    )
    session.add(rec)
    session.flush()
    return rec


def save_replan(
    session: Session,
    plan: PlanRecord,
    parent: PlanRecord,
    replanned: Replan,
    network: Network | None,
    *,
    touched: set[str] | None = None,
) -> None:
    """Store a re-plan in ``plan`` (a new version of ``parent``'s day), ready to publish.

    Each courier's round is their frozen stops (copied with their progress from ``parent``),
    then the remaining round. With ``touched``, only those couriers' rounds change; the others
    are copied from ``parent`` as they are.
    """
    problem = replanned.problem
    jobs = problem.job_by_id()
    old_routes = {r.courier_id: r for r in parent.routes}
    new_routes = {r.courier_id: r for r in replanned.remaining.routes}
    for r in list(plan.routes):
        session.delete(r)
    session.flush()
    couriers = set(old_routes) | set(new_routes)
    for cid in sorted(couriers):
        old = old_routes.get(cid)
        if touched is not None and cid not in touched:
            if old is not None:
                plan.routes.append(copy_route(plan.id, old))
            continue
        frozen = replanned.frozen.get(cid, ())
        tail = new_routes.get(cid)
        if not frozen and (tail is None or not tail.stops):
            continue
        old_stops = {s.job_id: s for s in old.stops} if old is not None else {}
        if tail is not None:
            rec = route_record(plan.id, tail, problem, [], None)
            legs = _tail_legs(network, problem, tail)
        else:
            assert old is not None
            rec = copy_route(plan.id, old)
            for s in list(rec.stops):
                rec.stops.remove(s)
            legs = []
        head = [copy_stop(plan.id, old_stops[j]) for j in frozen if j in old_stops]
        tail_stops = list(rec.stops)
        for s in tail_stops:
            rec.stops.remove(s)
        for seq, s in enumerate([*head, *tail_stops]):
            s.seq = seq
            rec.stops.append(s)
        if old is not None:
            rec.start_s = min(old.start_s, rec.start_s)
        rec.legs = legs
        plan.routes.append(rec)
    plan.problem = problem_to_json(problem)
    plan.unassigned = [
        unassigned_entry(u.job_id, u.reason, u.detail)
        for u in replanned.remaining.unassigned
        if u.job_id in jobs
    ]
    plan.objective = replanned.remaining.objective
    plan.stats = {
        "replan": replanned.stats,
        "diff": replanned.diff(),
        "violations": [str(v) for v in replanned.violations],
        "num_routes": len(plan.routes),
    }
    plan.status = "ready"
    plan.finished_at = utcnow()
    session.flush()


def _tail_legs(network: Network | None, problem: Problem, route: Route) -> list[Any]:
    """Draw the remaining round's legs along the roads (for the maps)."""
    if network is None or not route.stops:
        return []
    on_route = {s.job_id for s in route.stops}
    sub = Problem(
        problem.depots, (), tuple(j for j in problem.jobs if j.job_id in on_route), day=problem.day
    )
    where = {j.job_id: sub.job_location(k) for k, j in enumerate(sub.jobs)}
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    _tm, snaps = network.matrix(lons, lats)
    stops = tuple(replace(s, location_idx=where[s.job_id]) for s in route.stops)
    return route_legs(network, snaps, sub, replace(route, stops=stops))


# -- no stop event lost between versions --------------------------------------------------------


@dataclass(slots=True)
class _Progress:
    status: str = StopStatus.PLANNED
    status_at: datetime | None = None
    arrived_at: datetime | None = None
    done_at: datetime | None = None
    fail_reason: str | None = None


def day_progress(session: Session, day: date) -> dict[str, _Progress]:
    """Fold every stop event stored for a day, on any version, into each job's progress.

    The same rule as the live path: the status is the kind of the latest event by device
    time, ``arrived_at`` the earliest arrival, ``done_at`` and the fail reason those of the
    latest terminal event.
    """
    plan_ids = select(PlanRecord.id).where(PlanRecord.day == day)
    rows = session.execute(
        select(StopEvent.job_id, StopEvent.kind, StopEvent.device_ts, StopEvent.reason)
        .where(StopEvent.plan_id.in_(plan_ids))
        .order_by(StopEvent.device_ts, StopEvent.id)
    ).all()
    out: dict[str, _Progress] = {}
    for job_id, kind, ts, reason in rows:
        p = out.setdefault(job_id, _Progress())
        p.status, p.status_at = kind, ts
        if kind == EventKind.ARRIVED:
            if p.arrived_at is None:
                p.arrived_at = ts
        else:
            p.done_at = ts
            p.fail_reason = reason if kind == EventKind.FAILED else None
    return out


def carry_progress(session: Session, plan: PlanRecord) -> int:
    """Give every stop of ``plan`` the progress the day's stored events say; return how many changed."""
    progress = day_progress(session, plan.day)
    changed = 0
    for r in plan.routes:
        for s in r.stops:
            p = progress.get(s.job_id)
            if p is None:
                continue
            new = (p.status, p.status_at, p.arrived_at, p.done_at, p.fail_reason)
            old = (s.status, s.status_at, s.arrived_at, s.done_at, s.fail_reason)
            if new != old:
                s.status, s.status_at, s.arrived_at, s.done_at, s.fail_reason = new
                changed += 1
    session.flush()
    return changed


def insert_into_draft(
    session: Session,
    parent: PlanRecord,
    new_jobs: tuple[Job, ...],
    route: Route,
    courier_id: str,
    frozen: tuple[str, ...],
    network: Network | None,
) -> PlanRecord:
    """Store an accepted suggestion: a new ready version with the job on the courier's round."""
    from routing.replan import Replan

    problem = problem_from_json(parent.problem)
    day_problem = Problem(
        problem.depots, problem.couriers, (*problem.jobs, *new_jobs), day=problem.day
    )
    where = {j.job_id: day_problem.job_location(k) for k, j in enumerate(day_problem.jobs)}
    tail = replace(
        route, stops=tuple(replace(s, location_idx=where[s.job_id]) for s in route.stops)
    )
    kept = tuple(
        Unassigned(u["job_id"], u["reason"], u.get("detail", "")) for u in parent.unassigned
    )
    replanned = Replan(
        day_problem,
        Plan((tail,), kept, parent.objective or 0),
        {},
        {courier_id: frozen},
        [],
        [],
        {"inserted": [j.job_id for j in new_jobs], "courier_id": courier_id},
    )
    draft = create_draft(session, parent, {"insert": [job_to_json(j) for j in new_jobs]})
    save_replan(session, draft, parent, replanned, network, touched={courier_id})
    draft.stats = {
        "insert": {"jobs": [j.job_id for j in new_jobs], "courier_id": courier_id},
        "diff": {
            "counts": {"added": len(new_jobs)},
            "jobs": [
                {"job_id": j.job_id, "kind": "added", "before": None, "after": courier_id}
                for j in new_jobs
            ],
        },
    }
    session.flush()
    return draft


def _read_closures(features: list[Any]) -> list[Any]:
    """Read closures from GeoJSON features with :func:`geodata.closures.read_closures`."""
    import tempfile
    from pathlib import Path

    from geodata.closures import read_closures

    with tempfile.TemporaryDirectory(prefix="courier-closures-") as tmp:
        path = Path(tmp) / "closures.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        return list(read_closures(path))


def parse_closures(collection: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate closures given as a GeoJSON FeatureCollection; return it as stored (its features).

    Raises
    ------
    routing.errors.InputError
        Naming the feature and why, if the collection cannot be read.
    """
    from geodata.errors import GeodataError
    from routing.errors import InputError

    features = collection.get("features")
    if collection.get("type") != "FeatureCollection" or not isinstance(features, list):
        msg = "must be a GeoJSON FeatureCollection"
        raise InputError(None, "closures", collection.get("type"), msg)
    try:
        _read_closures(features)
    except (GeodataError, ValueError, KeyError, TypeError) as e:
        raise InputError(None, "closures", None, f"cannot read the closures: {e}") from e
    return list(features)


def closures_from_stored(features: list[dict[str, Any]]) -> list[Any]:
    """Rebuild closures stored by :func:`parse_closures`."""
    return _read_closures(features) if features else []
