"""ORM tables of plans (versioned per day), their routes and stops."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, utcnow


class PlanRecord(Base):
    """One version of a day's plan.

    ``status`` moves ``queued`` → ``solving`` → ``ready`` (or ``failed``) → ``published``; a
    published plan is replaced only by publishing a newer version (the old one becomes
    ``superseded``). ``problem`` is the snapshot of depots, couriers and jobs it was planned
    for; ``unassigned`` the jobs left out with their reasons.
    """

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("day", "version", name="uq_plans_day_version"),
        # one published version per day, whatever races two dispatchers run
        Index(
            "uq_plans_one_published_per_day",
            "day",
            unique=True,
            sqlite_where=text("status = 'published'"),
            postgresql_where=text("status = 'published'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="queued")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    options: Mapped[dict[str, Any]]
    problem: Mapped[dict[str, Any]]
    unassigned: Mapped[list[Any]] = mapped_column(default=list)
    objective: Mapped[int | None] = mapped_column(nullable=True)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    revision: Mapped[int] = mapped_column(default=0)

    routes: Mapped[list[RouteRecord]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="RouteRecord.courier_id"
    )


class RouteRecord(Base):
    """A courier's round in a plan; ``legs`` are lon/lat coordinate lists, one per leg."""

    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("plan_id", "courier_id", name="uq_routes_plan_courier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    courier_id: Mapped[str] = mapped_column(String(100), index=True)
    depot_id: Mapped[str] = mapped_column(String(100))
    end_depot_id: Mapped[str] = mapped_column(String(100))
    start_s: Mapped[int]
    end_s: Mapped[int]
    distance_m: Mapped[int]
    driving_s: Mapped[int]
    waiting_s: Mapped[int] = mapped_column(default=0)
    break_start_s: Mapped[int | None] = mapped_column(nullable=True)
    break_duration_s: Mapped[int] = mapped_column(default=0)
    legs: Mapped[list[Any]] = mapped_column(default=list)

    plan: Mapped[PlanRecord] = relationship(back_populates="routes")
    stops: Mapped[list[StopRecord]] = relationship(
        back_populates="route", cascade="all, delete-orphan", order_by="StopRecord.seq"
    )


class StopRecord(Base):
    """A planned visit; ``status`` follows the latest stop event by the device's clock."""

    __tablename__ = "stops"
    __table_args__ = (UniqueConstraint("plan_id", "job_id", name="uq_stops_plan_job"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    seq: Mapped[int]
    job_id: Mapped[str] = mapped_column(String(100))
    job: Mapped[dict[str, Any]]
    lon: Mapped[float] = mapped_column(default=0.0)
    lat: Mapped[float] = mapped_column(default=0.0)
    window_end_s: Mapped[int] = mapped_column(default=0)
    arrival_s: Mapped[int]
    start_s: Mapped[int]
    departure_s: Mapped[int]
    waiting_s: Mapped[int] = mapped_column(default=0)
    load_after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    status_at: Mapped[datetime | None] = mapped_column(nullable=True)
    arrived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)
    fail_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)

    route: Mapped[RouteRecord] = relationship(back_populates="stops")
