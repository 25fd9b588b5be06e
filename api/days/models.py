"""ORM tables of closed days: the close itself, each job's outcome and fate, offices' rules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class DayClose(Base):
    """A closed day: the published plan it closed, who closed it and the counts by fate."""

    __tablename__ = "day_closes"

    day: Mapped[date] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobOutcome(Base):
    """How a job of a closed day ended and where it went (``routing.close.ClosedJob``).

    ``attempts`` counts every attempt up to and including ``day``; ``carried_to`` is the day the
    job became a job of (next-day carry-over, or a held job the dispatcher released).
    ``revised_at`` is when a result reported after the close changed the row, ``late_result``
    why the dispatcher must look at it (``routing.vocabulary.LateResult``), if they must.
    """

    __tablename__ = "job_outcomes"
    __table_args__ = (UniqueConstraint("day", "job_id", name="uq_job_outcomes_day_job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    job_id: Mapped[str] = mapped_column(String(100), index=True)
    depot_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    courier_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    category: Mapped[str] = mapped_column(String(50), default="")
    outcome: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    fail_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)
    first_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    action: Mapped[str] = mapped_column(String(20))
    carried_to: Mapped[date | None] = mapped_column(nullable=True, index=True)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    job: Mapped[dict[str, Any]] = mapped_column(default=dict)
    late_result: Mapped[str | None] = mapped_column(String(30), nullable=True)
    revised_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CarryRulesRecord(Base):
    """An office's carry-over rules (``routing.close.rules_to_json``)."""

    __tablename__ = "carry_rules"

    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.depot_id"), primary_key=True)
    rules: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
