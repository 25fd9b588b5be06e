"""Admin endpoints of webhooks (register, list, replay) and readers' view of citizens' messages."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Path, Query, Response
from sqlalchemy import func, select

from api.db import write_lock
from api.deps import Admin, Reader, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, AuthenticationError, NotFoundError
from api.notify import service
from api.notify.models import Notification, WebhookDelivery, WebhookEndpoint
from api.notify.schemas import (
    DeliveryList,
    DeliveryRead,
    NotificationList,
    NotificationRead,
    Receipt,
    ReplayAsk,
    ReplayDone,
    RequeueAsk,
    WebhookCreate,
    WebhookList,
    WebhookRead,
    WebhookUpdate,
)
from api.pagination import DEFAULT_LIMIT, Limit
from routing.contact import mask_phone
from routing.errors import InputError
from routing.notify import format_window

router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _check_url(url: str, column: str = "url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(None, column, url, "must be an http:// or https:// URL")
    return url


def _check_types(types: list[str], column: str = "event_types") -> list[str]:
    for k, t in enumerate(types):
        if t != "*" and t not in service.EVENT_TYPES:
            known = ", ".join(service.EVENT_TYPES)
            raise InputError(None, f"{column}.{k}", t, f"unknown event type (known: {known}, *)")
    return sorted(set(types))


def _read(e: WebhookEndpoint, *, secret: str | None = None) -> WebhookRead:
    return WebhookRead(
        id=e.id,
        url=e.url,
        event_types=list(e.event_types),
        description=e.description,
        active=e.active,
        created_at=e.created_at,
        secret=secret,
    )


def _endpoint(session: Any, endpoint_id: int) -> WebhookEndpoint:
    e: WebhookEndpoint | None = session.get(WebhookEndpoint, endpoint_id)
    if e is None:
        raise NotFoundError(f"webhook endpoint {endpoint_id} not found")
    return e


@router.post("/webhooks", response_model=WebhookRead, status_code=201)
def create_webhook(body: WebhookCreate, session: SessionDep, who: Admin) -> WebhookRead:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    e = WebhookEndpoint(
        url=_check_url(body.url),
        secret=secret,
        event_types=_check_types(body.event_types),
        description=body.description,
        active=True,
        created_by=who.user_id,
    )
    with write_lock(session):
        session.add(e)
        session.commit()
    return _read(e, secret=secret)


@router.get("/webhooks", response_model=WebhookList)
def list_webhooks(session: SessionDep, _: Admin) -> WebhookList:
    """List the registered endpoints (without their secrets)."""
    rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    return WebhookList(data=[_read(e) for e in rows], count=len(rows))


@router.patch("/webhooks/{endpoint_id}", response_model=WebhookRead)
def update_webhook(
    endpoint_id: Id, body: WebhookUpdate, session: SessionDep, _: Admin
) -> WebhookRead:
    """Change an endpoint's URL, event types, description, or pause it (``active: false``)."""
    e = _endpoint(session, endpoint_id)
    if body.url is not None:
        e.url = _check_url(body.url)
    if body.event_types is not None:
        e.event_types = _check_types(body.event_types)
    if body.active is not None:
        e.active = body.active
    if body.description is not None:
        e.description = body.description
    with write_lock(session):
        session.commit()
    return _read(e)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def delete_webhook(endpoint_id: Id, session: SessionDep, _: Admin) -> Response:
    """Remove an endpoint and its deliveries."""
    e = _endpoint(session, endpoint_id)
    with write_lock(session):
        session.delete(e)
        session.commit()
    return Response(status_code=204)


def _delivery(d: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=d.id,
        delivery_id=d.delivery_id,
        endpoint_id=d.endpoint_id,
        event_type=d.event_type,
        order_key=d.order_key,
        status=d.status,
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        next_attempt_at=d.next_attempt_at,
        sent_at=d.sent_at,
        replay_of=d.replay_of,
        body=d.body,
    )


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=DeliveryList)
def list_deliveries(
    endpoint_id: Id,
    session: SessionDep,
    _: Admin,
    status: Annotated[str | None, Query(max_length=12)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> DeliveryList:
    """List an endpoint's deliveries, newest first: status, attempts, last answer, body."""
    _endpoint(session, endpoint_id)
    q = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        q = q.where(WebhookDelivery.status == status)
    count = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    return DeliveryList(data=[_delivery(d) for d in rows], count=count)


@router.post(
    "/webhooks/deliveries/{delivery_id}/replay", response_model=DeliveryRead, status_code=201
)
def replay_delivery(
    delivery_id: Annotated[str, Path(max_length=40)],
    session: SessionDep,
    settings: SettingsDep,
    _: Admin,
) -> DeliveryRead:
    """Send one delivery again: a new delivery id, the same event and body (``X-Courier-Replay-Of``)."""
    d = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))
    if d is None:
        raise NotFoundError(f"delivery {delivery_id} not found")
    with write_lock(session):
        copy = service.replay_delivery(session, d, max_age_s=settings.webhook_max_age_s)
        session.commit()
    return _delivery(copy)


@router.post("/webhooks/{endpoint_id}/replay", response_model=ReplayDone)
def replay_range(
    endpoint_id: Id, body: ReplayAsk, session: SessionDep, settings: SettingsDep, _: Admin
) -> ReplayDone:
    """Send again every delivery of an endpoint created in a time range, in their order."""
    _endpoint(session, endpoint_id)
    q = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id,
        WebhookDelivery.created_at >= body.since,
        WebhookDelivery.replay == 0,
    )
    if body.until is not None:
        q = q.where(WebhookDelivery.created_at < body.until)
    if body.event_types:
        q = q.where(WebhookDelivery.event_type.in_(_check_types(body.event_types)))
    originals = session.scalars(q.order_by(WebhookDelivery.id).limit(100_000)).all()
    with write_lock(session):
        for d in originals:
            service.replay_delivery(session, d, max_age_s=settings.webhook_max_age_s)
            session.flush()
        session.commit()
    return ReplayDone(queued=len(originals))


def _notification(n: Notification) -> NotificationRead:
    window = None
    if n.window_start_s is not None and n.window_end_s is not None:
        window = format_window((n.window_start_s, n.window_end_s))
    return NotificationRead(
        id=n.id,
        delivery_id=n.delivery_id,
        day=n.day,
        plan_id=n.plan_id,
        job_id=n.job_id,
        kind=n.kind,
        preference=n.preference,
        channel=n.channel,
        phone=mask_phone(n.phone),
        text=n.text,
        window=window,
        status=n.status,
        attempts=n.attempts,
        last_error=n.last_error,
        created_at=n.created_at,
        sent_at=n.sent_at,
        delivered_at=n.delivered_at,
    )


@router.get("/notifications", response_model=NotificationList)
def list_notifications(
    session: SessionDep,
    _: Reader,
    plan_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    job_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> NotificationList:
    """List citizens' messages (phones masked) with their status, a page at a time."""
    q = select(Notification)
    if plan_id is not None:
        q = q.where(Notification.plan_id == plan_id)
    if job_id is not None:
        q = q.where(Notification.job_id == job_id)
    if status is not None:
        q = q.where(Notification.status == status)
    count = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    if after is not None:
        q = q.where(Notification.id > after)
    rows = session.scalars(q.order_by(Notification.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return NotificationList(
        data=[_notification(n) for n in rows],
        count=count,
        next_after=rows[-1].id if more and rows else None,
    )


@router.post("/notifications/requeue", response_model=ReplayDone)
def requeue(body: RequeueAsk, session: SessionDep, _: Admin) -> ReplayDone:
    """Queue again the messages left unsent (e.g. once a channel is configured) or failed."""
    n = service.requeue_messages(session, status=body.status, plan_id=body.plan_id)
    return ReplayDone(queued=n)


@router.post("/notifications/receipts", status_code=204)
def receipt(
    body: Receipt,
    session: SessionDep,
    settings: SettingsDep,
    x_receipt_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Record a provider's delivery report (``X-Receipt-Key``: ``COURIER_NOTIFY_RECEIPT_KEY``)."""
    key = settings.notify_receipt_key
    if not key or not x_receipt_key or not hmac.compare_digest(key, x_receipt_key):
        raise AuthenticationError("a receipt needs the X-Receipt-Key header")
    if not service.record_receipt(session, body.delivery_id, body.status, body.reason):
        raise NotFoundError(f"no sent message with delivery id {body.delivery_id}")
    return Response(status_code=204)
