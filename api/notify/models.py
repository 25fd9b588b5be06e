"""ORM tables of the outbox: what happened, the citizens' messages, webhook endpoints and deliveries.

Nothing is sent that is not a row first. The request that publishes a plan or records a stop
event inserts one :class:`OutboxEvent`; the notify worker turns it into :class:`Notification`
rows (messages to citizens) and :class:`WebhookDelivery` rows (one per endpoint subscribed to
the event's type), then sends those with retries, recording each outcome on the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class OutboxEvent(Base):
    """Something other systems and citizens hear about: a published plan, a stop event, a closed day.

    ``source_key`` makes recording the same happening twice a no-op (``stop_event:<id>``,
    ``plan:<id>``). ``processed_at`` is set once the worker has made its messages and
    deliveries.
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    plan_id: Mapped[int | None] = mapped_column(nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class Notification(Base):
    """One message to one citizen, and what became of it.

    ``status``: ``queued`` (waiting, or waiting to retry after ``next_attempt_at``),
    ``sending`` (claimed by a worker until ``locked_until``), ``sent`` (accepted by the
    provider), ``delivered`` (the provider reported it on the phone), ``failed`` (refused, or
    given up; ``last_error`` holds the provider's reason) or ``unsent`` (no channel was
    configured: kept, and re-queued by an admin once one is). ``delivery_id`` is the id the
    provider sees (Zalo's ``tracking_id``, the SMS gateway's reference, the e-mail's
    Message-ID), so a retry after a lost answer is recognisable as the same message.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_plan_job", "plan_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    day: Mapped[str] = mapped_column(String(10))
    plan_id: Mapped[int | None] = mapped_column(nullable=True)
    job_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    preference: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    window_start_s: Mapped[int | None] = mapped_column(nullable=True)
    window_end_s: Mapped[int | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    channel: Mapped[str | None] = mapped_column(String(10), nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookEndpoint(Base):
    """A receiver registered by an admin: where to POST, the signing secret, the event types."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class WebhookDelivery(Base):
    """One event for one endpoint: a signed JSON body, sent in order per ``order_key``.

    ``order_key`` is the job id for a job's events (``plan:<id>`` for a plan's): a delivery
    waits while an earlier one of the same endpoint and key is still queued or sending, so a
    receiver hears a job's ``stop.arrived`` before its ``stop.completed``. Retried with a
    growing delay until ``expires_at`` (24 hours), then ``failed``. A replay by an admin is a new
    delivery (``replay`` counts them, ``replay_of`` names the delivery replayed) of the same
    event and body, so a receiver that keeps event ids sees it is the same event.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", "replay", name="uq_webhook_deliveries_once"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "order_key", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(40))
    order_key: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    replay: Mapped[int] = mapped_column(default=0)
    replay_of: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
