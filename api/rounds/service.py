"""Couriers' rounds: the published route of a courier for a day, as the phone shows it."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.errors import NotFoundError
from api.plans.models import PlanRecord, RouteRecord
from api.plans.service import published_plan_id
from routing.clock import format_clock, local_today
from routing.codec import job_from_json
from routing.contact import mask_phone
from routing.model import Job
from routing.vocabulary import DONE_STATUSES


def get_route(
    session: Session, *, courier_id: str, day: date | None = None, plan_id: int | None = None
) -> RouteRecord:
    """Return a courier's route in the day's published plan (or in ``plan_id``).

    Raises
    ------
    NotFoundError
        If no plan is published for the day, or the courier has no round in it.
    """
    if plan_id is None:
        plan_id = published_plan_id(session, day or local_today())
        if plan_id is None:
            msg = f"no published plan for {day or local_today()}"
            raise NotFoundError(msg)
    route = session.scalar(
        select(RouteRecord)
        .where(RouteRecord.plan_id == plan_id, RouteRecord.courier_id == courier_id)
        .options(selectinload(RouteRecord.stops))
    )
    if route is None:
        msg = f"courier {courier_id} has no round in plan {plan_id}"
        raise NotFoundError(msg)
    return route


def published_version(session: Session, day: date) -> tuple[int | None, int | None]:
    """Return the id and version of the day's published plan (None, None before any)."""
    row = session.execute(
        select(PlanRecord.id, PlanRecord.version).where(
            PlanRecord.day == day, PlanRecord.status == "published"
        )
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _handover(job: Job) -> dict[str, Any]:
    """Return what the courier does at the door, by the job's own rules."""
    return {
        "action": "collect" if job.kind == "pickup" else "hand_over",
        "items": job.demand.items,
        "weight_g": job.demand.weight_g,
        "cash_payout_vnd": job.payout_vnd,
        "id_check_required": job.needs_id_check,
        "authorised_allowed": job.allows_authorised_handover,
    }


def round_dict(session: Session, route: RouteRecord) -> dict[str, Any]:
    """Return a round as the courier's phone shows it: ordered stops, windows, ETAs, legs.

    The citizen's phone is shown whole only on the stop being served (the first not yet
    completed or failed), to call from the door; the others' are masked (``0•••••••456``).
    """
    plan = session.execute(
        select(PlanRecord.id, PlanRecord.day, PlanRecord.version).where(
            PlanRecord.id == route.plan_id
        )
    ).one()
    stops = []
    serving = next((s.seq for s in route.stops if s.status not in DONE_STATUSES), None)
    for s in route.stops:
        j = job_from_json(s.job)
        stops.append(
            {
                "seq": s.seq,
                "job_id": s.job_id,
                "kind": j.kind,
                "category": j.category,
                "address": j.address,
                "recipient": j.recipient,
                "note": j.note,
                "phone": j.phone if s.seq == serving else mask_phone(j.phone),
                "lon": j.lon,
                "lat": j.lat,
                "windows": [[format_clock(w.start_s), format_clock(w.end_s)] for w in j.windows],
                "planned_arrival": format_clock(s.arrival_s),
                "planned_start": format_clock(s.start_s),
                "planned_arrival_s": s.arrival_s,
                "planned_start_s": s.start_s,
                "service_s": j.service_s,
                "task": _handover(j),
                "status": s.status,
                "fail_reason": s.fail_reason,
            }
        )
    return {
        "plan_id": plan.id,
        "day": plan.day,
        "version": plan.version,
        "courier_id": route.courier_id,
        "depot_id": route.depot_id,
        "end_depot_id": route.end_depot_id,
        "start": format_clock(route.start_s),
        "end": format_clock(route.end_s),
        "start_s": route.start_s,
        "end_s": route.end_s,
        "break_start": format_clock(route.break_start_s)
        if route.break_start_s is not None
        else None,
        "break_duration_s": route.break_duration_s,
        "distance_m": route.distance_m,
        "stops": stops,
        "legs": route.legs,
    }
