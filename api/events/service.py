"""Record couriers' stop events and positions: once per idempotency key, ordered by device time.

Each write is committed before the request returns, then published on the plan's live
channel with the route's progress, the next stop and the ETA drift.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

import redis
from sqlalchemy import String, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api import live
from api.auth.service import Principal
from api.days import service as days_closed
from api.db import Prepared, UTCDateTime, session_engine, utcnow, write_lock
from api.errors import ConflictError, NotFoundError, UnsupportedMediaError
from api.events.handover import authorised_columns
from api.events.models import Position, Proof, StopEvent
from api.events.schemas import PositionIn, StopEventIn
from api.network import Network
from api.notify.service import (
    STOP_EVENT_COLUMNS,
    record_on_the_way,
    stop_event_insert,
    stop_event_row,
)
from api.pagination import DEFAULT_LIMIT, Page, count_rows, cut
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from api.plans.service import published_plan_id
from routing.clock import LOCAL_TZ, local_seconds
from routing.codec import job_from_json
from routing.errors import InputError
from routing.eta import PlannedStop, Projection, project, travel_s
from routing.handover import check_recipient
from routing.model import Job
from routing.notify import due_from_fix
from routing.vocabulary import DONE_STATUSES, EventKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome of a write: the stored row and whether it was already there.

    ``row`` has the columns of a :class:`StopEvent` or :class:`Position` as attributes (the
    ORM row when it was read back, a plain namespace when it was just inserted). A stop event
    just stored also says whether its day is closed and its route's stops after it, read on
    the connection that stored it (None: not read, ask again).
    """

    row: Any
    duplicate: bool
    stop_status: str | None = None
    route_id: int | None = None
    projection: Projection | None = None
    day_closed: bool | None = None
    stops: list[StopRow] | None = None


def _plans_for(session: Session, device_ts: datetime, plan_id: int | None) -> list[int]:
    """Return the plans an event may belong to, the one to record it on first.

    That is the day's published plan. A phone that was offline while the dispatcher published
    a new version still names the old one: its event goes to the new version if the job is
    still on the courier's round there, else to the version the phone named (the courier may
    well have served a job the dispatcher has since moved), so it is never refused for that.
    """
    if plan_id is None:
        day = device_ts.astimezone(LOCAL_TZ).date()
        pid = published_plan_id(session, day, cached=True)
        if pid is None:
            msg = f"no published plan for {day}"
            raise NotFoundError(msg)
        return [pid]
    current = published_plan_id(session, plan_day_of(session, plan_id), cached=True)
    if current == plan_id:
        return [plan_id]
    status = session.scalar(select(PlanRecord.status).where(PlanRecord.id == plan_id))
    if status not in TAKES_EVENTS:
        msg = f"plan {plan_id} is {status}: only a published (or superseded) plan takes events"
        raise ConflictError(msg)
    return [current, plan_id] if current is not None else [plan_id]


#: Plan statuses whose stops a courier's event may land on (never a draft).
TAKES_EVENTS = ("published", "superseded")


#: Process caches of what never changes once published, keyed by engine and plan id: one
#: process may serve several databases (the test suite does), whose plan ids overlap.
_plan_days: dict[tuple[Any, int], date] = {}


def plan_day_of(session: Session, plan_id: int) -> date:
    """Return the day of a plan (cached: it never changes)."""
    key = (session_engine(session), plan_id)
    if key not in _plan_days:
        day = session.scalar(select(PlanRecord.day).where(PlanRecord.id == plan_id))
        if day is None:
            msg = f"plan {plan_id} not found"
            raise NotFoundError(msg)
        _plan_days[key] = day
    return _plan_days[key]


@dataclass(frozen=True, slots=True)
class StopRow:
    """The columns of a stop the live feed needs."""

    id: int
    seq: int
    job_id: str
    status: str
    arrival_s: int
    lon: float
    lat: float
    window_end_s: int


def route_stops(session: Session, route_id: int, *, conn: Any = None) -> list[StopRow]:
    """Return a route's stops in order, as plain rows.

    Read on the session's connection, or on ``conn``, a pooled driver connection of its engine.
    """
    route = _fast(session).route_stops
    if conn is None:
        rows = route.run(session.connection(), {"route_key": route_id})
    else:
        rows = route.run(conn, {"route_key": route_id}, engine=session_engine(session))
    return [StopRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class PublishedRounds:
    """A published plan's rounds as planned: couriers' routes, their starts and stops in order."""

    route_of: dict[str, int]
    stops_of: dict[int, tuple[PlannedStop, ...]]
    start_of: dict[int, int]


_published: dict[tuple[Any, int], PublishedRounds] = {}
_published_lock = threading.Lock()


def published_rounds(session: Session, plan_id: int) -> PublishedRounds:
    """Return a published plan's rounds, read once per process in two queries.

    Published plans never change (edits make a new version), so nothing here goes stale; a
    whole day at once spares the first minutes of a shift one query per courier.
    """
    key = (session_engine(session), plan_id)
    found = _published.get(key)
    if found is not None:
        return found
    with _published_lock:  # one thread reads the day; the couriers' first requests wait for it
        if key in _published:
            return _published[key]
        if len(_published) > 64:
            _published.clear()
        conn = session.connection()
        sql = _sql(session)
        route_of: dict[str, int] = {}
        start_of: dict[int, int] = {}
        for courier_id, rid, start_s in conn.execute(sql.plan_routes, {"plan_key": plan_id}):
            route_of[courier_id] = rid
            start_of[rid] = start_s
        stops: dict[int, list[PlannedStop]] = {rid: [] for rid in route_of.values()}
        for rid, *planned in conn.execute(sql.plan_stops, {"plan_key": plan_id}):
            stops.setdefault(rid, []).append(PlannedStop(*planned))
        _published[key] = PublishedRounds(
            route_of, {rid: tuple(v) for rid, v in stops.items()}, start_of
        )
    return _published[key]


def progress_of(stops: list[StopRow]) -> tuple[dict[str, int], StopRow | None]:
    """Return ``{"done", "total"}`` and the next stop to serve (None when all are done)."""
    done = sum(s.status in DONE_STATUSES for s in stops)
    nxt = next((s for s in stops if s.status not in DONE_STATUSES), None)
    return {"done": done, "total": len(stops)}, nxt


def _check_proof(body: StopEventIn, job: Job, uploads: Path) -> None:
    """Refuse a completion without the proof the job's rules ask for (:class:`routing.model.Job`)."""
    if body.kind == EventKind.FAILED and body.reason is None:
        raise InputError(None, "reason", None, "a failed stop needs a reason code")
    if body.kind != EventKind.COMPLETED:
        return
    proof = body.proof
    if job.kind == "delivery":
        if proof is None or not proof.recipient_name.strip():
            raise InputError(
                None, "proof.recipient_name", None, "a handover needs the recipient's name"
            )
        if job.needs_id_check and proof.id_check != "passed":
            raise InputError(
                None,
                "proof.id_check",
                proof.id_check,
                "a licence or certificate needs a passed ID check",
            )
        if job.is_payout and proof.cash_paid_vnd is None:
            raise InputError(
                None,
                "proof.cash_paid_vnd",
                None,
                f"a payout of {job.payout_vnd} VND needs the amount paid",
            )
    if (
        proof is not None
        and proof.photo_id is not None
        and not (uploads / f"{proof.photo_id}.bin").is_file()
    ):
        raise InputError(None, "proof.photo_id", proof.photo_id, "unknown photo; upload it first")
    if proof is not None:
        check_recipient(job, proof.received_by, authorised_given=proof.authorised is not None)
        authorised = proof.authorised
        if authorised is not None and not (uploads / f"{authorised.photo_id}.bin").is_file():
            raise InputError(
                None,
                "proof.authorised.photo_id",
                authorised.photo_id,
                "unknown photo; upload it first",
            )


def _existing_event(session: Session, courier_id: str, key: str) -> StopEvent | None:
    return session.scalar(
        select(StopEvent).where(
            StopEvent.courier_id == courier_id, StopEvent.idempotency_key == key
        )
    )


def check_device_ts(device_ts: datetime, ahead_s: float) -> None:
    """Refuse a device time more than ``ahead_s`` seconds ahead of the server's clock.

    A phone's clock drifts a little, so a few minutes ahead are let through; further ahead, the
    event would order itself after everything the courier does next.

    Raises
    ------
    InputError
        Naming ``device_ts``.
    """
    now = utcnow()
    if device_ts > now + timedelta(seconds=ahead_s):
        raise InputError(
            None,
            "device_ts",
            device_ts.isoformat(),
            f"more than {ahead_s:g} s ahead of the server's clock ({now.isoformat(timespec='seconds')});"
            " check the phone's time",
        )


def _sha256_of(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def event_body_sha256(body: StopEventIn) -> str:
    """Return the hash of what an event says: two sends with one key must say the same.

    That is the job, the kind, the device time (as an instant: the offset it was written with
    does not matter), the reason, the proof and the plan as sent. The note and the position
    are not part of it: a phone may refine them when it sends again.
    """
    proof = body.proof
    return _sha256_of(
        {
            "job_id": body.job_id,
            "kind": str(body.kind),
            "device_ts": body.device_ts.astimezone(UTC).isoformat(),
            "reason": None if body.reason is None else str(body.reason),
            "proof": None
            if proof is None
            else [proof.recipient_name, proof.id_check, proof.cash_paid_vnd, proof.photo_id],
            "plan_id": body.plan_id,
        }
    )


def position_body_sha256(body: PositionIn) -> str:
    """Return the hash of what a GPS fix says: its device time (an instant), place and accuracy."""
    return _sha256_of(
        {
            "device_ts": body.device_ts.astimezone(UTC).isoformat(),
            "lon": body.lon,
            "lat": body.lat,
            "accuracy_m": body.accuracy_m,
        }
    )


def _retry_of(stored: Any, body_sha256: str, what: str) -> Recorded:
    """Answer a repeated idempotency key: the stored row if the body is the same, else 409.

    A row stored before bodies were hashed (``body_sha256`` null) is taken as the same.

    Raises
    ------
    ConflictError
        When the key was used for a different body.
    """
    if stored.body_sha256 is not None and stored.body_sha256 != body_sha256:
        msg = (
            f"idempotency key {stored.idempotency_key!r} was already used for a different {what};"
            " a new one needs a new key"
        )
        raise ConflictError(
            msg,
            errors=[{"column": "idempotency_key", "value": stored.idempotency_key, "reason": msg}],
        )
    return Recorded(stored, True)


@dataclass(frozen=True, slots=True)
class _LiveSQL:
    """The live path's statements, built once per dialect and run with parameters.

    Building a SQLAlchemy statement costs more CPU than running it; couriers' writes are the
    service's most frequent requests, so they reuse these.
    """

    find_stop: Any
    find_job_stop: Any
    route_stops: Any
    plan_stop_rows: Any
    plan_routes: Any
    plan_stops: Any
    insert_event: Any
    insert_position: Any
    insert_proof: Any
    arrive: Any
    finish: Any


def _sql(session: Session) -> _LiveSQL:
    return _live_sql(session_engine(session).dialect.name)


@cache
def _live_sql(dialect: str) -> _LiveSQL:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    # Moving a stop to an event only if it is the latest by device time, as SQL CASE over the
    # row's current values: concurrent events of one stop (two phones, two API processes)
    # cannot overwrite a later event with an earlier one.
    ts = bindparam("new_ts", type_=UTCDateTime())
    latest = or_(StopRecord.status_at.is_(None), StopRecord.status_at <= ts)
    moved: dict[Any, Any] = {
        StopRecord.status: case(
            (latest, bindparam("new_status", type_=String(20))), else_=StopRecord.status
        ),
        StopRecord.status_at: case((latest, ts), else_=StopRecord.status_at),
    }
    first = or_(StopRecord.arrived_at.is_(None), StopRecord.arrived_at > ts)
    last = or_(StopRecord.done_at.is_(None), StopRecord.done_at <= ts)
    one_stop = StopRecord.id == bindparam("stop_key")
    stop_row = (  # the columns of StopRow, in order
        StopRecord.id,
        StopRecord.seq,
        StopRecord.job_id,
        StopRecord.status,
        StopRecord.arrival_s,
        StopRecord.lon,
        StopRecord.lat,
        StopRecord.window_end_s,
    )
    return _LiveSQL(
        find_stop=select(StopRecord.id, StopRecord.route_id, StopRecord.job)
        .join(RouteRecord, RouteRecord.id == StopRecord.route_id)
        .where(
            StopRecord.plan_id == bindparam("plan_key"),
            StopRecord.job_id == bindparam("job_key"),
            RouteRecord.courier_id == bindparam("courier_key"),
        ),
        find_job_stop=select(StopRecord.id).where(
            StopRecord.plan_id == bindparam("plan_key"),
            StopRecord.job_id == bindparam("job_key"),
        ),
        route_stops=select(*stop_row)
        .where(StopRecord.route_id == bindparam("route_key"))
        .order_by(StopRecord.seq),
        plan_stop_rows=select(StopRecord.route_id, *stop_row)
        .where(StopRecord.plan_id == bindparam("plan_key"))
        .order_by(StopRecord.route_id, StopRecord.seq),
        plan_routes=select(RouteRecord.courier_id, RouteRecord.id, RouteRecord.start_s).where(
            RouteRecord.plan_id == bindparam("plan_key")
        ),
        plan_stops=select(
            StopRecord.route_id,
            StopRecord.job_id,
            StopRecord.arrival_s,
            StopRecord.waiting_s,
            StopRecord.window_end_s,
        )
        .where(StopRecord.plan_id == bindparam("plan_key"))
        .order_by(StopRecord.route_id, StopRecord.seq),
        insert_event=insert(StopEvent)
        .on_conflict_do_nothing(index_elements=["courier_id", "idempotency_key"])
        .returning(StopEvent.id),
        insert_position=insert(Position)
        .on_conflict_do_nothing(index_elements=["courier_id", "idempotency_key"])
        .returning(Position.id),
        insert_proof=insert(Proof).returning(Proof.id),  # as PostgreSQL compiles it anyway
        arrive=update(StopRecord)
        .where(one_stop)
        .values({**moved, StopRecord.arrived_at: case((first, ts), else_=StopRecord.arrived_at)})
        .returning(StopRecord.status),
        finish=update(StopRecord)
        .where(one_stop)
        .values(
            {
                **moved,
                StopRecord.done_at: case((last, ts), else_=StopRecord.done_at),
                StopRecord.fail_reason: case(
                    (last, bindparam("new_reason", type_=String(50))),
                    else_=StopRecord.fail_reason,
                ),
            }
        )
        .returning(StopRecord.status),
    )


#: The columns a courier's write inserts (all of them given: no Python-side defaults to fill).
EVENT_COLUMNS = [
    "stop_id",
    "plan_id",
    "courier_id",
    "job_id",
    "kind",
    "idempotency_key",
    "device_ts",
    "received_at",
    "reason",
    "note",
    "lon",
    "lat",
    "body_sha256",
]
PROOF_COLUMNS = [
    "event_id",
    "recipient_name",
    "id_check",
    "cash_paid_vnd",
    "photo_path",
    "photo_sha256",
    "received_by",
    "authorised_name",
    "authorised_relation",
    "authorised_id_digits",
    "authorisation_photo_sha256",
]
POSITION_COLUMNS = [
    "courier_id",
    "plan_id",
    "idempotency_key",
    "device_ts",
    "lon",
    "lat",
    "accuracy_m",
    "received_at",
    "body_sha256",
]


@dataclass(frozen=True, slots=True)
class _FastSQL:
    """The statements of every courier's write, run on the driver's cursor (:class:`Prepared`)."""

    find_stop: Prepared
    find_job_stop: Prepared
    route_stops: Prepared
    insert_event: Prepared
    insert_position: Prepared
    arrive: Prepared
    finish: Prepared
    insert_proof: Prepared
    insert_outbox: Prepared


_fast_sql: dict[tuple[Any, str], _FastSQL] = {}


def _fast(session: Session) -> _FastSQL:
    dialect = session_engine(session).dialect
    key = (type(dialect), dialect.paramstyle)
    found = _fast_sql.get(key)
    if found is None:
        sql = _live_sql(dialect.name)
        found = _FastSQL(
            find_stop=Prepared(sql.find_stop, dialect),
            find_job_stop=Prepared(sql.find_job_stop, dialect),
            route_stops=Prepared(sql.route_stops, dialect),
            insert_event=Prepared(sql.insert_event, dialect, EVENT_COLUMNS),
            insert_position=Prepared(sql.insert_position, dialect, POSITION_COLUMNS),
            arrive=Prepared(sql.arrive, dialect),
            finish=Prepared(sql.finish, dialect),
            insert_proof=Prepared(sql.insert_proof, dialect, PROOF_COLUMNS),
            insert_outbox=Prepared(stop_event_insert(dialect.name), dialect, STOP_EVENT_COLUMNS),
        )
        _fast_sql[key] = found
    return found


class _FoundStop(NamedTuple):
    """The stop an event names: its id, its route and its job (decoded JSON)."""

    id: int
    route_id: int
    job: dict[str, Any]


def _first(rows: list[tuple[Any, ...]]) -> Any:
    """Return the first column of the first row (None without rows), as ``.scalar()``."""
    return rows[0][0] if rows else None


def record_event(
    session: Session,
    who: Principal,
    body: StopEventIn,
    *,
    uploads: Path,
    device_ts_ahead_s: float = 600.0,
) -> Recorded:
    """Store a stop event once and update its stop's status by device time.

    The event insert (``ON CONFLICT DO NOTHING`` on the courier's idempotency key), the stop
    update, the proof and the event's outbox row (citizens' messages, webhooks) share one
    transaction; a repeated key with the same body changes nothing and returns the stored
    event instead.

    Raises
    ------
    NotFoundError
        If the job is not on the caller's published round.
    InputError
        If a failed stop lacks a reason, a completion lacks the proof it needs, or
        ``device_ts`` is more than ``device_ts_ahead_s`` ahead of the server's clock.
    ConflictError
        If the idempotency key was used for a different event.
    """
    assert who.courier_id is not None
    check_device_ts(body.device_ts, device_ts_ahead_s)
    body_sha256 = event_body_sha256(body)
    fast = _fast(session)
    # What the write needs of the published plans, read first (cached in the process; a miss
    # reads through the session): the driver connection below is then the thread's only one.
    plans = _plans_for(session, body.device_ts, body.plan_id)
    current_of = {
        pid: published_plan_id(session, plan_day_of(session, pid), cached=True) for pid in plans
    }
    if session.in_transaction():
        session.commit()  # end what the session read: a thread never holds two pooled connections
    engine = session_engine(session)
    conn = engine.raw_connection()  # a pooled driver connection, without the session's machinery
    try:
        stored = _store_event(
            session, conn, fast, who.courier_id, body, body_sha256, plans, current_of, uploads
        )
    finally:
        conn.close()  # back to the pool
    if isinstance(stored, Recorded):
        return stored
    # Not stored: the job is not on the round, the proof is missing, or the key was used.
    old = _existing_event(session, who.courier_id, body.idempotency_key)
    if old is not None:
        return _retry_of(old, body_sha256, "event")
    if stored is None:
        msg = "event insert conflicted but the stored event is missing"
        raise RuntimeError(msg)
    raise stored


def _store_event(
    session: Session,
    conn: Any,
    fast: _FastSQL,
    courier_id: str,
    body: StopEventIn,
    body_sha256: str,
    plans: list[int],
    current_of: dict[int, int | None],
    uploads: Path,
) -> Recorded | Exception | None:
    """Store an event on a pooled driver connection ``conn``, with its stop, proof and outbox row.

    Returns the recorded event, with what its publishing reads on the same connection after the
    commit (the route's stops, whether its day is closed); the error to raise if the job is not
    on the caller's round or its proof is missing (the key may have been used already: the
    caller looks for it); or None when the key is stored already.
    """
    engine = session_engine(session)
    stop = None
    for plan_id in plans:
        found = fast.find_stop.run(
            conn,
            {"plan_key": plan_id, "job_key": body.job_id, "courier_key": courier_id},
            engine=engine,
        )
        if found:
            stop = _FoundStop(*found[0])
            break
    if stop is None:
        return NotFoundError(f"job {body.job_id} is not on your round in plan {plan_id}")
    try:
        _check_proof(body, job_from_json(stop.job), uploads)
    except InputError as e:
        return e
    values = {
        "stop_id": stop.id,
        "plan_id": plan_id,
        "courier_id": courier_id,
        "job_id": body.job_id,
        "kind": body.kind,
        "idempotency_key": body.idempotency_key,
        "device_ts": body.device_ts,
        "received_at": utcnow(),
        "reason": body.reason,
        "note": body.note,
        "lon": body.lon,
        "lat": body.lat,
        "body_sha256": body_sha256,
    }
    stop_status = None
    with write_lock(session, conn):
        try:
            event_id = _first(fast.insert_event.run(conn, values, engine=engine))
            if event_id is not None:
                stop_status = _move_stop(conn, engine, fast, body, stop.id)
                current = current_of[plan_id]
                if current is not None and current != plan_id:
                    # Recorded on an older version (the job left this courier's round there):
                    # the published version's stop of the job counts it too.
                    mirror = _first(
                        fast.find_job_stop.run(
                            conn, {"plan_key": current, "job_key": body.job_id}, engine=engine
                        )
                    )
                    if mirror is not None:
                        _move_stop(conn, engine, fast, body, mirror)
                if body.proof is not None:
                    photo = body.proof.photo_id
                    fast.insert_proof.run(
                        conn,
                        {
                            "event_id": event_id,
                            "recipient_name": body.proof.recipient_name,
                            "id_check": body.proof.id_check,
                            "cash_paid_vnd": body.proof.cash_paid_vnd,
                            "photo_path": f"{photo}.bin" if photo else None,
                            "photo_sha256": photo,
                            **authorised_columns(body.proof),
                        },
                        engine=engine,
                    )
                # The outbox row for citizens and webhooks, in the same commit as the event.
                fast.insert_outbox.run(
                    conn, stop_event_row(SimpleNamespace(id=event_id, **values)), engine=engine
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    if event_id is None:
        return None
    # What the event's publishing reads, on the same connection after the commit: the open-day
    # check (an open day is asked every time) and the route's stops.
    day = plan_day_of(session, plan_id)
    closed = days_closed.is_closed_cached(session, day, conn=conn)
    stops = None if closed else route_stops(session, stop.route_id, conn=conn)
    # The stored columns as plain attributes: an ORM instance would cost more than the insert.
    return Recorded(
        SimpleNamespace(id=event_id, **values),
        False,
        stop_status,
        stop.route_id,
        day_closed=closed,
        stops=stops,
    )


def _move_stop(
    conn: Any, engine: Any, fast: _FastSQL, body: StopEventIn, stop_id: int
) -> str | None:
    """Move a stop to an event's status if it is the stop's latest by device time."""
    move = {"stop_key": stop_id, "new_ts": body.device_ts, "new_status": body.kind}
    if body.kind == EventKind.ARRIVED:
        return cast(str | None, _first(fast.arrive.run(conn, move, engine=engine)))
    reason = body.reason if body.kind == EventKind.FAILED else None
    return cast(
        str | None, _first(fast.finish.run(conn, {**move, "new_reason": reason}, engine=engine))
    )


def publish_event(session: Session, r: redis.Redis, rec: Recorded) -> None:
    """Publish a stored stop event with its route's progress, next stop and lateness."""
    ev: StopEvent = rec.row
    assert rec.route_id is not None
    stops = rec.stops if rec.stops is not None else route_stops(session, rec.route_id)
    progress, nxt = progress_of(stops)
    stop = next(s for s in stops if s.id == ev.stop_id)
    t_local = local_seconds(ev.device_ts, plan_day_of(session, ev.plan_id))
    late = ev.kind in ("arrived", "completed") and t_local > stop.window_end_s
    next_stop = None if nxt is None else _next_stop(nxt)
    msg = {
        "type": "stop_event",
        "plan_id": ev.plan_id,
        "courier_id": ev.courier_id,
        "job_id": ev.job_id,
        "kind": ev.kind,
        "reason": ev.reason,
        "device_ts": ev.device_ts.isoformat(),
        "idempotency_key": ev.idempotency_key,
        "event_id": ev.id,
        "stop_status": stop.status,
        "late": late,
        "failed": ev.kind == "failed",
        "delay_s": t_local - stop.arrival_s,
        "progress": progress,
        "next_stop": next_stop,
    }
    state = {
        "progress": progress,
        "next_stop": next_stop,
        "last_event": {
            "job_id": ev.job_id,
            "kind": ev.kind,
            "device_ts": msg["device_ts"],
            "late": late,
        },
    }
    live.publish_courier_state(r, ev.plan_id, ev.courier_id, state, msg)


def _existing_position(session: Session, courier_id: str, key: str) -> Position | None:
    return session.scalar(
        select(Position).where(Position.courier_id == courier_id, Position.idempotency_key == key)
    )


def _insert_position(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a GPS fix unless its idempotency key is stored; return the new id (None if not).

    On a connection of its own, committed at once: the session's transaction machinery would
    cost about as much as the insert. What the session read ends first, so that a thread never
    holds two pooled connections (threads each waiting for a second one would stall the pool).
    """
    if session.in_transaction():
        session.commit()
    insert = _fast(session).insert_position
    engine = session_engine(session)
    conn = engine.raw_connection()  # a pooled driver connection
    try:
        with write_lock(session, conn):
            try:
                new_id = _first(insert.run(conn, values, engine=engine))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    finally:
        conn.close()  # back to the pool
    return cast(int | None, new_id)


@dataclass(frozen=True, slots=True)
class RouteState:
    """What a GPS fix reads of its courier's live state (see :func:`_route_state`).

    ``progress`` and ``next_stop`` as the live feed shows them; ``started`` whether a stop
    event of the round was recorded; ``told`` the jobs whose citizens fixes already put "on
    the way" (before the round's first event).
    """

    progress: dict[str, int]
    next_stop: dict[str, Any] | None
    started: bool
    told: tuple[str, ...]


#: The courier's live-state field listing the jobs told "on the way" by fixes (private: the
#: leading underscore keeps it out of the dispatcher's snapshot).
TOLD_FIELD = "_on_the_way"
_STATE_FIELDS = ["progress", "next_stop", "last_event", TOLD_FIELD]


def _route_state(
    session: Session, r: redis.Redis, plan_id: int, courier_id: str
) -> RouteState | None:
    """Return a courier's route state for the live feed (None when not on the plan's rounds).

    Read from the courier's live state in Redis, which every stop event refreshes; only the
    first fix of a round (or after Redis lost its data) reads the stops from the database, and
    then seeds the state without overwriting what an event may have written meanwhile.
    """
    raw = cast(
        list[Any], live.command(r, "HMGET", live.courier_key(plan_id, courier_id), *_STATE_FIELDS)
    )
    if raw[0] is not None and raw[1] is not None:
        return RouteState(
            json.loads(raw[0]),
            json.loads(raw[1]),
            raw[2] is not None,
            tuple(json.loads(raw[3])) if raw[3] is not None else (),
        )
    route_id = published_rounds(session, plan_id).route_of.get(courier_id)
    if route_id is None:
        return None
    state = _round_state(route_stops(session, route_id))
    live.seed_courier_states(r, plan_id, {courier_id: state})
    return RouteState(state["progress"], state["next_stop"], raw[2] is not None, ())


def _round_state(stops: list[StopRow]) -> dict[str, Any]:
    progress, nxt = progress_of(stops)
    return {"progress": progress, "next_stop": None if nxt is None else _next_stop(nxt)}


def seed_round_states(session: Session, r: redis.Redis, plan_id: int) -> None:
    """Give every courier of a plan being published a fresh live state: progress and next stop.

    Their first GPS fixes then find it in Redis instead of reading their round from the
    database. Call it before the publish commits: no event can reach the plan before, so
    nothing newer is overwritten.
    """
    by_route: dict[int, list[StopRow]] = {}
    for row in session.connection().execute(_sql(session).plan_stop_rows, {"plan_key": plan_id}):
        by_route.setdefault(row[0], []).append(StopRow(*row[1:]))
    rounds = published_rounds(session, plan_id)
    states = {cid: _round_state(by_route.get(rid, [])) for cid, rid in rounds.route_of.items()}
    live.seed_courier_states(r, plan_id, states, replace=True)


def _next_stop(stop: StopRow) -> dict[str, Any]:
    return {
        "job_id": stop.job_id,
        "planned_arrival_s": stop.arrival_s,
        "lon": stop.lon,
        "lat": stop.lat,
    }


def record_position(
    session: Session,
    r: redis.Redis,
    who: Principal,
    body: PositionIn,
    network: Network | None,
    *,
    device_ts_ahead_s: float = 600.0,
) -> Recorded:
    """Store a GPS fix once, then publish it with the next stop's ETA and the stops expected late.

    ``network`` is the road network when it is ready in this process (ETAs along the roads),
    else None (straight-line estimates); see :mod:`routing.eta`.

    Raises
    ------
    InputError
        If ``device_ts`` is more than ``device_ts_ahead_s`` ahead of the server's clock.
    ConflictError
        If the idempotency key was used for a different fix.
    """
    assert who.courier_id is not None
    check_device_ts(body.device_ts, device_ts_ahead_s)
    body_sha256 = position_body_sha256(body)
    day = body.device_ts.astimezone(LOCAL_TZ).date()
    plan_id = published_plan_id(session, day, cached=True)
    route = _route_state(session, r, plan_id, who.courier_id) if plan_id else None
    on_round = route is not None
    values = {
        "courier_id": who.courier_id,
        "plan_id": plan_id if on_round else None,
        "idempotency_key": body.idempotency_key,
        "device_ts": body.device_ts,
        "lon": body.lon,
        "lat": body.lat,
        "accuracy_m": body.accuracy_m,
        "received_at": utcnow(),
        "body_sha256": body_sha256,
    }
    new_id = _insert_position(session, values)
    if new_id is None:
        again = _existing_position(session, who.courier_id, body.idempotency_key)
        if again is None:
            msg = "position insert conflicted but the stored fix is missing"
            raise RuntimeError(msg)
        return _retry_of(again, body_sha256, "position")
    pos = SimpleNamespace(id=new_id, **values)
    if route is None or plan_id is None:
        return Recorded(pos, False)
    progress, next_stop = route.progress, route.next_stop
    projection = None
    told: tuple[str, ...] = ()
    if next_stop is not None:
        remaining = _remaining(session, plan_id, who.courier_id, next_stop)
        projection = _project(network, body, day, next_stop, remaining)
        if not route.started and progress.get("done") == 0:
            try:
                told = _tell_on_the_way(
                    session, plan_id, who.courier_id, day, body, route, projection, remaining
                )
            except Exception:  # the fix is stored; the next fix queues the messages again
                session.rollback()
                logger.exception("queueing 'on the way' for courier %s failed", who.courier_id)
    device_ts = body.device_ts.isoformat()
    expected_late = [] if projection is None else list(projection.expected_late)
    drift = None if projection is None else projection.drift_s
    message: dict[str, Any] = {
        "type": "position",
        "plan_id": plan_id,
        "courier_id": who.courier_id,
        "lon": body.lon,
        "lat": body.lat,
        "device_ts": device_ts,
        "idempotency_key": body.idempotency_key,
        "progress": progress,
        "next_stop": None
        if projection is None or next_stop is None
        else {
            "job_id": projection.job_id,
            "planned_arrival_s": next_stop["planned_arrival_s"],
            "eta_s": projection.eta_s,
        },
        "eta_drift_s": drift,
        "eta_basis": None if projection is None else projection.basis,
        "expected_late": expected_late,
    }
    state = {
        "position": {"lon": body.lon, "lat": body.lat, "device_ts": device_ts},
        "eta_drift_s": drift,
        "eta_basis": message["eta_basis"],
        "expected_late": expected_late,
    }
    if told:
        state[TOLD_FIELD] = told
    live.publish_courier_state(r, plan_id, who.courier_id, state, message)
    return Recorded(pos, False, projection=projection)


def _remaining(
    session: Session, plan_id: int, courier_id: str, next_stop: dict[str, Any]
) -> tuple[PlannedStop, ...]:
    """Return the courier's round as planned from the next stop on (from the process's cache)."""
    rounds = published_rounds(session, plan_id)
    route_id = rounds.route_of.get(courier_id)
    planned = rounds.stops_of.get(route_id, ()) if route_id is not None else ()
    at = next((k for k, s in enumerate(planned) if s.job_id == next_stop["job_id"]), None)
    if at is None:  # the state names a stop the cache does not know: project the next one alone
        return (PlannedStop(next_stop["job_id"], next_stop["planned_arrival_s"], 0, 10**9),)
    return planned[at:]


def _project(
    network: Network | None,
    body: PositionIn,
    day: date,
    next_stop: dict[str, Any],
    remaining: tuple[PlannedStop, ...],
) -> Projection:
    """Project the courier's round from this fix: the next stop's ETA, then the rest in order."""
    eta = local_seconds(body.device_ts, day)
    road_time = network.road_time_s if network is not None else None
    seconds, basis = travel_s(road_time, body.lon, body.lat, next_stop["lon"], next_stop["lat"])
    return project(remaining, eta + seconds, basis)


def _tell_on_the_way(
    session: Session,
    plan_id: int,
    courier_id: str,
    day: date,
    body: PositionIn,
    route: RouteState,
    projection: Projection,
    remaining: tuple[PlannedStop, ...],
) -> tuple[str, ...]:
    """Queue "on the way" for the round's first stops a fix brings near; return the jobs told.

    Before the round's first stop event no event tells the first stops (:mod:`routing.notify`
    decides which are due). A job is told once: the jobs told are kept in the courier's live
    state (returned here, stored by the caller's publish), so a fix whose due stops were all
    told costs no SQL; one that brings a new stop near reads those stops and stores their
    messages (:func:`api.notify.service.record_on_the_way`). Returns ``()`` when nothing is new.
    """
    rounds = published_rounds(session, plan_id)
    route_id = rounds.route_of.get(courier_id)
    if route_id is None:
        return ()
    due = due_from_fix(
        remaining,
        projection.eta_s,
        local_seconds(body.device_ts, day),
        round_start_s=rounds.start_of.get(route_id, 0),
    )
    new = [(job_id, eta) for job_id, eta in due if job_id not in route.told]
    if not new:
        return ()
    record_on_the_way(session, plan_id=plan_id, day=day, route_id=route_id, due=new)
    return (*route.told, *(job_id for job_id, _ in new))


#: ISO base media brands of HEIF images (``ftyp`` box): iPhones' HEIC and the generic HEIF.
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)


def image_format(data: bytes) -> str | None:
    """Return the format of an image by its first bytes (jpeg, png, webp, heic), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def store_photo(uploads: Path, data: bytes) -> str:
    """Store a photo under its SHA-256 (idempotent) and return that id.

    The bytes go to a temporary file of their own in the uploads directory, synced to disk,
    then renamed into place and the directory synced: once this returns, the photo survives a
    crash, and a half-written file never carries a photo's name.

    Raises
    ------
    UnsupportedMediaError
        If the bytes are not a JPEG, PNG, WebP or HEIC image (naming ``file``).
    """
    if image_format(data) is None:
        msg = "the file is not a JPEG, PNG, WebP or HEIC image"
        raise UnsupportedMediaError(msg, errors=[{"column": "file", "reason": msg}])
    digest = hashlib.sha256(data).hexdigest()
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{digest}.bin"
    if path.is_file():
        return digest
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, before the rename)
        dir=uploads, prefix=f".{digest[:16]}.", suffix=".tmp", delete=False
    )
    try:
        with tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        Path(tmp.name).replace(path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    _fsync_dir(uploads)
    return digest


def _fsync_dir(folder: Path) -> None:
    """Sync a directory's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a system that cannot open directories (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_events(
    session: Session,
    *,
    plan_id: int | None,
    courier_id: str | None,
    limit: int = DEFAULT_LIMIT,
    after: int | None = None,
) -> Page[StopEvent]:
    """Return a page of stop events in device-time order (then arrival order).

    ``after`` is the id of the last event of the previous page; the page starts at the next
    event in (``device_ts``, ``id``) order. An ``after`` that is not an event matching the same
    filters is refused (``InputError`` naming ``after``).
    """
    q = select(StopEvent)
    if plan_id is not None:
        q = q.where(StopEvent.plan_id == plan_id)
    if courier_id is not None:
        q = q.where(StopEvent.courier_id == courier_id)
    total = count_rows(session, q)
    if after is not None:
        anchor = session.scalar(q.where(StopEvent.id == after))
        if anchor is None:
            raise InputError(None, "after", after, "not an event of this list")
        q = q.where(
            or_(
                StopEvent.device_ts > anchor.device_ts,
                (StopEvent.device_ts == anchor.device_ts) & (StopEvent.id > anchor.id),
            )
        )
    rows = session.scalars(q.order_by(StopEvent.device_ts, StopEvent.id).limit(limit + 1)).all()
    page, next_after = cut(rows, limit, lambda e: e.id)
    return Page(page, total, next_after)
