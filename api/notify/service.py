"""The outbox: record what happened (in the request), then make its messages and deliveries (in the worker).

The request side is one insert: :func:`record_published` inside the publishing transaction,
:func:`record_stop_event` inside a stop event's transaction, :func:`emit` for anything else
(``day.closed``). Each has a ``source_key`` so recording twice keeps one row.

The worker side (:func:`expand_pending`) turns each recorded event into citizens' messages,
decided by :mod:`routing.notify`, and one webhook delivery per subscribed endpoint.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api.days.models import CarryRulesRecord, JobOutcome
from api.db import utcnow, write_lock
from api.notify.channels import scrub
from api.notify.models import Notification, OutboxEvent, WebhookDelivery, WebhookEndpoint
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from routing.clock import local_clock, local_seconds
from routing.close import DEFAULT_RULES, DayJob, JobHistory, decide, rules_from_json
from routing.codec import job_from_json, problem_from_json
from routing.model import Job
from routing.notify import (
    Message,
    RoundStop,
    after_event,
    day_ahead_messages,
    on_the_way_messages,
    returned,
    wants_messages,
)
from routing.vocabulary import StopStatus

logger = logging.getLogger(__name__)

PLAN_PUBLISHED = "plan.published"
STOP_ARRIVED = "stop.arrived"
STOP_COMPLETED = "stop.completed"
STOP_FAILED = "stop.failed"
JOB_UNASSIGNED = "job.unassigned"
DAY_CLOSED = "day.closed"
#: A closed day's outcome changed by a result a phone reported after the close.
DAY_REVISED = "day.revised"
#: Every event type an endpoint may subscribe to.
EVENT_TYPES: tuple[str, ...] = (
    PLAN_PUBLISHED,
    STOP_ARRIVED,
    STOP_COMPLETED,
    STOP_FAILED,
    JOB_UNASSIGNED,
    DAY_CLOSED,
    DAY_REVISED,
)
#: How long a finished visit's message (done, failed) stays worth sending.
AFTER_VISIT_TTL = timedelta(hours=12)


def _insert(session: Session) -> Any:
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


@cache
def _record_sql(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(OutboxEvent).on_conflict_do_nothing(index_elements=["source_key"])


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    source_key: str,
    plan_id: int | None = None,
    order_key: str | None = None,
) -> None:
    """Record an event for the webhooks (and the citizens) in the caller's transaction.

    ``source_key`` names the happening (``day.closed:2026-12-02``): recording it again is a
    no-op. ``order_key`` orders deliveries of the same key to one endpoint (default: the
    event's ``job_id``, else ``day:<data["day"]>``). Nothing is committed here.
    """
    payload = dict(data)
    if order_key is not None:
        payload["_order_key"] = order_key
    session.execute(
        _record_sql(session.get_bind().dialect.name),
        {
            "source_key": source_key,
            "type": event_type,
            "plan_id": plan_id,
            "data": payload,
            "created_at": utcnow(),
        },
    )


def record_published(session: Session, plan: PlanRecord) -> None:
    """Record that ``plan`` was published (call it inside the publishing transaction)."""
    emit(
        session,
        PLAN_PUBLISHED,
        {"plan_id": plan.id, "day": plan.day.isoformat(), "version": plan.version},
        source_key=f"plan:{plan.id}",
        plan_id=plan.id,
        order_key=f"day:{plan.day.isoformat()}",
    )


def record_stop_event(session: Session, event: Any) -> None:
    """Record a stop event for the outbox in the event's own transaction (nothing committed).

    Call it before the commit that stores ``event``: the event and its row for citizens and
    webhooks are stored together or not at all. ``event`` has the columns of a
    :class:`api.events.models.StopEvent` as attributes. (:func:`api.events.service.record_event`
    inserts the same row, :func:`stop_event_row`, on its driver connection.)
    """
    session.connection().execute(
        _record_sql(session.get_bind().dialect.name), stop_event_row(event)
    )


#: The outbox columns :func:`stop_event_row` gives (every one: no Python-side defaults left).
STOP_EVENT_COLUMNS = ["source_key", "type", "plan_id", "data", "created_at"]


def stop_event_row(event: Any) -> dict[str, Any]:
    """Return the outbox row of a stop event (:data:`STOP_EVENT_COLUMNS`)."""
    return {
        "source_key": f"stop_event:{event.id}",
        "type": f"stop.{event.kind}",
        "plan_id": event.plan_id,
        "data": {
            "event_id": event.id,
            "stop_id": event.stop_id,
            "plan_id": event.plan_id,
            "courier_id": event.courier_id,
            "job_id": event.job_id,
            "kind": event.kind,
            "reason": event.reason,
            "device_ts": event.device_ts.isoformat(),
        },
        "created_at": utcnow(),
    }


def stop_event_insert(dialect: str) -> Any:
    """Return the outbox insert of a dialect, a row whose ``source_key`` is stored left as is.

    It returns the new row's id, as every dialect's compiled insert would (PostgreSQL's adds
    the primary key on its own): the driver's answer then has the columns the statement names.
    """
    return _record_sql(dialect).returning(OutboxEvent.id)


def record_on_the_way(
    session: Session, *, plan_id: int, day: date, route_id: int, due: list[tuple[str, int]]
) -> int:
    """Store the "on the way" messages a GPS fix made due, and commit; return how many were due.

    ``due`` is ``(job_id, expected service start)`` of stops of the round ``route_id``
    (:func:`routing.notify.due_from_fix`); :func:`routing.notify.on_the_way_messages` leaves
    out stops served and citizens who want no message. A message stored already (by a stop
    event, or a fix in another process) keeps its first row.
    """
    eta_of = dict(due)
    rows = session.execute(
        select(StopRecord.job, StopRecord.status).where(
            StopRecord.route_id == route_id, StopRecord.job_id.in_(list(eta_of))
        )
    ).all()
    jobs = [(job_from_json(job), status) for job, status in rows]
    messages = on_the_way_messages(day, [(j, st, eta_of[j.job_id]) for j, st in jobs])
    if not messages:
        session.commit()  # end the read: the caller's thread goes on without a transaction
        return 0
    with write_lock(session):
        _store_messages(session, _notification_rows(plan_id, day, messages, utcnow()))
        session.commit()
    return len(messages)


# -- the worker's side: events -> messages and deliveries -------------------------------------


def _round_stops(session: Session, route_id: int) -> tuple[list[int], list[RoundStop]]:
    rows = session.execute(
        select(
            StopRecord.id,
            StopRecord.job,
            StopRecord.start_s,
            StopRecord.departure_s,
            StopRecord.waiting_s,
            StopRecord.status,
        )
        .where(StopRecord.route_id == route_id)
        .order_by(StopRecord.seq)
    ).all()
    ids = [r[0] for r in rows]
    stops = [RoundStop(job_from_json(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
    return ids, stops


def _plan_stops(session: Session, plan_id: int) -> list[RoundStop]:
    rows = session.execute(
        select(
            StopRecord.job,
            StopRecord.start_s,
            StopRecord.departure_s,
            StopRecord.waiting_s,
            StopRecord.status,
        )
        .where(StopRecord.plan_id == plan_id)
        .order_by(StopRecord.route_id, StopRecord.seq)
    ).all()
    return [RoundStop(job_from_json(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def _failure_action(
    session: Session, day: date, route_id: int, job: Job, reason: str | None
) -> str:
    """Return what the close of ``day`` will do with ``job`` failed for ``reason`` as things stand.

    The same decision as the close (:func:`routing.close.decide`): the rules of the round's
    post office, and the attempts of the closed days before ``day`` plus this one.
    """
    depot_id = session.scalar(select(RouteRecord.depot_id).where(RouteRecord.id == route_id))
    office = depot_id or job.depot_id
    stored = session.get(CarryRulesRecord, office) if office else None
    rules = rules_from_json(stored.rules) if stored is not None else DEFAULT_RULES
    before = session.scalar(
        select(JobOutcome.attempts)
        .where(JobOutcome.job_id == job.job_id, JobOutcome.day < day)
        .order_by(JobOutcome.day.desc())
        .limit(1)
    )
    history = JobHistory(attempts=int(before or 0))
    item = DayJob(job, StopStatus.FAILED, reason, office)
    return str(decide(item, day=day, history=history, rules=rules).action)


def _expires(day: date, message: Message, now: datetime) -> datetime:
    """Return when a message stops being worth sending: its window's end, else 12 hours on."""
    if message.window is not None:
        end = local_clock(day, message.window[1])
        assert end is not None
        return end
    return now + AFTER_VISIT_TTL


def _notification_rows(
    plan_id: int, day: date, messages: list[Message], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "key": m.key,
            "delivery_id": uuid.uuid4().hex,
            "day": day.isoformat(),
            "plan_id": plan_id,
            "job_id": m.job_id,
            "kind": str(m.kind),
            "preference": str(m.preference),
            "phone": m.phone,
            "email": m.email,
            "text": m.text,
            "params": m.params,
            "window_start_s": m.window[0] if m.window else None,
            "window_end_s": m.window[1] if m.window else None,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": _expires(day, m, now),
            "created_at": now,
        }
        for m in messages
    ]


def _store_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = _insert(session)(Notification).on_conflict_do_nothing(index_elements=["key"])
        session.execute(stmt, rows)


def _messages_of(session: Session, ev: OutboxEvent, now: datetime) -> list[dict[str, Any]]:
    """Return the citizens' messages of one event, as rows to store."""
    data = ev.data
    if ev.type == PLAN_PUBLISHED:
        day = date.fromisoformat(data["day"])
        msgs = day_ahead_messages(day, _plan_stops(session, int(data["plan_id"])))
        return _notification_rows(int(data["plan_id"]), day, msgs, now)
    if ev.type in (STOP_ARRIVED, STOP_COMPLETED, STOP_FAILED):
        plan_day = session.scalar(select(PlanRecord.day).where(PlanRecord.id == data["plan_id"]))
        route_id = session.scalar(
            select(StopRecord.route_id).where(StopRecord.id == data["stop_id"])
        )
        if plan_day is None or route_id is None:
            return []
        day = plan_day
        ids, stops = _round_stops(session, route_id)
        at_s = local_seconds(datetime.fromisoformat(data["device_ts"]), day)
        index = ids.index(data["stop_id"])
        action = None
        if ev.type == STOP_FAILED and wants_messages(stops[index].job):
            action = _failure_action(session, day, route_id, stops[index].job, data.get("reason"))
        msgs = after_event(day, stops, index, data["kind"], at_s, data.get("reason"), action=action)
        return _notification_rows(int(data["plan_id"]), day, msgs, now)
    if ev.type in (DAY_CLOSED, DAY_REVISED) and data.get("returned"):
        # jobs that went back to the post office after their last attempt: tell the citizen
        day = date.fromisoformat(data["day"])
        plan = session.get(PlanRecord, int(data["plan_id"]))
        if plan is None:
            return []
        problem = problem_from_json(plan.problem)
        jobs, offices = problem.job_by_id(), problem.depot_by_id()
        msgs = []
        for item in data["returned"]:
            job = jobs.get(item["job_id"])
            if job is None or not wants_messages(job):
                continue
            depot = offices.get(item.get("depot_id") or job.depot_id or "")
            office = depot.name if depot is not None else "bưu cục"
            msgs.append(returned(job, day, office, int(item.get("attempts", 1))))
        return _notification_rows(plan.id, day, msgs, now)
    return []


def _unassigned_events(session: Session, ev: OutboxEvent) -> None:
    """Record one ``job.unassigned`` event per job a published plan left out."""
    plan = session.get(PlanRecord, ev.data["plan_id"])
    if plan is None:
        return
    for u in plan.unassigned or []:
        job_id = u.get("job_id") if isinstance(u, dict) else None
        if not job_id:
            continue
        emit(
            session,
            JOB_UNASSIGNED,
            {
                "plan_id": plan.id,
                "day": plan.day.isoformat(),
                "job_id": job_id,
                "reason": u.get("reason"),
            },
            source_key=f"plan:{plan.id}:unassigned:{job_id}",
            plan_id=plan.id,
        )


def _published_data(session: Session, ev: OutboxEvent) -> dict[str, Any]:
    plan_id = int(ev.data["plan_id"])
    routes = session.execute(
        select(RouteRecord.courier_id, func.count(StopRecord.id))
        .join(StopRecord, StopRecord.route_id == RouteRecord.id, isouter=True)
        .where(RouteRecord.plan_id == plan_id)
        .group_by(RouteRecord.courier_id)
        .order_by(RouteRecord.courier_id)
    ).all()
    unassigned = session.scalar(select(PlanRecord.unassigned).where(PlanRecord.id == plan_id))
    return {
        **{k: v for k, v in ev.data.items() if not k.startswith("_")},
        "routes": [{"courier_id": c, "stops": n} for c, n in routes],
        "jobs_assigned": sum(n for _, n in routes),
        "jobs_unassigned": len(unassigned or []),
    }


def envelope(ev: OutboxEvent, data: dict[str, Any]) -> str:
    """Return a webhook body: ``{"id", "type", "created_at", "data"}`` as compact JSON."""
    return json.dumps(
        {
            "id": f"evt_{ev.id}",
            "type": ev.type,
            "created_at": ev.created_at.isoformat(),
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


def _deliveries_of(
    session: Session,
    ev: OutboxEvent,
    endpoints: list[tuple[int, list[Any]]],
    now: datetime,
    max_age_s: float,
) -> list[dict[str, Any]]:
    subscribed = [eid for eid, types in endpoints if ev.type in types or "*" in types]
    if not subscribed:
        return []
    data = (
        _published_data(session, ev)
        if ev.type == PLAN_PUBLISHED
        else {k: v for k, v in ev.data.items() if not k.startswith("_")}
    )
    body = envelope(ev, data)
    order_key = ev.data.get("_order_key") or ev.data.get("job_id") or f"day:{ev.data.get('day')}"
    return [
        {
            "delivery_id": uuid.uuid4().hex,
            "event_id": ev.id,
            "endpoint_id": eid,
            "event_type": ev.type,
            "order_key": str(order_key)[:120],
            "body": body,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": now + timedelta(seconds=max_age_s),
            "replay": 0,
            "created_at": now,
        }
        for eid in subscribed
    ]


def expand_pending(session: Session, *, max_age_s: float, limit: int = 100) -> int:
    """Turn recorded events into messages and deliveries; return how many events were expanded.

    Events are taken in the order they were recorded, claimed for a minute (so two workers do
    not expand one twice; if one did, the messages' and deliveries' unique keys keep one).
    Each batch commits as one transaction with the events marked processed.
    """
    now = utcnow()
    ids = session.scalars(
        select(OutboxEvent.id)
        .where(
            OutboxEvent.processed_at.is_(None),
            (OutboxEvent.claimed_until.is_(None)) | (OutboxEvent.claimed_until < now),
        )
        .order_by(OutboxEvent.id)
        .limit(limit)
    ).all()
    if not ids:
        return 0
    with write_lock(session):
        claimed = session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.id.in_(ids),
                OutboxEvent.processed_at.is_(None),
                (OutboxEvent.claimed_until.is_(None)) | (OutboxEvent.claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=60))
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    if not claimed:
        return 0
    events = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.processed_at.is_(None))
        .order_by(OutboxEvent.id)
    ).all()
    endpoints = [
        (eid, list(types or []))
        for eid, types in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(WebhookEndpoint.active)
        ).all()
    ]
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    expanded: list[int] = []
    for ev in events:
        # One event that cannot be expanded (data it lacks) must not hold up the others: it
        # is logged and stays unprocessed, tried again once its claim lapses.
        try:
            if ev.type == PLAN_PUBLISHED:
                _unassigned_events(session, ev)
            its_messages = _messages_of(session, ev, now)
            its_deliveries = _deliveries_of(session, ev, endpoints, now, max_age_s)
        except (LookupError, TypeError, ValueError, AttributeError):
            logger.exception(
                "outbox event %d (%s) could not be expanded; tried again in a minute",
                ev.id,
                ev.type,
            )
            continue
        messages += its_messages
        deliveries += its_deliveries
        expanded.append(ev.id)
    with write_lock(session):
        _store_messages(session, messages)
        if deliveries:
            stmt = _insert(session)(WebhookDelivery).on_conflict_do_nothing(
                index_elements=["event_id", "endpoint_id", "replay"]
            )
            session.execute(stmt, deliveries)
        session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(expanded)).values(processed_at=now)
        )
        session.commit()
    if messages or deliveries:
        logger.info(
            "outbox: %d event(s) -> %d message(s), %d webhook deliveries",
            len(expanded),
            len(messages),
            len(deliveries),
        )
    return len(expanded)


# -- admin: requeue, replay, receipts ---------------------------------------------------------


def requeue_messages(session: Session, *, status: str, plan_id: int | None = None) -> int:
    """Queue again the messages left ``unsent`` (or ``failed``); return how many."""
    q = update(Notification).where(Notification.status == status)
    if plan_id is not None:
        q = q.where(Notification.plan_id == plan_id)
    now = utcnow()
    with write_lock(session):
        n = session.execute(
            q.values(status="queued", next_attempt_at=now, attempts=0, last_error=None)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(n or 0)


def replay_delivery(
    session: Session, original: WebhookDelivery, *, max_age_s: float
) -> WebhookDelivery:
    """Queue a new delivery of the same event and body to the same endpoint (an admin's replay)."""
    last = session.scalar(
        select(func.max(WebhookDelivery.replay)).where(
            WebhookDelivery.event_id == original.event_id,
            WebhookDelivery.endpoint_id == original.endpoint_id,
        )
    )
    now = utcnow()
    copy = WebhookDelivery(
        delivery_id=uuid.uuid4().hex,
        event_id=original.event_id,
        endpoint_id=original.endpoint_id,
        event_type=original.event_type,
        order_key=original.order_key,
        body=original.body,
        status="queued",
        attempts=0,
        next_attempt_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
        replay=int(last or 0) + 1,
        replay_of=original.id,
        created_at=now,
    )
    session.add(copy)
    return copy


def record_receipt(session: Session, delivery_id: str, status: str, reason: str | None) -> bool:
    """Record a provider's delivery report (``delivered`` or ``failed``); return whether it matched."""
    values: dict[str, Any] = {"status": status}
    if status == "delivered":
        values["delivered_at"] = utcnow()
    else:
        # a provider's words may hold the citizen's phone: masked as the channels' reasons are
        values["last_error"] = scrub(reason or "reported failed by the provider", limit=500)
    with write_lock(session):
        n = session.execute(
            update(Notification)
            .where(
                Notification.delivery_id == delivery_id,
                Notification.status.in_(("sent", "delivered")),
            )
            .values(**values)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return bool(n)
