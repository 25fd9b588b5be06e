"""ORM tables of what couriers report: stop events, proofs of handover and GPS positions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class StopEvent(Base):
    """``arrived`` / ``completed`` / ``failed`` at a stop, stored once per idempotency key."""

    __tablename__ = "stop_events"
    __table_args__ = (
        UniqueConstraint("courier_id", "idempotency_key", name="uq_stop_events_courier_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("stops.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    courier_id: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    device_ts: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(50), nullable=True)
    note: Mapped[str] = mapped_column(String(1000), default="")
    lon: Mapped[float | None] = mapped_column(nullable=True)
    lat: Mapped[float | None] = mapped_column(nullable=True)
    #: SHA-256 of the event's canonical body: a repeated key with another body is refused
    #: (null on events stored before it was kept; those are answered as retries).
    body_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Proof(Base):
    """Proof of a completed handover: recipient, ID check, photo, cash paid."""

    __tablename__ = "proofs"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("stop_events.id", ondelete="CASCADE"), unique=True
    )
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    id_check: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cash_paid_vnd: Mapped[int | None] = mapped_column(nullable=True)
    photo_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    photo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Who received it: the citizen, or an authorised person (name, relation, ID digits, photo
    # of the authorisation). Null on proofs stored before this was recorded: the citizen.
    received_by: Mapped[str | None] = mapped_column(String(20), nullable=True)
    authorised_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    authorised_relation: Mapped[str | None] = mapped_column(String(100), nullable=True)
    authorised_id_digits: Mapped[str | None] = mapped_column(String(10), nullable=True)
    authorisation_photo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Position(Base):
    """A GPS fix sent by a courier's phone."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("courier_id", "idempotency_key", name="uq_positions_courier_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(String(100), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    device_ts: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    lon: Mapped[float]
    lat: Mapped[float]
    accuracy_m: Mapped[float | None] = mapped_column(nullable=True)
    #: SHA-256 of the fix's canonical body (see :attr:`StopEvent.body_sha256`).
    body_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
