"""Delivery-time reports for managers: done, failed, on time, planned vs actual, per courier/office."""

from __future__ import annotations

from datetime import date, datetime
from statistics import mean
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.plans.models import RouteRecord, StopRecord
from api.plans.service import published_plan_id
from api.rounds.service import local_seconds


def _summary(stops: list[StopRecord], day: date) -> dict[str, Any]:
    done = [s for s in stops if s.status == "completed"]
    delays = [
        local_seconds(seen, day) - s.arrival_s
        for s in done
        if (seen := s.arrived_at or s.done_at) is not None
    ]
    on_time = 0
    r2c: list[float] = []
    for s in done:
        assert s.done_at is not None
        t = local_seconds(s.arrived_at or s.done_at, day)
        if any(a <= t <= b for a, b in s.job.get("windows", [])) or t <= min(
            (a for a, _ in s.job.get("windows", [])), default=t
        ):
            on_time += 1
        req = s.job.get("requested_at")
        if req:
            r2c.append((s.done_at - datetime.fromisoformat(req)).total_seconds() / 3600)
    return {
        "stops": len(stops),
        "completed": len(done),
        "failed": sum(s.status == "failed" for s in stops),
        "pending": sum(s.status in ("planned", "arrived") for s in stops),
        "on_time": on_time,
        "on_time_rate": round(on_time / len(done), 4) if done else None,
        "mean_delay_s": round(mean(delays)) if delays else None,
        "mean_request_to_completion_h": round(mean(r2c), 2) if r2c else None,
    }


def day_report(session: Session, day: date) -> dict[str, Any]:
    """Return the day's delivery report of the published plan, overall, per office and courier."""
    plan_id = published_plan_id(session, day)
    if plan_id is None:
        return {
            "day": day,
            "plan_id": None,
            "total": _summary([], day),
            "by_courier": {},
            "by_depot": {},
        }
    rows = session.execute(
        select(StopRecord, RouteRecord.courier_id, RouteRecord.depot_id)
        .join(RouteRecord, RouteRecord.id == StopRecord.route_id)
        .where(StopRecord.plan_id == plan_id)
    ).all()
    by_courier: dict[str, list[StopRecord]] = {}
    by_depot: dict[str, list[StopRecord]] = {}
    for stop, courier_id, depot_id in rows:
        by_courier.setdefault(courier_id, []).append(stop)
        by_depot.setdefault(depot_id, []).append(stop)
    return {
        "day": day,
        "plan_id": plan_id,
        "total": _summary([r[0] for r in rows], day),
        "by_courier": {k: _summary(v, day) for k, v in sorted(by_courier.items())},
        "by_depot": {k: _summary(v, day) for k, v in sorted(by_depot.items())},
    }
