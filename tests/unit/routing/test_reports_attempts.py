"""Reports over attempts: first-attempt success, failures by attempt, handovers by recipient."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest

from routing import reports
from routing.clock import LOCAL_TZ
from routing.reports import MONTH_COLUMNS, month_frame


def at(day: int, hh: int) -> datetime:
    return datetime(2026, 11, day, hh, tzinfo=LOCAL_TZ)


def row(job_id: str, day: int, attempt: int, outcome: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(MONTH_COLUMNS)
    base.update(
        job_id=job_id,
        day=date(2026, 11, day),
        attempt=attempt,
        outcome=outcome,
        kind="delivery",
        category="pension_payout",
        priority=1,
        depot_id="D1",
        courier_id="C1",
        requested_at=at(1, 8),
        window_start=at(day, 7),
        window_end=at(day, 17),
        rain=False,
        on_time=outcome == "completed",
    )
    if outcome == "completed":
        base.update(completed_at=at(day, 10), received_by="citizen")
        base["request_to_completion_h"] = (at(day, 10) - at(1, 8)).total_seconds() / 3600
    base.update(kw)
    return base


@pytest.fixture
def table() -> pd.DataFrame:
    """Job A: done at once (C1). B: nobody_home, then done by an authorised person (C1).

    C: nobody_home twice, then refused (C2, another office D2). D: never planned.
    """
    return month_frame(
        [
            row("A", 2, 1, "completed"),
            row("B", 2, 1, "failed", fail_reason="nobody_home"),
            row("B", 3, 2, "completed", received_by="authorised"),
            row("C", 2, 1, "failed", fail_reason="nobody_home", courier_id="C2", depot_id="D2"),
            row("C", 3, 2, "failed", fail_reason="nobody_home", courier_id="C2", depot_id="D2"),
            row("C", 4, 3, "failed", fail_reason="refused", courier_id="C2", depot_id="D2"),
            row("D", 2, 1, "unassigned", unassigned_reason="no_courier", courier_id=None),
        ]
    )


def test_first_attempt_success_per_office_and_courier(table: pd.DataFrame) -> None:
    """3 first attempts, 1 success; B completed at attempt 2; per office D1 1/2, D2 0/1."""
    overall = reports.first_attempt_success(table).iloc[0]
    assert overall["first_attempts"] == 3
    assert overall["first_attempt_completed"] == 1
    assert overall["first_attempt_success_rate"] == pytest.approx(1 / 3)
    assert overall["completed"] == 2
    assert overall["mean_attempts_to_complete"] == pytest.approx(1.5)
    assert overall["completed_after_retry"] == 1
    by_office = reports.first_attempt_success(table, by="post_office")
    assert by_office.loc["D1", "first_attempt_success_rate"] == pytest.approx(0.5)
    assert by_office.loc["D2", "first_attempt_success_rate"] == 0
    by_courier = reports.first_attempt_success(table, by="courier")
    assert list(by_courier.index) == ["C1", "C2"]


def test_failures_by_reason_and_attempt(table: pd.DataFrame) -> None:
    """nobody_home: 3 failures (2 first, 1 retry) on 2 jobs, 1 of which (B) later completed."""
    out = reports.attempts_by_reason(table).set_index("fail_reason")
    assert out.loc[
        "nobody_home", ["failed", "first", "retries", "jobs", "later_completed"]
    ].tolist() == [3, 2, 1, 2, 1]
    assert out.loc["refused", ["failed", "first", "retries", "later_completed"]].tolist() == [
        1,
        0,
        1,
        0,
    ]
    assert out.loc["nobody_home", "ly_do"] == "Không có người nhận"
    assert reports.attempts_by_reason(table[table["outcome"] != "failed"]).empty


def test_request_to_completion_spans_attempts(table: pd.DataFrame) -> None:
    """B, done at its second attempt on day 3, counts from its first request on day 1 (50 h)."""
    out = reports.request_to_completion_by_attempt(table)
    assert out.loc[1, "median_h"] == pytest.approx(26)
    assert out.loc[2, "median_h"] == pytest.approx(50)


def test_handovers_count_authorised_recipients(table: pd.DataFrame) -> None:
    """Of the 2 handovers, one went to an authorised person."""
    out = reports.handover_recipients(table).iloc[0]
    assert (out["handovers"], out["citizen"], out["authorised"]) == (2, 1, 1)
    assert out["authorised_share"] == pytest.approx(0.5)
