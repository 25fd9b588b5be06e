"""Close a day: store how each job of the published plan ended and carry the unfinished ones.

The rules are :mod:`routing.close`'s; this module reads the day from the store, applies them
with each office's rules and earlier attempts, and writes the outcome of every job, the jobs of
the next working day, the held list and the courier's cash at close, in one transaction.
A result a phone reports after the close is applied to the stored outcome by
:func:`revise_after_close`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.cash import service as cash
from api.days.models import CarryRulesRecord, DayClose, JobOutcome
from api.db import prepared, session_engine, utcnow, write_lock
from api.errors import ConflictError, NotFoundError
from api.jobs.models import DepotRecord, JobRecord
from api.notify import service as notify
from api.plans.service import get_plan, published_plan_id
from routing.close import (
    DEFAULT_RULES,
    CarryRules,
    ClosedJob,
    DayJob,
    JobHistory,
    Revision,
    carried_jobs,
    close_jobs,
    next_working_day,
    revise,
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
    """Return each job's attempts, first request and last failure's reason before ``before``."""
    if not job_ids:
        return {}
    latest = (
        select(JobOutcome.job_id, func.max(JobOutcome.day).label("day"))
        .where(JobOutcome.job_id.in_(job_ids), JobOutcome.day < before)
        .group_by(JobOutcome.job_id)
        .subquery()
    )
    rows = session.execute(
        select(
            JobOutcome.job_id,
            JobOutcome.attempts,
            JobOutcome.first_requested_at,
            JobOutcome.fail_reason,
        ).join(latest, (JobOutcome.job_id == latest.c.job_id) & (JobOutcome.day == latest.c.day))
    ).all()
    return {job_id: JobHistory(attempts, first, reason) for job_id, attempts, first, reason in rows}


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


def _decide(session: Session, day: date, day_jobs: list[DayJob]) -> list[ClosedJob]:
    """Decide how each job of a day ends, by its history before the day and its office's rules."""
    return close_jobs(
        day,
        day_jobs,
        histories=histories(session, [j.job.job_id for j in day_jobs], day),
        rules_for=rules_by_office(session),
    )


def _counts(decided: list[ClosedJob] | list[JobOutcome]) -> dict[str, int]:
    """Return a closed day's counts by outcome and by action."""
    return {
        **{str(o): sum(c.outcome == o for c in decided) for o in CloseOutcome},
        **{str(a): sum(c.action == a for c in decided) for a in CarryAction},
    }


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
    decided = _decide(session, day, day_jobs)
    rows: list[JobOutcome] = []
    skipped: list[str] = []
    for it, closed, later in zip(items, decided, carried_jobs(day_jobs, decided), strict=True):
        job = it.day_job.job
        if closed.carried_to is not None and not _carry(session, later, closed.carried_to):
            skipped.append(job.job_id)
        rows.append(_outcome_row(day, it, closed, later))
    session.add_all(rows)
    counts = _counts(decided)
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


# -- results reported after the close -------------------------------------------------------------

#: Days known closed, by engine (a closed day never reopens): a stop event's check costs nothing.
_closed_days: set[tuple[Any, date]] = set()


def closed_day(session: Session, day: date) -> DayClose | None:
    """Return the day's close, if the day is closed."""
    rec = session.get(DayClose, day)
    if rec is not None:
        _closed_days.add((session_engine(session), day))
    return rec


#: Whether a day has a close: one column of one row, without the ORM's identity map and loading
#: (asked after every stop event of an open day).
_CLOSE_OF_DAY = select(DayClose.day).where(DayClose.day == bindparam("day_key"))


def is_closed_cached(session: Session, day: date, *, conn: Any = None) -> bool:
    """Return whether the day is closed, remembering a closed day (it never reopens).

    An open day is asked again each time: the close may come at any moment. Asked on the
    session's connection, or on ``conn``, a pooled driver connection of its engine.
    """
    engine = session_engine(session)
    key = (engine, day)
    if key in _closed_days:
        return True
    if conn is None:
        on = session.connection()
        found = prepared(_CLOSE_OF_DAY, on.dialect).run(on, {"day_key": day})
    else:
        found = prepared(_CLOSE_OF_DAY, engine.dialect).run(conn, {"day_key": day}, engine=engine)
    if not found:
        return False
    _closed_days.add(key)
    return True


@dataclass
class LateRevision:
    """A stored outcome a late result changed, with what :func:`routing.close.revise` decided."""

    outcome: JobOutcome
    revision: Revision


def _stored_closed_job(o: JobOutcome) -> ClosedJob:
    return ClosedJob(
        o.job_id,
        CloseOutcome(o.outcome),
        o.attempts,
        o.fail_reason,
        o.first_requested_at,
        CarryAction(o.action),
        o.carried_to,
    )


def _withdraw(session: Session, o: JobOutcome, from_day: date) -> None:
    """Take the job the close carried to ``from_day`` off that day (only the carried one)."""
    rec = session.scalar(
        select(JobRecord).where(JobRecord.day == from_day, JobRecord.job_id == o.job_id)
    )
    if rec is not None and rec.record == o.job:  # not a job of that id the dispatcher loaded
        session.delete(rec)


def _rewrite_carried(session: Session, o: JobOutcome, record: dict[str, Any]) -> None:
    """Store a carried job's new form on the day it was carried to (if still the carried one)."""
    if record == o.job or o.carried_to is None:
        return
    rec = session.scalar(
        select(JobRecord).where(JobRecord.day == o.carried_to, JobRecord.job_id == o.job_id)
    )
    if rec is not None and rec.record == o.job:
        rec.record = record
    o.job = record


def revise_after_close(session: Session, day: date, job_id: str) -> list[LateRevision]:
    """Apply to a closed day's stored outcome a stop result reported after the close.

    A courier's phone without signal may send its results after the dispatcher closed the day.
    The close is decided again for the job (and the other half of its pair) with the stops'
    status now, and :func:`routing.close.revise` says what changes: the outcome, attempts and
    reason; a carried job taken off a later day not yet published (one the dispatcher loaded
    under the same id is left alone) or flagged when that day is published; a job now carried,
    or held when its day is published. The day's counts follow. Idempotent: a result already
    applied (a phone retrying) changes nothing. Nothing is committed here.

    Returns
    -------
    list of LateRevision
        The outcomes changed (none when the day is open or the result changes nothing).
    """
    close = closed_day(session, day)
    if close is None:
        return []
    items = _day_items(session, close.plan_id)
    target = next((it for it in items if it.day_job.job.job_id == job_id), None)
    if target is None:
        return []
    pair = target.day_job.job.pair_id
    group = [it for it in items if it is target or (pair and it.day_job.job.pair_id == pair)]
    day_jobs = [it.day_job for it in group]
    decided = _decide(session, day, day_jobs)
    stored = {
        o.job_id: o
        for o in session.scalars(
            select(JobOutcome).where(
                JobOutcome.day == day, JobOutcome.job_id.in_([j.job.job_id for j in day_jobs])
            )
        )
    }
    later_days = {
        d for d in [*(o.carried_to for o in stored.values()), *(c.carried_to for c in decided)] if d
    }
    published = {d for d in later_days if published_plan_id(session, d) is not None}
    changed: list[LateRevision] = []
    for after, later in zip(decided, carried_jobs(day_jobs, decided), strict=True):
        o = stored.get(after.job_id)
        if o is None:
            continue
        rev = revise(_stored_closed_job(o), after, published=published)
        if rev is None:
            # Its pickup done after all, a carried delivery leaves its pair on a day to plan.
            if o.carried_to is not None and o.carried_to not in published:
                _rewrite_carried(session, o, job_to_json(later))
            continue
        if rev.withdraw_from is not None:
            _withdraw(session, o, rev.withdraw_from)
        if rev.carry_to is not None:
            _carry(session, later, rev.carry_to)
        new = rev.closed
        o.outcome, o.attempts, o.fail_reason = str(new.outcome), new.attempts, new.fail_reason
        o.action, o.carried_to = str(new.action), new.carried_to
        o.late_result = str(rev.flag) if rev.flag is not None else None
        o.revised_at = utcnow()
        if rev.withdraw_from is not None or rev.carry_to is not None:
            o.job = job_to_json(later)
        elif o.carried_to is not None and o.carried_to not in published:
            _rewrite_carried(session, o, job_to_json(later))
        changed.append(LateRevision(o, rev))
    if changed:
        session.flush()
        close.counts = _counts(
            list(session.scalars(select(JobOutcome).where(JobOutcome.day == day)))
        )
        session.flush()
        logger.info("closed day %s revised by a late result: %d jobs", day, len(changed))
    return changed


def record_late_result(session: Session, day: date, job_id: str) -> list[LateRevision]:
    """Revise a closed day for a stop result just stored, tell the other systems, and commit.

    Each changed outcome is a ``day.revised`` event for the webhooks; a job that now goes back
    to the post office is announced to its citizen, as at the close. Idempotent (see
    :func:`revise_after_close`).
    """
    with write_lock(session):
        changed = revise_after_close(session, day, job_id)
        close = closed_day(session, day)
        for c in changed:
            o = c.outcome
            assert close is not None
            notify.emit(
                session,
                notify.DAY_REVISED,
                {
                    "day": day.isoformat(),
                    "plan_id": close.plan_id,
                    "job_id": o.job_id,
                    "outcome": o.outcome,
                    "attempts": o.attempts,
                    "fail_reason": o.fail_reason,
                    "action": o.action,
                    "carried_to": o.carried_to.isoformat() if o.carried_to else None,
                    "late_result": o.late_result,
                    "returned": [
                        {"job_id": o.job_id, "depot_id": o.depot_id, "attempts": o.attempts}
                    ]
                    if c.revision.notify
                    else [],
                },
                source_key=(
                    f"day.revised:{day.isoformat()}:{o.job_id}:{o.outcome}:{o.attempts}:"
                    f"{o.fail_reason}:{o.action}"
                ),
                plan_id=close.plan_id,
            )
        session.commit()
    return changed


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
        "late_result": o.late_result,
        "revised_at": o.revised_at,
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
        "late": [outcome_dict(o) for o in outcomes if o.late_result],
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
