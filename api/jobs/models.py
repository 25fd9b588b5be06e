"""ORM tables of the dispatcher's master data and the day's jobs: depots, couriers, jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class DepotRecord(Base):
    """A post office; ``record`` holds the row as read (``routing.io.depot_row``)."""

    __tablename__ = "depots"

    depot_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    lon: Mapped[float]
    lat: Mapped[float]
    record: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CourierRecord(Base):
    """A courier; ``record`` holds the row as read (``routing.io.courier_row``)."""

    __tablename__ = "couriers"

    courier_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.depot_id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    record: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobRecord(Base):
    """A job of one day; ``record`` holds the row as read (``routing.io.job_row``)."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("day", "job_id", name="uq_jobs_day_job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    job_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(50), default="")
    depot_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lon: Mapped[float]
    lat: Mapped[float]
    record: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
