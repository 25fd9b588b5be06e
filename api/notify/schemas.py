"""Pydantic schemas of webhook endpoints, deliveries and citizens' messages."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class WebhookCreate(BaseModel):
    """An endpoint to register: where to POST, which events, and optionally its secret."""

    url: str = Field(max_length=2000, description="http(s) URL that receives the POSTs")
    event_types: list[str] = Field(min_length=1, description="Event types to receive (`*` for all)")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="Signing secret; generated (and shown once) when omitted",
    )
    description: str = Field(default="", max_length=500)


class WebhookUpdate(BaseModel):
    """Changes to an endpoint."""

    url: str | None = Field(default=None, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1)
    active: bool | None = None
    description: str | None = Field(default=None, max_length=500)


class WebhookRead(BaseModel):
    """A registered endpoint (its secret only in the answer that created it)."""

    id: int
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_at: dt.datetime
    secret: str | None = None


class WebhookList(BaseModel):
    """The registered endpoints."""

    data: list[WebhookRead]
    count: int


class DeliveryRead(BaseModel):
    """One delivery of one event to one endpoint, and its fate."""

    id: int
    delivery_id: str
    endpoint_id: int
    event_type: str
    order_key: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    replay_of: int | None
    body: str


class DeliveryList(BaseModel):
    """A page of deliveries, newest first."""

    data: list[DeliveryRead]
    count: int


class ReplayAsk(BaseModel):
    """Replay an endpoint's deliveries created in a time range (optionally of some event types)."""

    since: dt.datetime
    until: dt.datetime | None = None
    event_types: list[str] | None = None


class ReplayDone(BaseModel):
    """How many deliveries were queued again."""

    queued: int


class NotificationRead(BaseModel):
    """A message to a citizen (phone masked) and its fate."""

    id: int
    delivery_id: str
    day: str
    plan_id: int | None
    job_id: str
    kind: str
    preference: str
    channel: str | None
    phone: str | None
    text: str
    window: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None


class NotificationList(BaseModel):
    """A page of messages, in the order they were queued."""

    data: list[NotificationRead]
    count: int
    next_after: int | None = None


class RequeueAsk(BaseModel):
    """Queue again the messages left unsent (no channel was configured) or failed."""

    status: str = Field(default="unsent", pattern="^(unsent|failed)$")
    plan_id: int | None = Field(default=None, ge=1)


class Receipt(BaseModel):
    """A provider's delivery report: the delivery id it was given and what became of it."""

    delivery_id: str = Field(min_length=1, max_length=40)
    status: str = Field(pattern="^(delivered|failed)$")
    reason: str | None = Field(default=None, max_length=500)
