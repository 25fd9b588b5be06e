"""Dispatcher endpoints: create a plan, follow it, read it (JSON, GeoJSON), edit, publish."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket, status
from sqlalchemy import select

from api import lease, live
from api.auth.service import Role
from api.deps import Dispatcher, Reader, RedisDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, ConflictError, NotFoundError
from api.events.service import seed_round_states
from api.jobs.service import build_problem
from api.network import get_network
from api.notify.service import record_published
from api.plans import running, service
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from api.plans.schemas import (
    PlanCreate,
    PlanCreated,
    PlanEdit,
    PlanList,
    PlanRead,
    PlanStatus,
    PlanSummary,
    ReplanCreate,
    SuggestionAccept,
    SuggestionAsk,
    SuggestionList,
)
from api.worker import enqueue_solve, requeue_solve, solve_timeout_s
from routing.clock import local_seconds
from routing.codec import job_to_json
from routing.edit import Edit
from routing.errors import InputError
from routing.suggest import insert_job, suggest_insertions

PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Plan id")]

router = APIRouter(prefix="/plans", tags=["plans"], responses=ERROR_RESPONSES)


@router.post("", response_model=PlanCreated, status_code=status.HTTP_202_ACCEPTED)
def create_plan(
    body: PlanCreate, session: SessionDep, r: RedisDep, settings: SettingsDep, who: Dispatcher
) -> PlanCreated:
    """Queue the plan of a day; solving happens on a worker. Returns at once with the plan id."""
    problem = build_problem(session, body.day, courier_ids=body.courier_ids)
    rec = service.create_plan(
        session,
        problem=problem,
        options={
            "time_limit_s": service.plan_time_limit_s(
                body.time_limit_s, settings.solve_time_limit_s, len(problem.jobs)
            ),
            "seed": body.seed,
            "territory": body.territory,
        },
        created_by=who.user_id,
    )
    session.commit()
    lease.forget(r, rec.id)
    live.set_progress(r, rec.id, {"status": "queued", "stage": "queued", "elapsed_s": 0.0})
    enqueue_solve(r, settings.queue_name, rec.id, timeout_s=solve_timeout_s(rec.options))
    return PlanCreated(plan_id=rec.id, day=rec.day, version=rec.version, status=rec.status)


@router.get("", response_model=PlanList)
def list_plans(session: SessionDep, _: Reader, day: dt.date | None = None) -> PlanList:
    """List plans, newest first (optionally of one day)."""
    q = select(
        PlanRecord.id, PlanRecord.day, PlanRecord.version, PlanRecord.status, PlanRecord.objective
    )
    if day is not None:
        q = q.where(PlanRecord.day == day)
    rows = session.execute(q.order_by(PlanRecord.id.desc()).limit(500)).all()
    data = [PlanSummary(id=a, day=b, version=c, status=d, objective=e) for a, b, c, d, e in rows]
    return PlanList(data=data, count=len(data))


@router.get("/{plan_id}", response_model=PlanRead)
def read_plan(plan_id: PlanId, session: SessionDep, _: Reader) -> dict[str, Any]:
    """Return a plan: routes with ordered stops and ETAs, unassigned jobs with reasons."""
    return service.plan_dict(service.get_plan(session, plan_id))


@router.get("/{plan_id}/geojson")
def read_plan_geojson(plan_id: PlanId, session: SessionDep, _: Reader) -> dict[str, Any]:
    """Return a plan as an RFC 7946 FeatureCollection (depots, legs, stops, unassigned)."""
    return service.plan_geojson(service.get_plan(session, plan_id))


@router.get("/{plan_id}/status", response_model=PlanStatus)
def plan_status(
    plan_id: PlanId, session: SessionDep, r: RedisDep, settings: SettingsDep, _: Reader
) -> PlanStatus:
    """Return the solve's live progress: stage, elapsed, best objective so far, jobs assigned.

    A plan whose solve worker was lost is queued again (once) or failed here, as by the reaper.
    """
    query = select(PlanRecord.status, PlanRecord.error).where(PlanRecord.id == plan_id)
    row = session.execute(query).first()
    if row is None:
        raise NotFoundError(f"plan {plan_id} not found")
    if row[0] in lease.ACTIVE:
        requeue = partial(requeue_solve, r, settings.queue_name)
        if lease.reap_plan(session, r, plan_id, requeue=requeue) is not None:
            row = session.execute(query).first()
            assert row is not None
    progress = live.get_progress(r, plan_id)
    return PlanStatus(
        plan_id=plan_id,
        status=row[0],
        stage=progress.get("stage"),
        elapsed_s=progress.get("elapsed_s"),
        best_objective=progress.get("best_objective"),
        jobs_assigned=progress.get("jobs_assigned"),
        error=row[1],
        progress=progress,
    )


@router.post("/{plan_id}/edits", response_model=PlanRead)
def edit_plan(
    plan_id: PlanId,
    body: PlanEdit,
    session: SessionDep,
    r: RedisDep,
    settings: SettingsDep,
    _: Dispatcher,
) -> dict[str, Any]:
    """Move, reorder or unassign; checked by the plan checker, refused (409) if infeasible.

    Editing a published plan creates a new version (returned), to be published in its turn.
    """
    plan = service.get_plan(session, plan_id)
    edit = Edit(
        op=body.op,
        job_id=body.job_id,
        courier_id=body.courier_id,
        position=body.position,
        job_ids=tuple(body.job_ids),
    )
    if edit.op in ("move", "unassign") and not edit.job_id:
        raise InputError(None, "job_id", None, f"required for {edit.op}")
    if edit.op in ("move", "reorder") and not edit.courier_id:
        raise InputError(None, "courier_id", None, f"required for {edit.op}")
    state = running.edit_state(session, plan, _edit_now(plan.day, body.now))
    new = service.edit_plan(session, plan, edit, get_network(settings), running=state)
    session.commit()
    live.publish(r, new.id, {"type": "plan_edited", "plan_id": new.id, "revision": new.revision})
    return service.plan_dict(service.get_plan(session, new.id))


@router.post("/{plan_id}/publish", response_model=PlanRead)
def publish_plan(
    plan_id: PlanId, session: SessionDep, r: RedisDep, _: Dispatcher
) -> dict[str, Any]:
    """Publish a ready plan: its routes become the couriers' rounds for the day."""
    plan = service.get_plan(session, plan_id)
    # No stop event is lost between versions: the stops take the day's events, whichever
    # version the phones posted them on while this one was a draft.
    running.carry_progress(session, plan)
    plan = service.publish_plan(session, plan)
    seed_round_states(session, r, plan.id)
    record_published(session, plan)  # citizens' day-ahead messages and webhooks, sent by the worker
    session.commit()
    live.publish(r, plan.id, {"type": "published", "plan_id": plan.id, "version": plan.version})
    live.announce_version(r, plan.day, plan.id, plan.version)  # the couriers' phones, at once
    return service.plan_dict(plan)


# -- the running day -----------------------------------------------------------------------------


def _now_s(day: dt.date, now: datetime | None) -> int:
    """Return the re-plan's "now" as seconds since local midnight of the plan's day."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise InputError(None, "now", str(moment), "needs a time zone (e.g. +07:00)")
    return local_seconds(moment, day)


def _edit_now(day: dt.date, now: datetime | None) -> int | None:
    """Return an edit's "now" on the plan's day; None when the clock is on another day."""
    if now is not None:
        return _now_s(day, now)
    seconds = local_seconds(datetime.now(UTC), day)
    return seconds if 0 <= seconds < 86_400 else None


def _published(session: Any, plan_id: int) -> PlanRecord:
    plan = service.get_plan(session, plan_id)
    if plan.status != "published":
        msg = f"plan {plan_id} is {plan.status}; the running day is re-planned from the published plan"
        raise ConflictError(msg)
    return plan


@router.post("/{plan_id}/replan", response_model=PlanCreated, status_code=status.HTTP_202_ACCEPTED)
def replan(
    plan_id: PlanId,
    body: ReplanCreate,
    session: SessionDep,
    r: RedisDep,
    settings: SettingsDep,
    _: Dispatcher,
) -> PlanCreated:
    """Re-plan the rest of the day from the published plan's live state (solved on a worker).

    New and urgent jobs (given here, or uploaded for the day since the plan), cancelled
    jobs, couriers stopping from a time and new road closures. The result is a draft version
    with its difference from the plan in force (``stats.diff``), to be published in its turn.
    """
    parent = _published(session, plan_id)
    now_s = _now_s(parent.day, body.now)
    new_jobs = running.parse_job_rows(body.new_jobs)
    couriers = {c["courier_id"] for c in parent.problem["couriers"]}
    unavailable: dict[str, int] = {}
    for k, off in enumerate(body.unavailable):
        if off.courier_id not in couriers:
            raise InputError(
                None, f"unavailable.{k}.courier_id", off.courier_id, "not a courier of this plan"
            )
        unavailable[off.courier_id] = now_s if off.at is None else _now_s(parent.day, off.at)
    closures: list[dict[str, Any]] = []
    if body.closures is not None:
        closures = running.parse_closures(body.closures)
    options = {
        "replan": {
            "now_s": now_s,
            "new_jobs": [job_to_json(j) for j in new_jobs],
            "with_uploaded_jobs": body.with_uploaded_jobs,
            "cancelled": sorted(set(body.cancelled)),
            "unavailable": unavailable,
            "closures": closures,
        },
        "time_limit_s": body.time_limit_s,
    }
    rec = running.create_draft(session, parent, options)
    session.commit()
    live.set_progress(r, rec.id, {"status": "queued", "stage": "queued", "elapsed_s": 0.0})
    enqueue_solve(r, settings.queue_name, rec.id, timeout_s=solve_timeout_s(options))
    return PlanCreated(plan_id=rec.id, day=rec.day, version=rec.version, status=rec.status)


@router.post("/{plan_id}/suggestions", response_model=SuggestionList)
def suggest(
    plan_id: PlanId, body: SuggestionAsk, session: SessionDep, settings: SettingsDep, _: Dispatcher
) -> SuggestionList:
    """Rank where one new job fits in the rounds of its post office, from now on."""
    parent = _published(session, plan_id)
    now_s = _now_s(parent.day, body.now)
    (job,) = running.parse_job_rows([body.job])
    day = running.live_day(session, parent)
    network = get_network(settings)
    found = suggest_insertions(
        day.problem,
        day.plan,
        day.states,
        now_s,
        job,
        network.travel_matrix,
        limit=body.limit,
        round_matrix=network.round_matrix,
    )
    return SuggestionList(job_id=job.job_id, now_s=now_s, data=[s.to_dict() for s in found])


@router.post("/{plan_id}/suggestions/accept", response_model=PlanRead)
def accept_suggestion(
    plan_id: PlanId,
    body: SuggestionAccept,
    session: SessionDep,
    r: RedisDep,
    settings: SettingsDep,
    _: Dispatcher,
) -> dict[str, Any]:
    """Put the new job on the chosen courier's round: a new draft version, to publish."""
    parent = _published(session, plan_id)
    now_s = _now_s(parent.day, body.now)
    (job,) = running.parse_job_rows([body.job])
    day = running.live_day(session, parent)
    network = get_network(settings)
    new_jobs, route, _start, frozen = insert_job(
        day.problem,
        day.plan,
        day.states,
        now_s,
        job,
        network.travel_matrix,
        courier_id=body.courier_id,
        position=body.position,
    )
    draft = running.insert_into_draft(
        session, parent, new_jobs, route, body.courier_id, frozen, network
    )
    session.commit()
    live.publish(r, draft.id, {"type": "plan_edited", "plan_id": draft.id, "revision": 0})
    return service.plan_dict(service.get_plan(session, draft.id))


def live_snapshot(factory: Any, r: Any, plan_id: int) -> dict[str, Any]:
    """Return the first message of a live feed.

    Route progress (done/total), each courier's last known state (position, next stop, ETA
    drift), failed stops with their reasons, late stops (served after their window, or still
    open after it closed) and the solve's progress.
    """
    with factory() as session:
        plan = session.execute(
            select(PlanRecord.status, PlanRecord.day).where(PlanRecord.id == plan_id)
        ).first()
        rows = session.execute(
            select(
                RouteRecord.courier_id,
                StopRecord.job_id,
                StopRecord.status,
                StopRecord.fail_reason,
                StopRecord.window_end_s,
                StopRecord.arrived_at,
                StopRecord.done_at,
            )
            .join(RouteRecord, RouteRecord.id == StopRecord.route_id)
            .where(StopRecord.plan_id == plan_id)
            .order_by(RouteRecord.courier_id, StopRecord.seq)
        ).all()
    routes: dict[str, dict[str, int]] = {}
    failed, late = [], []
    now = datetime.now(UTC)
    for courier_id, job_id, st, reason, window_end_s, arrived_at, done_at in rows:
        prog = routes.setdefault(courier_id, {"done": 0, "total": 0})
        prog["total"] += 1
        prog["done"] += st in ("completed", "failed")
        if st == "failed":
            failed.append({"courier_id": courier_id, "job_id": job_id, "reason": reason})
        if plan is not None:
            seen = arrived_at or done_at or (now if st in ("planned", "arrived") else None)
            if seen is not None and local_seconds(seen, plan[1]) > window_end_s:
                late.append({"courier_id": courier_id, "job_id": job_id, "status": st})
    return {
        "type": "snapshot",
        "plan_id": plan_id,
        "plan_status": plan[0] if plan is not None else None,
        "routes": routes,
        "couriers": live.courier_states(r, plan_id, sorted(routes)),
        "failed": failed,
        "late": late,
        "solve": live.get_progress(r, plan_id),
    }


@router.websocket("/{plan_id}/live")
async def plan_live(websocket: WebSocket, plan_id: int, token: str | None = None) -> None:
    """Stream a plan's live feed: stop events, positions, ETA drift, solve progress.

    Authenticate with ``?token=`` or an ``Authorization: Bearer`` header (dispatcher,
    manager or admin). Messages are JSON objects with a ``type``: ``snapshot`` first, then
    ``stop_event``, ``position``, ``solve``, ``plan_edited``, ``published``; those arriving
    within ``COURIER_LIVE_BATCH_S`` of each other come as one ``batch`` (``messages``: a list
    of them, in order).

    The socket is accepted, then closed with a code a browser can read: 4401 without a valid
    token, and within ``COURIER_WS_RECHECK_S`` seconds of the token being revoked or expiring;
    4403 for other roles; 4429 when the user already holds ``COURIER_WS_MAX_PER_USER`` open
    sockets (across every API process).
    """
    listener = await live.admit(
        websocket,
        token,
        roles=(Role.dispatcher, Role.manager, Role.admin),
        refusal="dispatchers and managers only",
    )
    if listener is None:
        return
    app = websocket.app
    factory, r_sync = app.state.session_factory, app.state.redis
    try:
        await live.stream(
            websocket,
            app.state.aredis,
            live.channel(plan_id),
            lambda: live_snapshot(factory, r_sync, plan_id),
            still_allowed=listener.still_allowed,
            recheck_s=app.state.settings.ws_recheck_s,
            batch_s=app.state.settings.live_batch_s,
        )
    finally:
        await listener.slot.release()
