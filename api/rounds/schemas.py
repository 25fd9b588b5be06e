"""Pydantic schemas of a courier's round."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class RoundStop(BaseModel):
    """One stop as the courier sees it."""

    seq: int
    job_id: str
    kind: str
    category: str
    address: str
    recipient: str
    note: str
    phone: str | None = None
    lon: float
    lat: float
    windows: list[list[str]]
    planned_arrival: str
    planned_start: str
    planned_arrival_s: int
    planned_start_s: int
    service_s: int
    task: dict[str, Any]
    status: str
    fail_reason: str | None


class RoundRead(BaseModel):
    """A courier's round for a day: ordered stops, time windows, ETAs, leg geometry."""

    plan_id: int
    day: dt.date
    version: int
    courier_id: str
    depot_id: str
    end_depot_id: str
    start: str
    end: str
    start_s: int
    end_s: int
    break_start: str | None
    break_duration_s: int
    distance_m: int
    stops: list[RoundStop]
    legs: list[Any]
