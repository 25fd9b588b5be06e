"""Delivery-time reports for managers over a table of jobs and attempts (pure functions).

Every function takes a DataFrame with the columns of :data:`MONTH_COLUMNS`
(one row per job and attempt day; the service's event store will produce the same table) and
returns a new DataFrame; nothing is modified in place. The definitions, in one place:

- an **attempt** is a row whose ``outcome`` is ``completed`` or ``failed`` (the courier set
  out for the stop); ``unassigned`` rows were never planned that day;
- **request to completion** is ``completed_at - requested_at`` in hours, over completed rows;
- **on time** means completed with service starting inside one of the job's promised
  windows; the **on-time rate** is on-time attempts over attempts (a failed attempt is not
  on time), the **completion rate** completed attempts over attempts;
- the **arrival delay** is ``actual_arrival - planned_arrival`` in minutes (negative: early),
  over rows where the courier arrived.

Group keys may be given by column name or by the manager's word: ``post_office``
(``depot_id``), ``zone`` (``zone_id``), ``courier`` (``courier_id``), ``day``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from routing.clock import LOCAL_TZ, local_clock
from routing.export import spreadsheet_text
from routing.vocabulary import Recipient, fail_reason_message, reason_message

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from routing.model import Job, Problem
    from routing.simulate import SimulatedDay

logger = logging.getLogger(__name__)

# -- the table of attempts ---------------------------------------------------------------------


def events_frame(sim: SimulatedDay) -> pd.DataFrame:
    """Return the stop events as a DataFrame (one row per event, ``at`` as a local datetime).

    ``id_checked`` is a nullable boolean and ``cash_paid_vnd`` a nullable integer column.
    """
    import pandas as pd

    rows = [
        {
            "day": sim.day,
            "courier_id": e.courier_id,
            "job_id": e.job_id,
            "seq": e.seq,
            "event": e.event,
            "at_s": e.at_s,
            "at": local_clock(sim.day, e.at_s),
            "reason": e.reason,
            "recipient_name": e.recipient_name,
            "id_checked": e.id_checked,
            "cash_paid_vnd": e.cash_paid_vnd,
        }
        for e in sim.events
    ]
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["id_checked"] = frame["id_checked"].astype("boolean")
    frame["cash_paid_vnd"] = frame["cash_paid_vnd"].astype("Int64")
    for col in ("reason", "recipient_name"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


EVENT_COLUMNS: tuple[str, ...] = (
    "day",
    "courier_id",
    "job_id",
    "seq",
    "event",
    "at_s",
    "at",
    "reason",
    "recipient_name",
    "id_checked",
    "cash_paid_vnd",
)

#: Columns of :func:`simulate_month` (one row per job and attempt day).
MONTH_COLUMNS: tuple[str, ...] = (
    "day",
    "job_id",
    "attempt",
    "category",
    "kind",
    "priority",
    "depot_id",
    "zone_id",
    "courier_id",
    "seq",
    "requested_at",
    "window_start",
    "window_end",
    "planned_arrival",
    "planned_start",
    "actual_arrival",
    "service_start",
    "completed_at",
    "finished_at",
    "outcome",
    "fail_reason",
    "unassigned_reason",
    "rain",
    "rough_leg",
    "request_to_completion_h",
    "on_time",
    "recipient_name",
    "id_checked",
    "cash_paid_vnd",
    "received_by",
)
_DATETIME_COLUMNS = (
    "requested_at",
    "window_start",
    "window_end",
    "planned_arrival",
    "planned_start",
    "actual_arrival",
    "service_start",
    "completed_at",
    "finished_at",
)


def requested_moment(job: Job) -> datetime | None:
    """Return when the citizen asked, as an aware moment (a naive time is local)."""
    requested = job.requested_at
    if requested is not None and requested.tzinfo is None:
        requested = requested.replace(tzinfo=LOCAL_TZ)
    return requested


def promised_window(job: Job, planned_start_s: int | None) -> tuple[int, int]:
    """Return the window the plan promised: the one holding the planned start, else the first."""
    if planned_start_s is not None:
        for w in job.windows:
            if w.contains(planned_start_s):
                return w.start_s, w.end_s
    return job.windows[0].start_s, job.windows[0].end_s


def day_rows(
    problem: Problem,
    sim: SimulatedDay,
    *,
    zone_of: dict[str, str | None] | None = None,
    depot_of_zone: dict[str, str] | None = None,
    attempts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Return one :data:`MONTH_COLUMNS` row per job of the day (attempted or unassigned).

    Parameters
    ----------
    problem
        The day's problem (``problem.day`` must be set for datetimes).
    sim
        Its simulation.
    zone_of
        Zone id per job id.
    depot_of_zone
        Post office of each zone, for jobs no courier took.
    attempts
        Attempt number per job id (1 when missing).

    Returns
    -------
    list of dict
    """
    zone_of = zone_of or {}
    depot_of_zone = depot_of_zone or {}
    attempts = attempts or {}
    day = problem.day
    outcome_of = {o.job_id: o for o in sim.outcomes}
    unassigned_of = {u.job_id: u for u in sim.unassigned}
    rows: list[dict[str, Any]] = []
    for job in problem.jobs:
        o = outcome_of.get(job.job_id)
        u = unassigned_of.get(job.job_id)
        zone = zone_of.get(job.job_id, job.zone_id)
        w0, w1 = promised_window(job, o.planned_start_s if o else None)
        completed_at = local_clock(day, o.finished_s) if o and o.outcome == "completed" else None
        requested = requested_moment(job)
        r2c = (
            (completed_at - requested).total_seconds() / 3600
            if completed_at is not None and requested is not None
            else None
        )
        rows.append(
            {
                "day": day,
                "job_id": job.job_id,
                "attempt": attempts.get(job.job_id, 1),
                "category": job.category,
                "kind": job.kind,
                "priority": job.priority,
                "depot_id": o.depot_id
                if o
                else (job.depot_id or depot_of_zone.get(zone or "", None)),
                "zone_id": zone,
                "courier_id": o.courier_id if o else None,
                "seq": o.seq if o else None,
                "requested_at": requested,
                "window_start": local_clock(day, w0),
                "window_end": local_clock(day, w1),
                "planned_arrival": local_clock(day, o.planned_arrival_s) if o else None,
                "planned_start": local_clock(day, o.planned_start_s) if o else None,
                "actual_arrival": local_clock(day, o.arrived_s) if o else None,
                "service_start": local_clock(day, o.service_start_s) if o else None,
                "completed_at": completed_at,
                "finished_at": local_clock(day, o.finished_s) if o else None,
                "outcome": o.outcome if o else "unassigned",
                "fail_reason": o.fail_reason if o else None,
                "unassigned_reason": u.reason if u else None,
                "rain": sim.rain,
                "rough_leg": o.rough_leg if o else None,
                "request_to_completion_h": r2c,
                "on_time": bool(o.on_time) if o else False,
                "recipient_name": o.recipient_name if o else None,
                "id_checked": o.id_checked if o else None,
                "cash_paid_vnd": o.cash_paid_vnd if o else None,
                "received_by": Recipient.CITIZEN
                if o and o.outcome == "completed" and job.kind == "delivery"
                else None,
            }
        )
    return rows


def month_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return rows of :data:`MONTH_COLUMNS` as a typed DataFrame.

    ``day`` becomes a naive date (``datetime64``), the moments tz-aware local datetimes,
    ``id_checked`` / ``rough_leg`` nullable booleans, ``cash_paid_vnd`` / ``seq`` nullable
    integers.
    """
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(MONTH_COLUMNS))
    return _normalise(df)


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    df = df.copy()
    df["day"] = pd.to_datetime(df["day"]).dt.normalize().astype("datetime64[us]")
    for col in _DATETIME_COLUMNS:
        moments = pd.to_datetime(df[col], utc=True, format="ISO8601")
        df[col] = moments.dt.tz_convert(str(LOCAL_TZ)).dt.as_unit("us")
    for col in ("id_checked", "rough_leg"):
        df[col] = df[col].astype("boolean")
    for col in ("rain", "on_time"):
        df[col] = df[col].astype(bool)
    for col in ("cash_paid_vnd", "seq", "attempt", "priority"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    df["request_to_completion_h"] = pd.to_numeric(df["request_to_completion_h"]).astype(float)
    for col in (
        "job_id",
        "category",
        "kind",
        "depot_id",
        "zone_id",
        "courier_id",
        "outcome",
        "fail_reason",
        "unassigned_reason",
        "recipient_name",
        "received_by",
    ):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def save_frame(df: pd.DataFrame, path: Path | str) -> Path:
    """Save a month frame as Parquet (``.parquet``, needs pyarrow) or CSV (anything else)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    return out


def load_frame(path: Path | str) -> pd.DataFrame:
    """Load a month frame saved by :func:`save_frame`, with its column types restored."""
    import pandas as pd

    src = Path(path)
    if src.suffix == ".parquet":
        df = pd.read_parquet(src)
    else:
        df = pd.read_csv(src, keep_default_na=True)
    if "received_by" not in df.columns:  # saved before handovers recorded who received them
        df["received_by"] = None
    return _normalise(df[list(MONTH_COLUMNS)])


# -- the figures managers read -----------------------------------------------------------------

#: Manager-facing names of the group keys.
GROUP_COLUMNS: dict[str, str] = {
    "post_office": "depot_id",
    "zone": "zone_id",
    "courier": "courier_id",
    "day": "day",
}
ATTEMPT_OUTCOMES: frozenset[str] = frozenset({"completed", "failed"})
#: Arrivals later than this many minutes after the plan count as late in :func:`arrival_deltas`.
LATE_ARRIVAL_MIN = 15.0

By = str | Sequence[str] | None


def _columns(by: By) -> list[str]:
    if by is None:
        return []
    names = [by] if isinstance(by, str) else list(by)
    return [GROUP_COLUMNS.get(name, name) for name in names]


def _grouped(
    df: pd.DataFrame, by: By, summarise: Callable[[pd.DataFrame], dict[str, float]]
) -> pd.DataFrame:
    """Apply ``summarise`` to the whole frame (index ``all``) or to each group of ``by``."""
    cols = _columns(by)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        msg = f"unknown group column(s) {missing}; have {list(df.columns)}"
        raise KeyError(msg)
    if not cols:
        return pd.DataFrame([summarise(df)], index=pd.Index(["all"], name="scope"))
    rows = []
    keys: list[tuple[Any, ...]] = []
    for key, part in df.groupby(cols, sort=True, dropna=True):
        keys.append(tuple(key) if isinstance(key, tuple) else (key,))
        rows.append(summarise(part))
    if not rows:  # no group (no rows, or every key missing): empty, with the summary's columns
        names = list(summarise(df.iloc[:0]))
        if len(cols) > 1:
            return pd.DataFrame(columns=names, index=pd.MultiIndex.from_tuples([], names=cols))
        return pd.DataFrame(columns=names, index=pd.Index([], name=cols[0]))
    index = (
        pd.MultiIndex.from_tuples(keys, names=cols)
        if len(cols) > 1
        else pd.Index([k[0] for k in keys], name=cols[0])
    )
    return pd.DataFrame(rows, index=index)


def attempts(df: pd.DataFrame) -> pd.DataFrame:
    """Return the rows the courier set out for (``outcome`` completed or failed)."""
    return df[df["outcome"].isin(ATTEMPT_OUTCOMES)]


def request_to_completion_hours(df: pd.DataFrame) -> pd.Series:
    """Return request-to-completion times (hours) of the completed rows, NaN-free."""
    done = df[df["outcome"] == "completed"]
    return done["request_to_completion_h"].dropna().astype(float)


def request_to_completion_summary(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Summarise request-to-completion times, overall or per group.

    Parameters
    ----------
    df
        Jobs and attempts (:data:`MONTH_COLUMNS`).
    by
        Group key(s), e.g. ``"post_office"`` or ``["zone", "category"]``; overall when None.

    Returns
    -------
    pandas.DataFrame
        Columns ``completed``, ``mean_h``, ``median_h``, ``p90_h``, ``max_h`` and
        ``within_24h`` / ``within_48h`` (shares of completions); NaN for a group without
        completions.
    """

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        hours = request_to_completion_hours(part)
        if hours.empty:
            nan = float("nan")
            return {
                "completed": 0,
                "mean_h": nan,
                "median_h": nan,
                "p90_h": nan,
                "max_h": nan,
                "within_24h": nan,
                "within_48h": nan,
            }
        return {
            "completed": len(hours),
            "mean_h": float(hours.mean()),
            "median_h": float(hours.median()),
            "p90_h": float(hours.quantile(0.9)),
            "max_h": float(hours.max()),
            "within_24h": float((hours <= 24).mean()),
            "within_48h": float((hours <= 48).mean()),
        }

    out = _grouped(df, by, summarise)
    out["completed"] = out["completed"].astype(int)
    return out


def on_time_rate(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Return on-time and completion rates of attempts, overall or per group.

    Parameters
    ----------
    df
        Jobs and attempts.
    by
        Group key(s): ``post_office``, ``zone``, ``courier``, ``day`` or any column.

    Returns
    -------
    pandas.DataFrame
        Columns ``attempts``, ``completed``, ``on_time``, ``on_time_rate``,
        ``completion_rate``; rows sorted by the group key. Groups without attempts are left
        out.
    """

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n = len(part)
        completed = int((part["outcome"] == "completed").sum())
        on_time = int(part["on_time"].astype(bool).sum())
        return {
            "attempts": n,
            "completed": completed,
            "on_time": on_time,
            "on_time_rate": on_time / n if n else float("nan"),
            "completion_rate": completed / n if n else float("nan"),
        }

    out = _grouped(attempts(df), by, summarise)
    for col in ("attempts", "completed", "on_time"):
        out[col] = out[col].astype(int)
    return out


def arrival_delay_minutes(df: pd.DataFrame) -> pd.Series:
    """Return actual minus planned arrival in minutes, over rows where the courier arrived."""
    arrived = df.dropna(subset=["actual_arrival", "planned_arrival"])
    delta = arrived["actual_arrival"] - arrived["planned_arrival"]
    return (delta.dt.total_seconds() / 60.0).astype(float)


def arrival_deltas(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Summarise planned vs actual arrival, overall or per group.

    Parameters
    ----------
    df
        Jobs and attempts.
    by
        Group key(s).

    Returns
    -------
    pandas.DataFrame
        Columns ``arrivals``, ``mean_min``, ``median_min``, ``p10_min``, ``p90_min`` (delay
        in minutes, negative when early) and ``late_share`` (share more than
        :data:`LATE_ARRIVAL_MIN` minutes late).
    """

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        delay = arrival_delay_minutes(part)
        if delay.empty:
            nan = float("nan")
            return {
                "arrivals": 0,
                "mean_min": nan,
                "median_min": nan,
                "p10_min": nan,
                "p90_min": nan,
                "late_share": nan,
            }
        return {
            "arrivals": len(delay),
            "mean_min": float(delay.mean()),
            "median_min": float(delay.median()),
            "p10_min": float(delay.quantile(0.1)),
            "p90_min": float(delay.quantile(0.9)),
            "late_share": float((delay > LATE_ARRIVAL_MIN).mean()),
        }

    out = _grouped(df, by, summarise)
    out["arrivals"] = out["arrivals"].astype(int)
    return out


def failure_reasons(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Count failed attempts per reason, with Vietnamese and English labels.

    Parameters
    ----------
    df
        Jobs and attempts.
    by
        Extra group key(s) before the reason (e.g. ``"post_office"``).

    Returns
    -------
    pandas.DataFrame
        Columns (the group keys,) ``fail_reason``, ``ly_do`` (Vietnamese), ``reason_en``,
        ``count`` and ``share`` (of the failed attempts of the group), most frequent first.
    """
    cols = _columns(by)
    failed = df[df["outcome"] == "failed"]
    if failed.empty:
        return pd.DataFrame(columns=[*cols, "fail_reason", "ly_do", "reason_en", "count", "share"])
    counts = failed.groupby([*cols, "fail_reason"], sort=True).size().rename("count").reset_index()
    if cols:
        totals = counts.groupby(cols)["count"].transform("sum")
    else:
        totals = pd.Series(counts["count"].sum(), index=counts.index)
    counts["share"] = counts["count"] / totals
    counts["ly_do"] = counts["fail_reason"].map(lambda r: fail_reason_message(r, lang="vi"))
    counts["reason_en"] = counts["fail_reason"].map(lambda r: fail_reason_message(r, lang="en"))
    counts = counts.sort_values(
        [*cols, "count", "fail_reason"], ascending=[*[True] * len(cols), False, True]
    )
    return counts[[*cols, "fail_reason", "ly_do", "reason_en", "count", "share"]].reset_index(
        drop=True
    )


def unassigned_reasons(df: pd.DataFrame) -> pd.DataFrame:
    """Count rows left unplanned per reason code, with Vietnamese and English messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``unassigned_reason``, ``ly_do``, ``reason_en``, ``count``, most frequent
        first.
    """
    left = df[df["outcome"] == "unassigned"]
    counts = left.groupby("unassigned_reason").size().rename("count").reset_index()
    counts["ly_do"] = counts["unassigned_reason"].map(lambda r: reason_message(r, lang="vi"))
    counts["reason_en"] = counts["unassigned_reason"].map(lambda r: reason_message(r, lang="en"))
    counts = counts.sort_values(["count", "unassigned_reason"], ascending=[False, True])
    return counts[["unassigned_reason", "ly_do", "reason_en", "count"]].reset_index(drop=True)


def first_attempt_success(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Return first-attempt success and attempts to completion, overall or per group.

    A job's first attempt is its attempt row with ``attempt`` 1; jobs whose first attempt lies
    before the frame's range are not counted there, but their later completions are.

    Returns
    -------
    pandas.DataFrame
        Columns ``first_attempts``, ``first_attempt_completed``, ``first_attempt_success_rate``,
        ``completed`` (completions at any attempt), ``mean_attempts_to_complete`` and
        ``completed_after_retry`` (completions at attempt 2 or later).
    """

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        first = part[part["attempt"] == 1]
        done = part[part["outcome"] == "completed"]
        n_first = len(first)
        first_done = int((first["outcome"] == "completed").sum())
        return {
            "first_attempts": n_first,
            "first_attempt_completed": first_done,
            "first_attempt_success_rate": first_done / n_first if n_first else float("nan"),
            "completed": len(done),
            "mean_attempts_to_complete": float(done["attempt"].astype(float).mean())
            if len(done)
            else float("nan"),
            "completed_after_retry": int((done["attempt"] > 1).sum()),
        }

    out = _grouped(attempts(df), by, summarise)
    for col in ("first_attempts", "first_attempt_completed", "completed", "completed_after_retry"):
        out[col] = out[col].astype(int)
    return out


def attempts_by_reason(df: pd.DataFrame) -> pd.DataFrame:
    """Count failed attempts per reason and attempt number, and how many jobs later succeeded.

    Returns
    -------
    pandas.DataFrame
        Columns ``fail_reason``, ``ly_do``, ``reason_en``, ``failed`` (attempts), ``first``
        (at attempt 1), ``retries`` (at attempt 2 or later), ``jobs`` (distinct jobs) and
        ``later_completed`` (of those jobs, how many were completed at a later attempt in
        the frame); most frequent first.
    """
    cols = ["fail_reason", "ly_do", "reason_en", "failed", "first", "retries", "jobs"]
    failed = df[df["outcome"] == "failed"]
    if failed.empty:
        return pd.DataFrame(columns=[*cols, "later_completed"])
    done_at = df[df["outcome"] == "completed"].groupby("job_id")["attempt"].max()
    rows = []
    for reason, part in failed.groupby("fail_reason", sort=True):
        last_fail = part.groupby("job_id")["attempt"].max()
        later = done_at.reindex(last_fail.index)
        rows.append(
            {
                "fail_reason": reason,
                "ly_do": fail_reason_message(str(reason), lang="vi"),
                "reason_en": fail_reason_message(str(reason), lang="en"),
                "failed": len(part),
                "first": int((part["attempt"] == 1).sum()),
                "retries": int((part["attempt"] > 1).sum()),
                "jobs": int(part["job_id"].nunique()),
                "later_completed": int((later > last_fail).sum()),
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["failed", "fail_reason"], ascending=[False, True]).reset_index(
        drop=True
    )


def request_to_completion_by_attempt(df: pd.DataFrame) -> pd.DataFrame:
    """Summarise request-to-completion times by the attempt that completed the job.

    The request time is the citizen's first (it stays with a job carried to later days), so
    a job completed at its third attempt counts the days in between.
    """
    return request_to_completion_summary(df, by="attempt")


def handover_recipients(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Count completed handovers by who received them: the citizen or an authorised person.

    Returns
    -------
    pandas.DataFrame
        Columns ``handovers``, ``citizen``, ``authorised`` and ``authorised_share``.
    """

    def summarise(part: pd.DataFrame) -> dict[str, float]:
        n = len(part)
        authorised = int((part["received_by"] == Recipient.AUTHORISED).sum())
        return {
            "handovers": n,
            "citizen": int((part["received_by"] == Recipient.CITIZEN).sum()),
            "authorised": authorised,
            "authorised_share": authorised / n if n else float("nan"),
        }

    done = df[(df["outcome"] == "completed") & df["received_by"].notna()]
    out = _grouped(done, by, summarise)
    for col in ("handovers", "citizen", "authorised"):
        out[col] = out[col].astype(int)
    return out


def courier_comparison(df: pd.DataFrame) -> pd.DataFrame:
    """Compare couriers: workload, completion, punctuality and delays.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``courier_id``: ``depot_id``, ``days`` worked, ``attempts``,
        ``stops_per_day``, ``completion_rate``, ``on_time_rate``, ``median_delay_min``,
        ``p90_delay_min``, ``failed``; sorted by post office then courier.
    """
    att = attempts(df)
    rates = on_time_rate(att, by="courier")
    delays = arrival_deltas(att, by="courier")
    days = att.groupby("courier_id")["day"].nunique()
    depot = att.groupby("courier_id")["depot_id"].agg(_most_common)
    out = pd.DataFrame(
        {
            "depot_id": depot,
            "days": days.astype(int),
            "attempts": rates["attempts"],
            "stops_per_day": rates["attempts"] / days,
            "completion_rate": rates["completion_rate"],
            "on_time_rate": rates["on_time_rate"],
            "median_delay_min": delays["median_min"],
            "p90_delay_min": delays["p90_min"],
            "failed": rates["attempts"] - rates["completed"],
        }
    )
    out.index.name = "courier_id"
    return out.reset_index().sort_values(["depot_id", "courier_id"]).set_index("courier_id")


def daily_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Return one row per day: jobs, attempts, completion and on-time rates, rain, delays."""
    rates = on_time_rate(df, by="day")
    times = request_to_completion_summary(df, by="day")
    delays = arrival_deltas(df, by="day")
    jobs = df.groupby("day").size()
    rain = df.groupby("day")["rain"].any()
    out = pd.DataFrame(
        {
            "jobs": jobs,
            "attempts": rates["attempts"],
            "completion_rate": rates["completion_rate"],
            "on_time_rate": rates["on_time_rate"],
            "median_r2c_h": times["median_h"],
            "median_delay_min": delays["median_min"],
            "rain": rain,
        }
    )
    out["attempts"] = out["attempts"].fillna(0).astype(int)
    return out


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(name: str, taken: set[str]) -> str:
    """Return a valid, unique Excel sheet name.

    At most 31 characters, without brackets, colons, ``*?/`` or backslashes.
    """
    base = _SHEET_BAD.sub("_", name).strip("'") or "Sheet"
    base = base[:31]
    candidate, k = base, 1
    while candidate.lower() in taken:
        k += 1
        suffix = f" ({k})"
        candidate = base[: 31 - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def _is_text(dtype: Any) -> bool:
    return pd.api.types.is_object_dtype(dtype) or isinstance(
        dtype, pd.StringDtype | pd.CategoricalDtype
    )


def _text_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        labels: pd.Index = pd.MultiIndex.from_tuples(
            [tuple(spreadsheet_text(v) for v in key) for key in index], names=index.names
        )
        return labels
    if _is_text(index.dtype):
        text: pd.Index = pd.Index(
            [spreadsheet_text(v) for v in index], dtype=object, name=index.name
        )
        return text
    return index


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells and labels follow :func:`spreadsheet_text`.

    Text columns, the index and the column labels go through the export rule (a leading
    apostrophe on what a spreadsheet would run as a formula); numeric columns are left alone,
    so negative amounts stay numbers.
    """
    out = frame.copy()
    for i, dtype in enumerate(out.dtypes):
        if _is_text(dtype):
            out.isetitem(i, out.iloc[:, i].astype(object).map(spreadsheet_text).to_numpy())
    out.index = _text_labels(out.index)
    out.columns = _text_labels(out.columns)
    return out


def export_csv(frame: pd.DataFrame) -> str:
    """Return a table as CSV text for spreadsheets: columns only (no index), text quoted safely.

    Text cells follow :func:`spreadsheet_text`; numbers are written with 6 significant digits.
    Lines end in CRLF (RFC 4180), so a carriage return inside a value is quoted, not a new row.
    """
    return str(
        spreadsheet_frame(frame).to_csv(index=False, float_format="%.6g", lineterminator="\r\n")
    )


def _excel_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy Excel can store: tz-aware datetimes as local naive ones, text as text."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_localize(None)
    if isinstance(out.index, pd.DatetimeIndex) and out.index.tz is not None:
        out.index = out.index.tz_localize(None)
    return spreadsheet_frame(out)


def export_xlsx(frames: Mapping[str, pd.DataFrame], path: Path | str) -> Path:
    """Write each table to its own sheet of one Excel workbook.

    Sheet names are the mapping's keys, made valid (at most 31 characters, without
    brackets, colons, ``*?/`` or backslashes) and unique. Time-zone-aware datetimes are written as local times (Excel has no time zones);
    the index is written when it carries information (named or not a plain range).

    Parameters
    ----------
    frames
        Sheet name -> table, in sheet order.
    path
        The ``.xlsx`` file to write (parent folders are created).

    Returns
    -------
    Path
        The written file.
    """
    if not frames:
        msg = "export_xlsx needs at least one table"
        raise ValueError(msg)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in frames.items():
            plain_index = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
            _excel_ready(frame).to_excel(
                writer, sheet_name=_sheet_name(name, taken), index=not plain_index
            )
    logger.info("wrote %d sheets to %s", len(frames), out)
    return out


def manager_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return the standard set of manager tables, ready for :func:`export_xlsx`."""
    return {
        "Tổng hợp (summary)": on_time_rate(df).join(
            request_to_completion_summary(df).drop(columns="completed")
        ),
        "Bưu cục (post office)": on_time_rate(df, by="post_office").join(
            request_to_completion_summary(df, by="post_office")[["median_h", "p90_h"]]
        ),
        "Vùng (zone)": on_time_rate(df, by="zone"),
        "Bưu tá (courier)": courier_comparison(df),
        "Ngày (day)": daily_summary(df),
        "Giờ đến (arrival)": arrival_deltas(df, by="post_office"),
        "Lý do (failures)": failure_reasons(df),
        "Chưa phân công (unassigned)": unassigned_reasons(df),
    }


def _most_common(values: pd.Series) -> Any:
    """Return the most frequent value of a column (the first one on ties)."""
    return values.mode().iat[0]
