"""Cash reconciliation per courier and day: issued, paid out (from proofs), returned, difference.

The arithmetic and the flag are :class:`routing.cash.CashDay`'s; this module reads the rounds
and proofs of the published plan, stores what the dispatcher enters (cash issued in the
morning, returned at close) and the manager's sign-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cash.models import CashDayRecord
from api.db import utcnow
from api.errors import ConflictError, NotFoundError
from api.events.models import Proof, StopEvent
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from api.plans.service import published_plan_id
from routing.cash import CashDay, paid_out_vnd, proposed_issue_vnd
from routing.codec import job_from_json
from routing.errors import InputError


@dataclass(frozen=True, slots=True)
class _Round:
    courier_id: str
    depot_id: str
    proposed_vnd: int
    paid_vnd: int
    payouts: int


def _rounds(session: Session, plan_id: int) -> dict[str, _Round]:
    """Return each courier's payouts planned and paid (proofs of completed payouts) in a plan."""
    paid_of: dict[int, int | None] = dict(
        session.execute(
            select(StopEvent.stop_id, Proof.cash_paid_vnd)
            .join(Proof, Proof.event_id == StopEvent.id)
            .where(StopEvent.plan_id == plan_id, StopEvent.kind == "completed")
            .order_by(StopEvent.device_ts, StopEvent.id)  # the latest completion wins
        ).all()
    )
    depots: dict[str, str] = dict(
        session.execute(
            select(RouteRecord.courier_id, RouteRecord.depot_id).where(
                RouteRecord.plan_id == plan_id
            )
        ).all()
    )
    stops: dict[str, list[tuple[Any, str, int | None]]] = {cid: [] for cid in depots}
    for stop, courier_id in session.execute(
        select(StopRecord, RouteRecord.courier_id)
        .join(RouteRecord, RouteRecord.id == StopRecord.route_id)
        .where(StopRecord.plan_id == plan_id)
    ):
        stops[courier_id].append((job_from_json(stop.job), stop.status, paid_of.get(stop.id)))
    return {
        cid: _Round(
            cid,
            depots[cid],
            proposed_issue_vnd(job for job, _, _ in handovers),
            paid_out_vnd(handovers),
            sum(job.is_payout for job, _, _ in handovers),
        )
        for cid, handovers in sorted(stops.items())
    }


def _plan_of(session: Session, day: date) -> int:
    plan_id = published_plan_id(session, day)
    if plan_id is None:
        msg = f"no published plan for {day}"
        raise NotFoundError(msg)
    return plan_id


def _record(session: Session, day: date, courier_id: str, depot_id: str) -> CashDayRecord:
    rec = session.scalar(
        select(CashDayRecord).where(
            CashDayRecord.day == day, CashDayRecord.courier_id == courier_id
        )
    )
    if rec is None:
        rec = CashDayRecord(day=day, courier_id=courier_id, depot_id=depot_id, sign_off_note="")
        session.add(rec)
    return rec


def set_cash(
    session: Session,
    day: date,
    courier_id: str,
    *,
    issued_vnd: int | None = None,
    returned_vnd: int | None = None,
) -> dict[str, Any]:
    """Enter the cash issued in the morning and/or returned at close for a courier's day.

    Raises
    ------
    NotFoundError
        If the day has no published plan or the courier no round in it.
    ConflictError
        If a manager has already signed the day off.
    InputError
        If neither amount is given.
    """
    if issued_vnd is None and returned_vnd is None:
        raise InputError(None, "issued_vnd", None, "give issued_vnd, returned_vnd or both")
    rounds = _rounds(session, _plan_of(session, day))
    if courier_id not in rounds:
        msg = f"courier {courier_id} has no round on {day}"
        raise NotFoundError(msg)
    rec = _record(session, day, courier_id, rounds[courier_id].depot_id)
    if rec.signed_off_at is not None:
        msg = f"the cash of {courier_id} on {day} is signed off; it no longer changes"
        raise ConflictError(msg)
    if issued_vnd is not None:
        rec.issued_vnd = issued_vnd
    if returned_vnd is not None:
        rec.returned_vnd = returned_vnd
    session.flush()
    return _row(day, rounds[courier_id], rec)


def close_cash(
    session: Session, day: date, plan_id: int, returned: dict[str, int]
) -> list[dict[str, Any]]:
    """Store every courier's cash at the close: paid out frozen, returned as counted.

    A courier whose morning cash was never entered is taken to have received the proposal
    (the payouts planned on the round).
    """
    out = []
    for courier_id, rnd in _rounds(session, plan_id).items():
        rec = _record(session, day, courier_id, rnd.depot_id)
        if rec.issued_vnd is None:
            rec.issued_vnd = rnd.proposed_vnd
        rec.paid_vnd = rnd.paid_vnd
        if courier_id in returned:
            rec.returned_vnd = returned[courier_id]
        out.append(_row(day, rnd, rec))
    session.flush()
    return out


def _row(day: date, rnd: _Round, rec: CashDayRecord | None) -> dict[str, Any]:
    paid = rec.paid_vnd if rec is not None and rec.paid_vnd is not None else rnd.paid_vnd
    issued = rec.issued_vnd if rec is not None else None
    state = CashDay(
        issued_vnd=issued,
        paid_vnd=paid,
        returned_vnd=rec.returned_vnd if rec is not None else None,
        signed_off=rec is not None and rec.signed_off_at is not None,
        closed=rec is not None and rec.paid_vnd is not None,  # paid is frozen at the close
    )
    return {
        "day": day,
        "courier_id": rnd.courier_id,
        "depot_id": rnd.depot_id,
        "payouts": rnd.payouts,
        "proposed_vnd": rnd.proposed_vnd,
        "issued_vnd": issued,
        "issued_entered": issued is not None,
        "paid_vnd": paid,
        "returned_vnd": state.returned_vnd,
        "in_hand_vnd": state.in_hand_vnd
        if issued is not None
        else (rnd.proposed_vnd - paid if state.returned_vnd is None else 0),
        "difference_vnd": state.difference_vnd,
        "missing_return": state.missing_return,
        "flagged": state.flagged,
        "signed_off_at": rec.signed_off_at if rec is not None else None,
        "sign_off_note": rec.sign_off_note if rec is not None else "",
    }


def day_rows(session: Session, day: date, *, courier_id: str | None = None) -> list[dict[str, Any]]:
    """Return the cash of every courier of the day's published plan (or of one courier)."""
    plan_id = published_plan_id(session, day)
    if plan_id is None:
        return []
    stored = {
        r.courier_id: r
        for r in session.scalars(select(CashDayRecord).where(CashDayRecord.day == day))
    }
    return [
        _row(day, rnd, stored.get(cid))
        for cid, rnd in _rounds(session, plan_id).items()
        if courier_id is None or cid == courier_id
    ]


def courier_cash(session: Session, day: date, courier_id: str) -> dict[str, Any]:
    """Return one courier's cash for the day (the courier page's cash in hand).

    Raises
    ------
    NotFoundError
        If the day has no published plan or the courier no round in it.
    """
    rows = day_rows(session, day, courier_id=courier_id)
    if not rows:
        msg = f"courier {courier_id} has no round on {day}"
        raise NotFoundError(msg)
    return rows[0]


def sign_off(
    session: Session, day: date, courier_id: str, *, note: str, user_id: int
) -> dict[str, Any]:
    """Sign off a flagged difference with a note; the day is no longer flagged.

    Raises
    ------
    NotFoundError
        If the courier has no cash row for the day.
    ConflictError
        If the day shows no difference to sign off (or is already signed off).
    InputError
        If the note is blank.
    """
    if not note.strip():
        raise InputError(None, "note", note, "a sign-off needs a note")
    rows = day_rows(session, day, courier_id=courier_id)
    rec = session.scalar(
        select(CashDayRecord).where(
            CashDayRecord.day == day, CashDayRecord.courier_id == courier_id
        )
    )
    if not rows or rec is None:
        msg = f"no cash recorded for courier {courier_id} on {day}"
        raise NotFoundError(msg)
    if not rows[0]["flagged"]:
        msg = f"the cash of {courier_id} on {day} shows no open difference to sign off"
        raise ConflictError(msg)
    rec.signed_off_at = utcnow()
    rec.signed_off_by = user_id
    rec.sign_off_note = note.strip()
    session.flush()
    return day_rows(session, day, courier_id=courier_id)[0]


#: Columns of the reconciliation table (one row per courier and day).
CASH_COLUMNS: tuple[str, ...] = (
    "day",
    "depot_id",
    "courier_id",
    "payouts",
    "proposed_vnd",
    "issued_vnd",
    "paid_vnd",
    "returned_vnd",
    "difference_vnd",
    "missing_return",
    "flagged",
    "signed_off_at",
    "sign_off_note",
)


def reconciliation_frame(session: Session, start: date, end: date) -> pd.DataFrame:
    """Return the cash of every courier and day with a published plan in ``start..end``.

    Sorted by post office, courier and day; amounts in VND as nullable integers.
    """
    days = session.scalars(
        select(PlanRecord.day)
        .where(PlanRecord.status == "published", PlanRecord.day >= start, PlanRecord.day <= end)
        .order_by(PlanRecord.day)
    ).all()
    rows = [row for day in days for row in day_rows(session, day)]
    df = pd.DataFrame(rows, columns=list(CASH_COLUMNS))
    for col in (
        "payouts",
        "proposed_vnd",
        "issued_vnd",
        "paid_vnd",
        "returned_vnd",
        "difference_vnd",
    ):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    df["flagged"] = df["flagged"].astype(bool)
    df["missing_return"] = df["missing_return"].astype(bool)
    df["signed_off_at"] = pd.to_datetime(df["signed_off_at"], utc=True)
    return df.sort_values(["depot_id", "courier_id", "day"]).reset_index(drop=True)


def reconciliation_by(df: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sum the reconciliation per post office (``depot_id``) or courier (``courier_id``)."""
    keys = ["depot_id"] if by == "depot_id" else ["depot_id", "courier_id"]
    amounts = ["payouts", "issued_vnd", "paid_vnd", "returned_vnd", "difference_vnd"]
    if df.empty:
        return pd.DataFrame(columns=[*keys, "days", *amounts, "flagged"])
    grouped = df.groupby(keys, sort=True)
    out = grouped[amounts].sum(min_count=1)
    out.insert(0, "days", grouped["day"].nunique())
    out["flagged"] = grouped["flagged"].sum().astype(int)
    return out.reset_index()
