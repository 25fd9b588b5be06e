"""Courier endpoints that write: stop events, proof photos, GPS positions; plus event reads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import redis
from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.auth.service import Principal, Role
from api.config import Settings
from api.days import service as days
from api.deps import BEARER_DOC, CurrentUser, Reader, SessionDep, SettingsDep, principal_of
from api.errors import (
    ERROR_RESPONSES,
    ErrorResponse,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from api.events import service
from api.events.models import StopEvent
from api.events.schemas import (
    EventList,
    PhotoRead,
    PositionIn,
    PositionRead,
    StopEventIn,
    StopEventRead,
)
from api.network import warm_network_or_none
from api.pagination import DEFAULT_LIMIT, Limit
from api.threads import QueuedThreads
from routing.errors import InputError

OptPlanId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
EventAfter = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,  # event ids are 32-bit integers in the database
        description="Start after this event id: the previous page's `next_after`",
    ),
]

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)
T = TypeVar("T")
#: The caller of a courier's write: :data:`CurrentUser` in one dependency instead of a chain
#: (checked before the body, as every route does); the routes document the bearer scheme.
Caller = Annotated[Principal, Depends(principal_of)]


def _courier(who: Principal) -> Principal:
    if who.role != Role.courier or not who.courier_id:
        msg = "only couriers post events for their round"
        raise PermissionDeniedError(msg)
    return who


def _read(ev: StopEvent, duplicate: bool = False, stop_status: str | None = None) -> StopEventRead:
    return StopEventRead(
        id=ev.id,
        plan_id=ev.plan_id,
        courier_id=ev.courier_id,
        job_id=ev.job_id,
        kind=ev.kind,
        idempotency_key=ev.idempotency_key,
        device_ts=ev.device_ts,
        received_at=ev.received_at,
        reason=ev.reason,
        duplicate=duplicate,
        stop_status=stop_status,
    )


#: The couriers' writes run on threads that live as long as the process (where anyio's pool
#: retires threads idle for 10 s), handed their work through one queue: one set of threads
#: per size asked (``COURIER_WRITE_THREADS``), shared by the apps of a process.
_writers: dict[int, QueuedThreads] = {}


_thread = threading.local()


def _redis_of(state: Any) -> redis.Redis:
    """Return this writer thread's Redis client: one connection of the app's pool, kept.

    Taking a connection from the pool and giving it back around every command cost about as
    much CPU as the command itself; each writer thread keeps one instead (a process serving
    several apps, as the tests do, gets one per app's pool).
    """
    pool = state.redis.connection_pool
    client: redis.Redis | None = getattr(_thread, "redis", None)
    if client is None or client.connection_pool is not pool:
        if client is not None:
            client.close()  # the connection goes back to its (former) app's pool
        client = redis.Redis(connection_pool=pool, single_connection_client=True)
        _thread.redis = client
    return client


async def _in_writer(state: Any, write: Callable[[], T]) -> T:
    """Run ``write`` on a writer thread (with this request's context: its id in the logs)."""
    threads: int = state.settings.write_threads
    writers = _writers.get(threads)
    if writers is None:
        writers = _writers.setdefault(threads, QueuedThreads(threads, "courier-write"))
    return await writers.run(write)


def _answer(read: BaseModel, duplicate: bool) -> Response:
    """Return a write's answer as JSON: 201 when stored now, 200 when it already was.

    Serialised here, on the event loop: FastAPI would validate the returned model again in a
    worker thread, a second thread hop on the service's most frequent requests.
    """
    return Response(
        read.model_dump_json(), 200 if duplicate else 201, media_type="application/json"
    )


async def write_event(state: Any, who: Principal, body: StopEventIn) -> StopEventRead:
    """Store a courier's stop event and publish it; return the answer (see :func:`post_event`).

    ``state`` is the app's state. Served by :mod:`api.events.writes` (plain ASGI); the
    documented FastAPI route below calls it too.
    """
    courier = _courier(who)
    settings: Settings = state.settings

    def write() -> StopEventRead:
        # One worker thread does the whole write: the database, then the live feed.
        with state.session_factory() as session:
            rec = service.record_event(
                session,
                courier,
                body,
                uploads=settings.uploads_dir,
                device_ts_ahead_s=settings.device_ts_ahead_s,
            )
            # A phone that synced after its day was closed: the close takes the result in.
            day = service.plan_day_of(session, rec.row.plan_id)
            closed = rec.day_closed  # asked where the event was stored, unless a retry
            if closed is None:
                closed = days.is_closed_cached(session, day)
            if closed:
                days.record_late_result(session, day, rec.row.job_id)
            if not rec.duplicate:
                try:
                    service.publish_event(session, _redis_of(state), rec)
                except Exception:  # the event is stored; the live feed is best effort
                    service.logger.exception("publishing event %s failed", rec.row.id)
            return _read(rec.row, rec.duplicate, rec.stop_status)

    return await _in_writer(state, write)


async def write_position(state: Any, who: Principal, body: PositionIn) -> PositionRead:
    """Store a courier's GPS fix and publish it; return the answer (see :func:`post_position`).

    ``state`` is the app's state. Served by :mod:`api.events.writes` (plain ASGI); the
    documented FastAPI route below calls it too.
    """
    courier = _courier(who)
    settings: Settings = state.settings
    network = warm_network_or_none(settings) if settings.road_eta else None

    def write() -> PositionRead:
        with state.session_factory() as session:
            rec = service.record_position(
                session,
                _redis_of(state),
                courier,
                body,
                network,
                device_ts_ahead_s=settings.device_ts_ahead_s,
            )
        p = rec.projection
        return PositionRead(
            id=rec.row.id,
            courier_id=rec.row.courier_id,
            device_ts=rec.row.device_ts,
            duplicate=rec.duplicate,
            next_job_id=None if p is None else p.job_id,
            eta_drift_s=None if p is None else p.drift_s,
            eta_basis=None if p is None else p.basis,
            expected_late=[] if p is None else list(p.expected_late),
        )

    return await _in_writer(state, write)


@router.post(
    "/rounds/me/events",
    response_model=StopEventRead,
    status_code=201,
    responses={
        200: {"model": StopEventRead, "description": "Already stored (same idempotency key)"}
    },
    openapi_extra=BEARER_DOC,
)
async def post_event(body: StopEventIn, request: Request, who: Caller) -> Response:
    """Record arrived / completed (with proof) / failed (with a reason) at one of my stops.

    Stored durably before the response; a repeated idempotency key returns the stored event
    with status 200 and changes nothing (the same key with another event is a 409). The
    stop's status follows the latest event by ``device_ts``, so events queued offline and sent
    late land in their true order.
    """
    read = await write_event(request.app.state, who, body)
    return _answer(read, read.duplicate)


@router.post(
    "/rounds/me/positions",
    response_model=PositionRead,
    status_code=201,
    responses={200: {"model": PositionRead, "description": "Already stored"}},
    openapi_extra=BEARER_DOC,
)
async def post_position(body: PositionIn, request: Request, who: Caller) -> Response:
    """Record a GPS fix of mine (idempotent), published with the next stop's ETA.

    The ETA runs along the roads once the road network is ready in the serving process (by
    straight line before that, and from fixes far from every mapped road); the reply and the
    live feed say which in ``eta_basis``.
    """
    read = await write_position(request.app.state, who, body)
    return _answer(read, read.duplicate)


@router.post(
    "/rounds/me/photos",
    response_model=PhotoRead,
    status_code=201,
    responses={415: {"model": ErrorResponse, "description": "Not an image"}},
)
async def post_photo(
    settings: SettingsDep,
    who: CurrentUser,
    file: Annotated[UploadFile, File(description="A JPEG, PNG, WebP or HEIC proof photo")],
) -> PhotoRead:
    """Upload a proof photo; reference it as ``proof.photo_id`` in a completed event.

    The photo is on disk (synced) before the answer; a file that is not an image is refused
    with 415.
    """
    _courier(who)
    limit = settings.max_photo_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        msg = f"photo larger than {limit} bytes"
        raise PayloadTooLargeError(msg, errors=[{"column": "file", "reason": msg}])
    if not data:
        raise InputError(None, "file", file.filename, "empty photo")
    photo_id = await run_in_threadpool(service.store_photo, settings.uploads_dir, data)
    return PhotoRead(photo_id=photo_id, size=len(data))


@router.get("/rounds/me/events", response_model=EventList)
def my_events(
    session: SessionDep,
    who: CurrentUser,
    plan_id: OptPlanId = None,
    limit: Limit = DEFAULT_LIMIT,
    after: EventAfter = None,
) -> EventList:
    """List my stop events in device-time order, a page at a time (``next_after`` → ``after``)."""
    page = service.list_events(
        session, plan_id=plan_id, courier_id=_courier(who).courier_id, limit=limit, after=after
    )
    return EventList(
        data=[_read(e) for e in page.rows], count=page.count, next_after=page.next_after
    )


@router.get("/events", response_model=EventList)
def list_events(
    session: SessionDep,
    _: Reader,
    plan_id: OptPlanId = None,
    courier_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    after: EventAfter = None,
) -> EventList:
    """List stop events (of a plan and/or a courier) in device-time order, a page at a time.

    Pass a page's ``next_after`` as ``after`` to read the next one; it is null on the last page.
    """
    page = service.list_events(
        session, plan_id=plan_id, courier_id=courier_id, limit=limit, after=after
    )
    return EventList(
        data=[_read(e) for e in page.rows], count=page.count, next_after=page.next_after
    )
