"""Dispatcher endpoints: create a plan, follow it, read it (JSON, GeoJSON), edit, publish."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from api import lease, live
from api.auth.service import Role, authenticate
from api.deps import Dispatcher, Reader, RedisDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, AuthenticationError, NotFoundError, ServiceError
from api.events.service import seed_round_states
from api.jobs.service import build_problem
from api.network import get_network
from api.plans import service
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from api.plans.schemas import (
    PlanCreate,
    PlanCreated,
    PlanEdit,
    PlanList,
    PlanRead,
    PlanStatus,
    PlanSummary,
)
from api.rounds.service import local_seconds
from api.worker import enqueue_solve, requeue_solve, solve_timeout_s
from routing.errors import InputError

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
        options={"time_limit_s": body.time_limit_s, "seed": body.seed},
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
    edit = service.Edit(
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
    new = service.edit_plan(session, plan, edit, get_network(settings))
    session.commit()
    live.publish(r, new.id, {"type": "plan_edited", "plan_id": new.id, "revision": new.revision})
    return service.plan_dict(service.get_plan(session, new.id))


@router.post("/{plan_id}/publish", response_model=PlanRead)
def publish_plan(
    plan_id: PlanId, session: SessionDep, r: RedisDep, _: Dispatcher
) -> dict[str, Any]:
    """Publish a ready plan: its routes become the couriers' rounds for the day."""
    plan = service.publish_plan(session, service.get_plan(session, plan_id))
    seed_round_states(session, r, plan.id)
    session.commit()
    live.publish(r, plan.id, {"type": "published", "plan_id": plan.id, "version": plan.version})
    return service.plan_dict(plan)


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
    ``stop_event``, ``position``, ``solve``, ``plan_edited``, ``published``.
    """
    app = websocket.app
    header = websocket.headers.get("authorization", "")
    tok = token or (header[7:] if header.lower().startswith("bearer ") else None)
    factory = app.state.session_factory

    def auth() -> Any:
        with factory() as session:
            return authenticate(session, tok or "", cache=app.state.token_cache)

    try:
        if not tok:
            raise AuthenticationError("missing token")
        principal = await run_in_threadpool(auth)
    except ServiceError:
        await websocket.close(code=4401, reason="authentication required")
        return
    if principal.role not in (Role.dispatcher, Role.manager, Role.admin):
        await websocket.close(code=4403, reason="dispatchers and managers only")
        return
    await websocket.accept()
    r_sync = app.state.redis
    await live.stream_plan(
        websocket, app.state.aredis, plan_id, lambda: live_snapshot(factory, r_sync, plan_id)
    )
