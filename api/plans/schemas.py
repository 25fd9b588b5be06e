"""Pydantic schemas of plans, plan status and edits."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class PlanCreate(BaseModel):
    """Ask for a plan of a day (solved on a worker)."""

    day: dt.date
    time_limit_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="How long the plan may take, seconds of wall time (shared by its pieces); "
        "by default the service's limit, else one for the day's jobs (22 s for 300, 55 s "
        "for 2,000 to 5,000, 150 s for 10,000).",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    courier_ids: list[str] | None = Field(default=None, max_length=10_000)
    territory: bool = Field(
        default=True,
        description="Prefer each commune's usual courier, learned from the last published days.",
    )


class PlanCreated(BaseModel):
    """A queued plan."""

    plan_id: int
    day: dt.date
    version: int
    status: str


class PlanStatus(BaseModel):
    """Where a plan's solve is: status, stage, elapsed time, best objective, jobs assigned."""

    plan_id: int
    status: str
    stage: str | None = None
    elapsed_s: float | None = None
    best_objective: int | None = None
    jobs_assigned: int | None = None
    error: str | None = None
    progress: dict[str, Any] = {}


class PlanRead(BaseModel):
    """A plan with its routes, stops and unassigned jobs; ``balance`` per post office."""

    id: int
    day: dt.date
    version: int
    status: str
    parent_id: int | None
    revision: int
    objective: int | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    error: str | None
    stats: dict[str, Any]
    routes: list[dict[str, Any]]
    unassigned: list[dict[str, Any]]
    balance: list[dict[str, Any]] = []


class PlanSummary(BaseModel):
    """A plan in a list."""

    id: int
    day: dt.date
    version: int
    status: str
    objective: int | None


class PlanList(BaseModel):
    """Plans of a day."""

    data: list[PlanSummary]
    count: int


class PlanEdit(BaseModel):
    """Move a job to a courier (at ``position``, or the best feasible one), reorder, or unassign."""

    op: Literal["move", "reorder", "unassign"]
    job_id: str | None = Field(default=None, max_length=100)
    courier_id: str | None = Field(default=None, max_length=100)
    position: int | None = Field(default=None, ge=0, le=10_000)
    job_ids: list[str] = Field(default_factory=list, max_length=10_000)
    now: dt.datetime | None = Field(
        default=None,
        description=(
            "On a running day, the time the edited rounds are timed from (default: the "
            "server's clock on the plan's day; another day: each courier's latest news)"
        ),
    )


class CourierOff(BaseModel):
    """A courier who stops working (a breakdown, sick), from a time (default: now)."""

    courier_id: str = Field(min_length=1, max_length=100)
    at: dt.datetime | None = None


class ReplanCreate(BaseModel):
    """Re-plan the rest of the day from the published plan's live state."""

    now: dt.datetime | None = Field(
        default=None, description="The time to re-plan from (default: the server's clock)"
    )
    new_jobs: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=5_000,
        description="New jobs as rows keyed like the jobs file's columns",
    )
    with_uploaded_jobs: bool = Field(
        default=True, description="Also place the jobs uploaded for the day since the plan"
    )
    cancelled: list[str] = Field(default_factory=list, max_length=10_000)
    unavailable: list[CourierOff] = Field(default_factory=list, max_length=1_000)
    closures: dict[str, Any] | None = Field(
        default=None, description="Roads closed since the morning (a GeoJSON FeatureCollection)"
    )
    time_limit_s: float = Field(default=10.0, gt=0, le=600)


class SuggestionAsk(BaseModel):
    """Ask where one new job fits."""

    job: dict[str, Any] = Field(description="The job as a row keyed like the jobs file's columns")
    now: dt.datetime | None = None
    limit: int = Field(default=10, ge=1, le=100)


class SuggestionAccept(BaseModel):
    """Put a new job on a courier's round at a position (a suggestion the dispatcher chose)."""

    job: dict[str, Any]
    courier_id: str = Field(min_length=1, max_length=100)
    position: int = Field(ge=0, le=10_000)
    now: dt.datetime | None = None


class SuggestionList(BaseModel):
    """Ranked insertions of a new job: feasible first, then by minutes added."""

    job_id: str
    now_s: int
    data: list[dict[str, Any]]
