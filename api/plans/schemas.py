"""Pydantic schemas of plans, plan status and edits."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class PlanCreate(BaseModel):
    """Ask for a plan of a day (solved on a worker)."""

    day: dt.date
    time_limit_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How long the plan may take, seconds of wall time (shared by its pieces).",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    courier_ids: list[str] | None = Field(default=None, max_length=10_000)


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
    """A plan with its routes, stops and unassigned jobs."""

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
