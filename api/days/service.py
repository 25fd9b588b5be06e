"""Close a day: store how each job of the published plan ended and carry the unfinished ones.

The rules are :mod:`routing.close`'s; this module reads the day from the store, applies them
with each office's rules and earlier attempts, and writes the outcome of every job, the jobs of
the next working day, the held list and the courier's cash at close, in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.cash import service as cash
from api.days.models import CarryRulesRecord, DayClose, JobOutcome
from api.db import utcnow
from api.errors import ConflictError, NotFoundError
from api.jobs.models import DepotRecord, JobRecord
from api.plans.service import get_plan, published_plan_id
from routing.close import (
    DEFAULT_RULES,
    CarryRules,
    ClosedJob,
    DayJob,
    JobHistory,
    carried_job,
    close_jobs,
    next_working_day,
    rules_from_json,
    rules_to_json,
)
from routing.codec import job_from_json, job_to_json, problem_from_json
from routing.errors import InputError
from routing.model import Job
from routing.vocabulary import CarryAction, CloseOutcome, UnassignedReason

logger = logging.getLogger(__name__)

# -- offices' rules ----------------------------------------------------------------------------


def _known_depot(session: Session, depot_id: str) -> None:
    if session.get(DepotRecord, depot_id) is None:
        msg = f"post office {depot_id} not found"
        raise NotFoundError(msg)


def get_rules(session: Session, depot_id: str) -> CarryRules:
    """Return an office's carry-over rules (the defaults until it sets its own).

    Raises
    ------
    NotFoundError
        If the post office does not exist.
    """
    _known_depot(session, depot_id)
    rec = session.get(CarryRulesRecord, depot_id)
    return DEFAULT_RULES if rec is None else rules_from_json(rec.rules)


def set_rules(session: Session, depot_id: str, rules: CarryRules) -> CarryRules:
    """Store an office's carry-over rules (validated by :class:`routing.close.CarryRules`)."""
    _known_depot(session, depot_id)
    rec = session.get(CarryRulesRecord, depot_id)
    if rec is None:
        rec = CarryRulesRecord(depot_id=depot_id, rules={})
        session.add(rec)
    rec.rules = rules_to_json(rules)
    session.flush()
    return rules


def rules_by_office(session: Session) -> dict[str | None, CarryRules]:
    """Return every office's own rules, by post office id."""
    return {r.depot_id: rules_from_json(r.rules) for r in session.scalars(select(CarryRulesRecord))}


# -- earlier attempts --------------------------------------------------------------------------


def histories(session: Session, job_ids: list[str], before: date) -> dict[str, JobHistory]:
    """Return each job's attempts and first request time from the closed days before ``before``."""
    if not job_ids:
        return {}
    latest = (
        select(JobOutcome.job_id, func.max(JobOutcome.day).label("day"))
        .where(JobOutcome.job_id.in_(job_ids), JobOutcome.day < before)
        .group_by(JobOutcome.job_id)
        .subquery()
    )
    rows = session.execute(
        select(JobOutcome.job_id, JobOutcome.attempts, JobOutcome.first_requested_at).join(
            latest, (JobOutcome.job_id == latest.c.job_id) & (JobOutcome.day == latest.c.day)
        )
    ).all()
    return {job_id: JobHistory(attempts, first) for job_id, attempts, first in rows}


# -- closing -----------------------------------------------------------------------------------


@dataclass
class _Item:
    day_job: DayJob
    courier_id: str | None


@dataclass
class CloseResult:
    """What a close stored: every job's fate, the jobs carried, held and returned, the cash."""

    day: date
    plan_id: int
    closed: list[JobOutcome]
    carried_skipped: list[str] = field(default_factory=list)
    cash: list[dict[str, Any]] = field(default_factory=list)


def _day_items(session: Session, plan_id: int) -> list[_Item]:
    """Return every job of a published plan: its stops, then the jobs left unassigned."""
    plan = get_plan(session, plan_id)
    items: list[_Item] = []
    for route in plan.routes:
        for stop in route.stops:
            job = job_from_json(stop.job)
            items.append(
                _Item(DayJob(job, stop.status, stop.fail_reason, route.depot_id), route.courier_id)
            )
    if plan.unassigned:
        problem = problem_from_json(plan.problem)
        jobs = problem.job_by_id()
        only_office = problem.depots[0].depot_id if len(problem.depots) == 1 else None
        routed = {it.day_job.job.job_id for it in items}
        for u in plan.unassigned:
            left = jobs.get(u["job_id"])
            if (
                left is None
                or left.job_id in routed
                or u.get("reason") == UnassignedReason.CANCELLED
            ):
                continue
            items.append(_Item(DayJob(left, None, None, left.depot_id or only_office), None))
    return items


def _carry(session: Session, job: Job, to_day: date) -> bool:
    """Make ``job`` a job of ``to_day``; False if that day already has a job of this id."""
    exists = session.scalar(
        select(JobRecord.id).where(JobRecord.day == to_day, JobRecord.job_id == job.job_id)
    )
    if exists is not None:
        return False
    session.add(
        JobRecord(
            day=to_day,
            job_id=job.job_id,
            kind=job.kind,
            category=job.category,
            depot_id=job.depot_id,
            lon=job.lon,
            lat=job.lat,
            record=job_to_json(job),
        )
    )
    return True


def close_day(
    session: Session,
    day: date,
    *,
    closed_by: int | None,
    cash_returned: dict[str, int] | None = None,
) -> CloseResult:
    """Close ``day``: every job of its published plan ends, the unfinished ones are carried.

    Completed, failed or not attempted (see :mod:`routing.close`); a job carried to the next
    working day becomes a job of that day with its citizen's request time (a day that already
    has a job of that id keeps its own, and the id is reported in ``carried_skipped``); held and
    returned jobs wait in the outcomes. ``cash_returned`` (VND per courier) is the cash counted
    back at close; each courier of the plan gets the day's cash row (:mod:`api.cash.service`).

    Raises
    ------
    ConflictError
        If the day has no published plan or is already closed.
    InputError
        If ``cash_returned`` names a courier without a round that day (``cash_returned.<id>``).
    """
    if session.get(DayClose, day) is not None:
        msg = f"day {day} is already closed"
        raise ConflictError(msg)
    plan_id = published_plan_id(session, day)
    if plan_id is None:
        msg = f"day {day} has no published plan to close"
        raise ConflictError(msg)
    items = _day_items(session, plan_id)
    couriers = {it.courier_id for it in items if it.courier_id is not None}
    for courier_id in cash_returned or {}:
        if courier_id not in couriers:
            raise InputError(
                None,
                f"cash_returned.{courier_id}",
                courier_id,
                f"courier {courier_id} has no round on {day}",
            )
    day_jobs = [it.day_job for it in items]
    decided = close_jobs(
        day,
        day_jobs,
        histories=histories(session, [j.job.job_id for j in day_jobs], day),
        rules_for=rules_by_office(session),
    )
    completed = {c.job_id for c in decided if c.outcome == CloseOutcome.COMPLETED}
    pickup_of = {
        it.job.pair_id: it.job.job_id
        for it in day_jobs
        if it.job.pair_id and it.job.kind == "pickup"
    }
    rows: list[JobOutcome] = []
    skipped: list[str] = []
    for it, closed in zip(items, decided, strict=True):
        job = it.day_job.job
        pickup_done = pickup_of.get(job.pair_id) in completed if job.pair_id else False
        later = carried_job(job, pickup_completed=pickup_done)
        if closed.carried_to is not None and not _carry(session, later, closed.carried_to):
            skipped.append(job.job_id)
        rows.append(_outcome_row(day, it, closed, later))
    session.add_all(rows)
    counts = {
        **{str(o): sum(c.outcome == o for c in decided) for o in CloseOutcome},
        **{str(a): sum(c.action == a for c in decided) for a in CarryAction},
    }
    session.add(DayClose(day=day, plan_id=plan_id, closed_by=closed_by, counts=counts))
    cash_rows = cash.close_cash(session, day, plan_id, cash_returned or {})
    try:
        session.flush()
    except IntegrityError as e:  # another close of the same day committed first
        session.rollback()
        msg = f"day {day} is already closed"
        raise ConflictError(msg) from e
    logger.info(
        "closed %s (plan %d): %d jobs, %d carried, %d held, %d returned",
        day,
        plan_id,
        len(rows),
        counts[CarryAction.NEXT_DAY],
        counts[CarryAction.HOLD],
        counts[CarryAction.RETURN],
    )
    return CloseResult(day, plan_id, rows, skipped, cash_rows)


def _outcome_row(day: date, it: _Item, closed: ClosedJob, later: Job) -> JobOutcome:
    job = it.day_job.job
    return JobOutcome(
        day=day,
        job_id=job.job_id,
        depot_id=it.day_job.office,
        courier_id=it.courier_id,
        category=job.category,
        outcome=str(closed.outcome),
        attempts=closed.attempts,
        fail_reason=closed.fail_reason,
        first_requested_at=closed.first_requested_at,
        action=str(closed.action),
        carried_to=closed.carried_to,
        job=job_to_json(later),
    )


def outcome_dict(o: JobOutcome) -> dict[str, Any]:
    """Return a job's outcome as JSON (with what the citizen and the courier need to know)."""
    job = o.job or {}
    return {
        "day": o.day,
        "job_id": o.job_id,
        "depot_id": o.depot_id,
        "courier_id": o.courier_id,
        "category": o.category,
        "outcome": o.outcome,
        "attempts": o.attempts,
        "fail_reason": o.fail_reason,
        "first_requested_at": o.first_requested_at,
        "action": o.action,
        "carried_to": o.carried_to,
        "released_at": o.released_at,
        "notify": o.action == CarryAction.RETURN,
        "address": job.get("address", ""),
        "recipient": job.get("recipient", ""),
    }


def close_dict(session: Session, day: date) -> dict[str, Any]:
    """Return a closed day: when, which plan, counts, and the jobs carried, held and returned.

    Raises
    ------
    NotFoundError
        If the day is not closed.
    """
    rec = session.get(DayClose, day)
    if rec is None:
        msg = f"day {day} is not closed"
        raise NotFoundError(msg)
    outcomes = list(
        session.scalars(select(JobOutcome).where(JobOutcome.day == day).order_by(JobOutcome.job_id))
    )
    by_action: dict[str, list[dict[str, Any]]] = {a: [] for a in CarryAction}
    for o in outcomes:
        by_action.setdefault(o.action, []).append(outcome_dict(o))
    return {
        "day": day,
        "plan_id": rec.plan_id,
        "closed_at": rec.closed_at,
        "counts": rec.counts,
        "next_day": next(
            (o["carried_to"] for o in by_action[CarryAction.NEXT_DAY] if o["carried_to"]), None
        ),
        "carried": by_action[CarryAction.NEXT_DAY],
        "held": by_action[CarryAction.HOLD],
        "returned": by_action[CarryAction.RETURN],
        "cash": cash.day_rows(session, day),
    }


def carried_into(session: Session, day: date) -> list[dict[str, Any]]:
    """Return the jobs that became jobs of ``day`` from closed days, with their history."""
    rows = session.scalars(
        select(JobOutcome).where(JobOutcome.carried_to == day).order_by(JobOutcome.job_id)
    )
    return [outcome_dict(o) for o in rows]


def held_jobs(session: Session) -> list[dict[str, Any]]:
    """Return the jobs held for the dispatcher and not yet released, oldest first."""
    rows = session.scalars(
        select(JobOutcome)
        .where(JobOutcome.action == CarryAction.HOLD, JobOutcome.carried_to.is_(None))
        .order_by(JobOutcome.day, JobOutcome.job_id)
    )
    return [outcome_dict(o) for o in rows]


def release_held(
    session: Session, day: date, job_id: str, *, to_day: date | None = None
) -> JobOutcome:
    """Make a held job a job of ``to_day`` (default: the office's next working day after ``day``).

    A held pair is released whole, whichever half is named.

    Raises
    ------
    NotFoundError
        If the job was not held at the close of ``day``.
    ConflictError
        If it was already released, or ``to_day`` already has a job of this id.
    InputError
        If ``to_day`` is not after ``day``.
    """
    rec = session.scalar(
        select(JobOutcome).where(JobOutcome.day == day, JobOutcome.job_id == job_id)
    )
    if rec is None or rec.action != CarryAction.HOLD:
        msg = f"job {job_id} was not held at the close of {day}"
        raise NotFoundError(msg)
    if rec.carried_to is not None:
        msg = f"job {job_id} was already released to {rec.carried_to}"
        raise ConflictError(msg)
    if to_day is None:
        rules = DEFAULT_RULES
        if rec.depot_id is not None and session.get(DepotRecord, rec.depot_id) is not None:
            rules = get_rules(session, rec.depot_id)
        to_day = next_working_day(day, rules=rules)
    if to_day <= day:
        raise InputError(None, "to_day", to_day.isoformat(), f"must be after {day}")
    # The other half of a held pair goes with it: a day cannot plan half a pair.
    together = [rec, *_held_partners(session, rec)]
    for held in together:
        if not _carry(session, job_from_json(held.job), to_day):
            msg = f"{to_day} already has a job {held.job_id}"
            raise ConflictError(msg)
        held.carried_to = to_day
        held.released_at = utcnow()
    session.flush()
    return rec


def _held_partners(session: Session, rec: JobOutcome) -> list[JobOutcome]:
    """Return the other held, unreleased half of a held pair (closed the same day)."""
    pair_id = (rec.job or {}).get("pair_id")
    if not pair_id:
        return []
    rows = session.scalars(
        select(JobOutcome).where(
            JobOutcome.day == rec.day,
            JobOutcome.action == CarryAction.HOLD,
            JobOutcome.carried_to.is_(None),
            JobOutcome.job_id != rec.job_id,
        )
    )
    return [o for o in rows if (o.job or {}).get("pair_id") == pair_id]


def is_closed(session: Session, day: date) -> bool:
    """Return whether the day is closed."""
    return session.get(DayClose, day) is not None
