"""Manager endpoints: delivery-time reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Manager, SessionDep
from api.errors import ERROR_RESPONSES
from api.reports import service

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERROR_RESPONSES)


class DayReport(BaseModel):
    """A day's report: overall, per post office, per courier."""

    day: dt.date
    plan_id: int | None
    total: dict[str, Any]
    by_courier: dict[str, dict[str, Any]]
    by_depot: dict[str, dict[str, Any]]


@router.get("/day", response_model=DayReport)
def day_report(session: SessionDep, _: Manager, day: dt.date) -> dict[str, Any]:
    """Return completed, failed, on-time rate, planned vs actual arrival and request-to-completion."""
    return service.day_report(session, day)
