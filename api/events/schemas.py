"""Pydantic schemas of stop events, proofs and GPS positions sent by couriers' phones."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from routing.vocabulary import EventKind, FailReason, Recipient


class AuthorisedIn(BaseModel):
    """The person the citizen authorised to receive a result or a payout."""

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    relation: str = Field(min_length=1, max_length=100, pattern=r"\S")
    id_last_digits: str = Field(pattern=r"^[0-9]{3,6}$", description="Last digits of their ID")
    photo_id: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Uploaded photo of the written authorisation"
    )


class ProofIn(BaseModel):
    """Proof of a handover; ``received_by`` says who received it (the citizen by default)."""

    recipient_name: str = Field(default="", max_length=200)
    id_check: Literal["passed", "failed", "not_required"] | None = None
    cash_paid_vnd: int | None = Field(default=None, ge=0, le=10**12)
    photo_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    received_by: Recipient = Recipient.CITIZEN
    authorised: AuthorisedIn | None = None


class StopEventIn(BaseModel):
    """A stop event; ``idempotency_key`` makes retries safe, ``device_ts`` orders events."""

    idempotency_key: str = Field(min_length=8, max_length=100)
    device_ts: AwareDatetime
    job_id: str = Field(min_length=1, max_length=100)
    kind: EventKind
    reason: FailReason | None = None
    proof: ProofIn | None = None
    note: str = Field(default="", max_length=1000)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    plan_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class StopEventRead(BaseModel):
    """A stored stop event."""

    id: int
    plan_id: int
    courier_id: str
    job_id: str
    kind: str
    idempotency_key: str
    device_ts: dt.datetime
    received_at: dt.datetime
    reason: str | None
    duplicate: bool = False
    stop_status: str | None = None


class EventList(BaseModel):
    """A page of events in device-time order; ``count`` is over all pages."""

    data: list[StopEventRead]
    count: int = Field(description="Events matching, over all pages")
    next_after: int | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last page"
    )


class PositionIn(BaseModel):
    """A GPS fix."""

    idempotency_key: str = Field(min_length=8, max_length=100)
    device_ts: AwareDatetime
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class PositionRead(BaseModel):
    """A stored GPS fix, with the next stop and the ETA drift computed from it."""

    id: int
    courier_id: str
    device_ts: dt.datetime
    duplicate: bool = False
    next_job_id: str | None = None
    eta_drift_s: int | None = Field(
        default=None, description="ETA at the next stop minus its planned arrival (s; > 0 late)"
    )
    eta_basis: Literal["roads", "straight_line"] | None = None
    expected_late: list[str] = Field(
        default_factory=list, description="Stops still to serve whose projected arrival is late"
    )


class PhotoRead(BaseModel):
    """A stored photo, referenced by ``proof.photo_id``."""

    photo_id: str
    size: int
