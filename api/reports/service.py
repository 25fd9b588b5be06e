"""Delivery-time reports for managers: the event store as a frame, then :mod:`routing.reports`.

:func:`delivery_frame` turns the published plans of a date range (stops, their latest events,
the jobs left unassigned) into the table of :data:`routing.simulate.MONTH_COLUMNS` that the
notebook gets from simulated days, so the API, the manager page, the CSV and the workbook
compute every figure with the same functions as ``notebooks/delivery_times.ipynb``. How the
columns are filled from what couriers report:

- ``outcome`` is the stop's status: ``completed`` / ``failed`` (an attempt), ``pending`` (planned
  or only arrived, not yet an attempt) or ``unassigned`` (left out of the plan);
- ``actual_arrival`` is the ``arrived`` event, else the completing / failing event;
- ``service_start`` is the arrival, or the opening of the next window when the courier came
  early and waited; ``on_time`` means completed with the service start inside a window;
- ``window_start`` / ``window_end`` are the window the plan promised (the one holding the
  planned start);
- ``rain`` is False and ``rough_leg`` empty: the service records no weather or road state.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from api.days.models import JobOutcome
from api.db import session_engine
from api.errors import InvalidRequestError
from api.events.models import Proof, StopEvent
from api.plans.models import PlanRecord, RouteRecord, StopRecord
from api.plans.service import published_plan_id
from routing import reports
from routing.clock import local_clock, local_seconds
from routing.codec import job_from_json, problem_from_json
from routing.reports import month_frame, promised_window, requested_moment
from routing.vocabulary import DONE_STATUSES, Recipient, StopStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

GroupBy = Literal["post_office", "zone", "courier", "day"]
GROUPS: tuple[GroupBy, ...] = ("post_office", "zone", "courier", "day")
ChartName = Literal["request_to_completion", "arrival_delay", "on_time", "failures"]
CHARTS: tuple[ChartName, ...] = ("request_to_completion", "arrival_delay", "on_time", "failures")
#: The longest range a report covers, in days (a year, leap day included).
MAX_RANGE_DAYS = 366
#: Histogram edges: request to completion (hours) and arrival delay (minutes); open ends.
R2C_EDGES_H: tuple[float, ...] = (0, 4, 8, 12, 24, 36, 48, 72, 96, math.inf)
DELAY_EDGES_MIN: tuple[float, ...] = (-math.inf, -30, -15, -5, 5, 15, 30, 60, 120, math.inf)


def check_range(start: date, end: date) -> None:
    """Refuse an inverted range or one longer than :data:`MAX_RANGE_DAYS`.

    Raises
    ------
    InvalidRequestError
        Naming ``end`` (the field to change) with the reason.
    """
    if end < start:
        raise InvalidRequestError(
            f"end {end} is before start {start}",
            errors=[{"column": "end", "value": end.isoformat(), "reason": "end is before start"}],
        )
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidRequestError(
            f"a report covers at most {MAX_RANGE_DAYS} days; {start}..{end} is {days}",
            errors=[
                {
                    "column": "end",
                    "value": end.isoformat(),
                    "reason": f"range of {days} days is longer than {MAX_RANGE_DAYS}",
                }
            ],
        )


@dataclass(frozen=True, slots=True)
class _Handover:
    recipient_name: str | None
    id_checked: bool | None
    cash_paid_vnd: int | None
    received_by: str | None = None


def _handovers(session: Session, plan_ids: list[int]) -> dict[int, _Handover]:
    """Return the proof of the latest completion of each stop (by stop id)."""
    if not plan_ids:
        return {}
    rows = session.execute(
        select(
            StopEvent.stop_id,
            Proof.recipient_name,
            Proof.id_check,
            Proof.cash_paid_vnd,
            Proof.received_by,
        )
        .join(Proof, Proof.event_id == StopEvent.id)
        .where(StopEvent.plan_id.in_(plan_ids), StopEvent.kind == "completed")
        .order_by(StopEvent.device_ts, StopEvent.id)
    ).all()
    return {
        stop_id: _Handover(
            name or None,
            None if check is None else check == "passed",
            cash,
            received_by or Recipient.CITIZEN,
        )
        for stop_id, name, check, cash, received_by in rows
    }


def _stop_row(
    day: date, stop: StopRecord, courier_id: str, depot_id: str, proof: _Handover | None
) -> dict[str, Any]:
    job = job_from_json(stop.job)
    promised = promised_window(job, stop.start_s)
    requested = requested_moment(job)
    done_at = stop.done_at
    seen = stop.arrived_at or done_at
    outcome = stop.status if stop.status in DONE_STATUSES else "pending"
    arrival_s = local_seconds(seen, day) if seen is not None else None
    begin_s = None
    if arrival_s is not None:  # service starts at arrival, or when the next window opens
        opening = job.earliest_start_from(arrival_s)
        begin_s = arrival_s if opening is None else opening
    completed_at = done_at if outcome == StopStatus.COMPLETED else None
    on_time = outcome == StopStatus.COMPLETED and begin_s is not None and job.in_window(begin_s)
    return {
        "day": day,
        "job_id": stop.job_id,
        "attempt": 1,
        "category": job.category or None,
        "kind": job.kind,
        "priority": job.priority,
        "depot_id": depot_id,
        "zone_id": job.zone_id,
        "courier_id": courier_id,
        "seq": stop.seq,
        "requested_at": requested,
        "window_start": local_clock(day, promised[0]),
        "window_end": local_clock(day, promised[1]),
        "planned_arrival": local_clock(day, stop.arrival_s),
        "planned_start": local_clock(day, stop.start_s),
        "actual_arrival": local_clock(day, arrival_s),
        "service_start": local_clock(day, begin_s),
        "completed_at": completed_at,
        "finished_at": done_at if outcome != "pending" else None,
        "outcome": outcome,
        "fail_reason": stop.fail_reason if outcome == "failed" else None,
        "unassigned_reason": None,
        "rain": False,
        "rough_leg": None,
        "request_to_completion_h": (completed_at - requested).total_seconds() / 3600
        if completed_at is not None and requested is not None
        else None,
        "on_time": on_time,
        "recipient_name": proof.recipient_name if proof else None,
        "id_checked": proof.id_checked if proof else None,
        "cash_paid_vnd": proof.cash_paid_vnd if proof else None,
        "received_by": proof.received_by
        if proof and completed_at is not None and job.kind == "delivery"
        else None,
    }


def _unassigned_rows(day: date, plan: PlanRecord) -> list[dict[str, Any]]:
    if not plan.unassigned:
        return []
    problem = problem_from_json(plan.problem)
    jobs = problem.job_by_id()
    depots = [d.depot_id for d in problem.depots]
    rows = []
    for u in plan.unassigned:
        job = jobs.get(u["job_id"])
        if job is None:
            continue
        promised = promised_window(job, None)
        rows.append(
            {
                "day": day,
                "job_id": u["job_id"],
                "attempt": 1,
                "category": job.category or None,
                "kind": job.kind,
                "priority": job.priority,
                # a job pinned to no office belongs to the day's only office, if there is one
                "depot_id": job.depot_id or (depots[0] if len(depots) == 1 else None),
                "zone_id": job.zone_id,
                "requested_at": requested_moment(job),
                "window_start": local_clock(day, promised[0]),
                "window_end": local_clock(day, promised[1]),
                "outcome": "unassigned",
                "unassigned_reason": u.get("reason"),
                "rain": False,
                "on_time": False,
            }
        )
    return rows


def delivery_frame(session: Session, start: date, end: date) -> pd.DataFrame:
    """Return the jobs and attempts of the published plans from ``start`` to ``end`` (inclusive).

    One row per planned stop and per unassigned job of each day's published plan, with the
    columns of :data:`routing.simulate.MONTH_COLUMNS` (typed by
    :func:`routing.simulate.month_frame`); see the module docstring for how they are filled.
    ``attempt`` is the job's attempt number that day: one more than the attempts the closed
    days before it counted (:mod:`api.days`), so a day the courier never reached does not
    count; a job no closed day knows counts the days its id appears in the range.
    """
    plans = list(
        session.scalars(
            select(PlanRecord)
            .where(PlanRecord.status == "published", PlanRecord.day >= start, PlanRecord.day <= end)
            .order_by(PlanRecord.day)
        )
    )
    day_of = {p.id: p.day for p in plans}
    proofs = _handovers(session, list(day_of))
    rows: list[dict[str, Any]] = []
    if plans:
        stops = session.execute(
            select(StopRecord, RouteRecord.courier_id, RouteRecord.depot_id)
            .join(RouteRecord, RouteRecord.id == StopRecord.route_id)
            .where(StopRecord.plan_id.in_(list(day_of)))
            .order_by(StopRecord.plan_id, RouteRecord.courier_id, StopRecord.seq)
        ).all()
        for stop, courier_id, depot_id in stops:
            rows.append(
                _stop_row(day_of[stop.plan_id], stop, courier_id, depot_id, proofs.get(stop.id))
            )
    for plan in plans:
        rows.extend(_unassigned_rows(plan.day, plan))
    df = month_frame(rows)
    if not df.empty:
        df["attempt"] = (df.groupby("job_id")["day"].rank(method="dense")).astype("Int64")
        _attempts_from_closes(session, df, end)
    return df


def _attempts_from_closes(session: Session, df: pd.DataFrame, end: date) -> None:
    """Set ``attempt`` from the attempts the closed days counted before each row's day."""
    job_ids = sorted(set(df["job_id"]))
    history: dict[str, list[tuple[date, int]]] = {}
    for chunk in range(0, len(job_ids), 500):
        for job_id, day, count in session.execute(
            select(JobOutcome.job_id, JobOutcome.day, JobOutcome.attempts)
            .where(JobOutcome.job_id.in_(job_ids[chunk : chunk + 500]), JobOutcome.day <= end)
            .order_by(JobOutcome.day)
        ):
            history.setdefault(job_id, []).append((day, count))
    if not history:
        return
    attempt = df["attempt"].to_numpy(dtype=object)
    for k, (job_id, day) in enumerate(zip(df["job_id"], df["day"], strict=True)):
        past = history.get(job_id)
        if past is not None:
            before = [count for d, count in past if d < day.date()]
            attempt[k] = (before[-1] if before else 0) + 1
    df["attempt"] = pd.array(attempt, dtype="Int64")


_FRAMES: OrderedDict[tuple[str, date, date], tuple[tuple[Any, ...], pd.DataFrame]] = OrderedDict()
_FRAMES_LOCK = threading.Lock()
#: How many ranges' frames a process keeps (a page view asks for one range five times).
FRAME_CACHE_SIZE = 8


def _fingerprint(session: Session, start: date, end: date) -> tuple[Any, ...]:
    """Return what the range's frame depends on: published plans, their stop events, closes.

    A stop changes only through an event or a newly published version, and attempt numbers
    only when a day closes, so equal fingerprints mean equal frames.
    """
    plans = tuple(
        session.execute(
            select(PlanRecord.id, PlanRecord.revision)
            .where(PlanRecord.status == "published", PlanRecord.day >= start, PlanRecord.day <= end)
            .order_by(PlanRecord.id)
        ).all()
    )
    if not plans:
        return ()
    count, last = session.execute(
        select(func.count(StopEvent.id), func.max(StopEvent.id)).where(
            StopEvent.plan_id.in_([p[0] for p in plans])
        )
    ).one()
    closes = session.execute(
        select(func.count(JobOutcome.id), func.max(JobOutcome.id)).where(JobOutcome.day <= end)
    ).one()
    return (*plans, count, last, *closes)


def cached_frame(session: Session, start: date, end: date) -> pd.DataFrame:
    """Return :func:`delivery_frame`, reused while the range's plans and events are unchanged.

    The frame is shared: callers must not modify it (the functions of :mod:`routing.reports`
    never do).
    """
    key = (str(session_engine(session).url), start, end)
    mark = _fingerprint(session, start, end)
    with _FRAMES_LOCK:
        hit = _FRAMES.get(key)
        if hit is not None and hit[0] == mark:
            _FRAMES.move_to_end(key)
            return hit[1]
    df = delivery_frame(session, start, end)
    with _FRAMES_LOCK:
        _FRAMES[key] = (mark, df)
        _FRAMES.move_to_end(key)
        while len(_FRAMES) > FRAME_CACHE_SIZE:
            _FRAMES.popitem(last=False)
    return df


# -- the report --------------------------------------------------------------------------------


def main_table(df: pd.DataFrame, by: GroupBy) -> pd.DataFrame:
    """Return one row per group: attempts, on-time and completion rates, times and delays.

    :func:`routing.reports.on_time_rate` joined with the medians and 90th percentiles of
    :func:`~routing.reports.request_to_completion_summary` and
    :func:`~routing.reports.arrival_deltas`; the table of the CSV export.
    """
    rates = reports.on_time_rate(df, by=by)
    rates.insert(2, "failed", rates["attempts"] - rates["completed"])
    times = reports.request_to_completion_summary(df, by=by)[["mean_h", "median_h", "p90_h"]]
    delays = reports.arrival_deltas(df, by=by)[["median_min", "p90_min", "late_share"]]
    return rates.join(times, how="left").join(delays, how="left")


def report_tables(df: pd.DataFrame, by: GroupBy) -> dict[str, pd.DataFrame]:
    """Return the report's tables by key, each straight from :mod:`routing.reports`."""
    overall = reports.on_time_rate(df).join(
        reports.request_to_completion_summary(df).drop(columns="completed")
    )
    return {
        "summary": overall,
        "groups": main_table(df, by),
        "request_to_completion": reports.request_to_completion_summary(df, by=by),
        "on_time": reports.on_time_rate(df, by=by),
        "arrival": reports.arrival_deltas(df, by=by),
        "failures": reports.failure_reasons(df, by=by),
        "unassigned": reports.unassigned_reasons(df),
        "couriers": reports.courier_comparison(df),
        "days": reports.daily_summary(df),
        "first_attempt": reports.first_attempt_success(df, by=by),
        "attempt_reasons": reports.attempts_by_reason(df),
        "r2c_by_attempt": reports.request_to_completion_by_attempt(df),
        "handovers": reports.handover_recipients(df, by=by),
    }


#: Sheet names of the workbook, by table key (Vietnamese first, as the notebook's).
SHEETS: dict[str, str] = {
    "summary": "Tổng hợp (summary)",
    "groups": "Theo nhóm (by group)",
    "request_to_completion": "Yêu cầu-hoàn thành (r2c)",
    "on_time": "Đúng hẹn (on time)",
    "arrival": "Giờ đến (arrival)",
    "failures": "Lý do (failures)",
    "unassigned": "Chưa phân công (unassigned)",
    "couriers": "Bưu tá (courier)",
    "days": "Ngày (day)",
    "first_attempt": "Lần đầu (first attempt)",
    "attempt_reasons": "Lý do theo lần (reasons)",
    "r2c_by_attempt": "Yêu cầu-HT theo lần (r2c)",
    "handovers": "Người nhận (recipients)",
}


def histogram(values: pd.Series, edges: tuple[float, ...]) -> dict[str, Any]:
    """Count values per bin ``[edge_i, edge_i+1)``; open ends are ``null`` in JSON."""
    counts, _ = np.histogram(values.to_numpy(dtype=float), bins=np.array(edges, dtype=float))
    return {
        "edges": [None if math.isinf(e) else e for e in edges],
        "counts": [int(c) for c in counts],
        "total": int(counts.sum()),
    }


def _plain(value: Any) -> Any:
    """Return a JSON-ready scalar: NaN/NA → None, timestamps → ISO, numpy → Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None and value == value.normalize():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def table_json(frame: pd.DataFrame) -> dict[str, Any]:
    """Return a table as ``{"columns": [...], "rows": [{column: value}]}`` (index as columns)."""
    plain_index = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
    flat = frame if plain_index else frame.reset_index()
    columns = [str(c) for c in flat.columns]
    rows = [
        {c: _plain(v) for c, v in zip(columns, rec, strict=True)}
        for rec in flat.itertuples(index=False, name=None)
    ]
    return {"columns": columns, "rows": rows}


def headline(df: pd.DataFrame) -> dict[str, Any]:
    """Return the page's headline numbers from the frame."""
    overall = reports.on_time_rate(df).iloc[0]
    times = reports.request_to_completion_summary(df).iloc[0]
    outcome = df["outcome"]
    return {
        "stops": int(outcome.isin(["completed", "failed", "pending"]).sum()),
        "completed": int((outcome == "completed").sum()),
        "failed": int((outcome == "failed").sum()),
        "pending": int((outcome == "pending").sum()),
        "unassigned": int((outcome == "unassigned").sum()),
        "attempts": int(overall["attempts"]),
        "on_time": int(overall["on_time"]),
        "on_time_rate": _plain(overall["on_time_rate"]),
        "median_request_to_completion_h": _plain(times["median_h"]),
    }


@dataclass(frozen=True, slots=True)
class RangeReport:
    """A range's frame and the tables computed from it."""

    start: date
    end: date
    by: GroupBy
    frame: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    days: list[date]


def range_report(session: Session, start: date, end: date, by: GroupBy) -> RangeReport:
    """Build the frame of a date range and every report table of it.

    Raises
    ------
    InvalidRequestError
        If the range is inverted or too long.
    """
    check_range(start, end)
    df = cached_frame(session, start, end)
    days = sorted({d.date() for d in df["day"]}) if not df.empty else []
    return RangeReport(start, end, by, df, report_tables(df, by), days)


def report_json(rep: RangeReport) -> dict[str, Any]:
    """Return the JSON body of a range report."""
    df = rep.frame
    return {
        "start": rep.start,
        "end": rep.end,
        "by": rep.by,
        "days": rep.days,
        "headline": headline(df),
        "tables": {key: table_json(frame) for key, frame in rep.tables.items()},
        "histograms": {
            "request_to_completion_h": histogram(
                reports.request_to_completion_hours(df), R2C_EDGES_H
            ),
            "arrival_delay_min": histogram(reports.arrival_delay_minutes(df), DELAY_EDGES_MIN),
        },
    }


# -- the day report (kept for the dispatcher's pages and older tools) ---------------------------


def _day_summary(part: pd.DataFrame) -> dict[str, Any]:
    att = reports.attempts(part)
    delays = reports.arrival_delay_minutes(att)
    r2c = reports.request_to_completion_hours(part)
    rates = reports.on_time_rate(part).iloc[0]
    completed = int((part["outcome"] == "completed").sum())
    return {
        "stops": len(part),
        "completed": completed,
        "failed": int((part["outcome"] == "failed").sum()),
        "pending": int((part["outcome"] == "pending").sum()),
        "on_time": int(rates["on_time"]),
        "on_time_rate": round(float(rates["on_time_rate"]), 4) if len(att) else None,
        "mean_delay_s": round(float(delays.mean()) * 60) if len(delays) else None,
        "mean_request_to_completion_h": round(float(r2c.mean()), 2) if len(r2c) else None,
    }


def day_report(session: Session, day: date) -> dict[str, Any]:
    """Return the day's report of the published plan, overall, per office and per courier.

    Computed from :func:`delivery_frame` with :mod:`routing.reports` (the on-time rate is over
    attempts, as in the range report); unassigned jobs are not counted as stops.
    """
    plan_id = published_plan_id(session, day)
    df = delivery_frame(session, day, day)
    planned = df[df["outcome"] != "unassigned"]
    return {
        "day": day,
        "plan_id": plan_id,
        "total": _day_summary(planned),
        "by_courier": {
            str(k): _day_summary(v) for k, v in planned.groupby("courier_id", sort=True)
        },
        "by_depot": {str(k): _day_summary(v) for k, v in planned.groupby("depot_id", sort=True)},
    }
