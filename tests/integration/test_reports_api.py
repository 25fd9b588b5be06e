"""Range reports through the API: the same numbers as routing.reports, in JSON, CSV, XLSX and SVG."""

from __future__ import annotations

import csv
import io
import math
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pandas as pd
import pytest

from api.db import make_engine, make_session_factory, session_scope
from api.reports.service import delivery_frame
from routing import reports
from routing.clock import LOCAL_TZ
from routing.model import Problem
from tests.integration.conftest import Stack

GROUPS = ("post_office", "zone", "courier", "day")


def at(day: date, seconds: int) -> str:
    midnight = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(seconds=seconds)).isoformat()


@dataclass
class Posted:
    """What the test's couriers reported, to check the report against by hand."""

    day: date
    completed: dict[str, int] = field(default_factory=dict)  # job id -> arrival, s of the day
    done_at: dict[str, datetime] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # job id -> reason
    courier_of: dict[str, str] = field(default_factory=dict)


def _post(s: Stack, courier: str, body: dict[str, Any]) -> None:
    body = {"idempotency_key": uuid.uuid4().hex, **body}
    r = s.client.post("/rounds/me/events", headers=s.h(courier), json=body)
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def posted(day_stack: Stack, town: Problem) -> Posted:
    """Couriers C01-C06 report their first stops: on time, early, late, and failed with reasons."""
    s, day = day_stack, town.day
    assert day is not None
    out = Posted(day)
    jobs = town.job_by_id()
    # (courier, stop index, what happens)
    script = [
        ("C01", 0, "on_time"),
        ("C01", 1, "late"),
        ("C02", 0, "on_time"),
        ("C02", 1, "nobody_home"),
        ("C03", 0, "early"),
        ("C03", 1, "wrong_address"),
        ("C04", 0, "late"),
        ("C04", 1, "nobody_home"),
        ("C05", 0, "on_time"),
        ("C06", 0, "refused"),
    ]
    rounds = {
        c: s.client.get("/rounds/me", headers=s.h(c), params={"day": day.isoformat()}).json()
        for c in {c for c, _, _ in script}
    }
    for courier, k, what in script:
        stops = rounds[courier]["stops"]
        if k >= len(stops):
            continue
        stop = stops[k]
        job = jobs[stop["job_id"]]
        out.courier_of[job.job_id] = courier
        last_end = max(w.end_s for w in job.windows)
        first_start = min(w.start_s for w in job.windows)
        arrival = {
            "on_time": stop["planned_arrival_s"],
            "early": first_start - 1800,
            "late": last_end + 1800,
        }.get(what, stop["planned_arrival_s"] + 120)
        _post(s, courier, {"device_ts": at(day, arrival), "job_id": job.job_id, "kind": "arrived"})
        done_s = max(arrival, first_start) + 300
        if what in ("on_time", "early", "late"):
            _post(
                s,
                courier,
                {
                    "device_ts": at(day, done_s),
                    "job_id": job.job_id,
                    "kind": "completed",
                    "proof": {
                        "recipient_name": "Nguyễn Thị Hoa",
                        "id_check": "passed",
                        "cash_paid_vnd": job.demand.cash_vnd,
                    },
                },
            )
            out.completed[job.job_id] = arrival
            out.done_at[job.job_id] = datetime.fromisoformat(at(day, done_s))
        else:
            _post(
                s,
                courier,
                {
                    "device_ts": at(day, arrival + 300),
                    "job_id": job.job_id,
                    "kind": "failed",
                    "reason": what,
                },
            )
            out.failed[job.job_id] = what
    return out


def frame_of(s: Stack, start: date, end: date) -> pd.DataFrame:
    """Build the report's frame straight from the database (what the API must have used)."""
    engine = make_engine(s.settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return delivery_frame(session, start, end)
    finally:
        engine.dispose()


def get_report(s: Stack, day: date, by: str, **params: Any) -> Any:
    r = s.client.get(
        "/reports/range",
        headers=s.h("manager"),
        params={
            "start": (day - timedelta(days=2)).isoformat(),
            "end": day.isoformat(),
            "by": by,
            **params,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


def close(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def assert_table_equals(table: dict[str, Any], frame: pd.DataFrame) -> None:
    flat = (
        frame
        if isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
        else frame.reset_index()
    )
    assert table["columns"] == [str(c) for c in flat.columns]
    assert len(table["rows"]) == len(flat)
    for got, (_, want) in zip(table["rows"], flat.iterrows(), strict=True):
        for col in flat.columns:
            w = want[col]
            if isinstance(w, pd.Timestamp):
                w = w.date().isoformat()
            assert close(got[str(col)], None if w is pd.NA else w), (col, got, dict(want))


def test_range_report_counts_what_couriers_reported(
    day_stack: Stack, town: Problem, posted: Posted
) -> None:
    """Failed by reason, on-time count (arrival before a window closes) and median request->done match the events."""
    rep = get_report(day_stack, posted.day, "post_office")
    head = rep["headline"]
    assert rep["days"] == [posted.day.isoformat()]
    assert head["completed"] == len(posted.completed)
    assert head["failed"] == len(posted.failed)
    assert head["attempts"] == len(posted.completed) + len(posted.failed)
    jobs = town.job_by_id()
    on_time = sum(any(t <= w.end_s for w in jobs[j].windows) for j, t in posted.completed.items())
    assert 0 < on_time < len(posted.completed)  # the script has both
    assert head["on_time"] == on_time
    assert math.isclose(head["on_time_rate"], on_time / head["attempts"])
    r2c = [
        (posted.done_at[j] - jobs[j].requested_at).total_seconds() / 3600
        for j in posted.completed
        if jobs[j].requested_at is not None
    ]
    assert math.isclose(head["median_request_to_completion_h"], statistics.median(r2c))
    failures = {r["fail_reason"]: r["count"] for r in rep["tables"]["failures"]["rows"]}
    assert failures == dict(Counter(posted.failed.values()))
    assert rep["histograms"]["request_to_completion_h"]["total"] == len(r2c)
    # every stop the script reached has an arrival (and all of them were finished)
    arrivals = sum(r["arrivals"] for r in rep["tables"]["arrival"]["rows"])
    assert arrivals == len(posted.completed) + len(posted.failed)
    assert rep["histograms"]["arrival_delay_min"]["total"] == arrivals


@pytest.mark.parametrize("by", GROUPS)
def test_range_report_equals_routing_reports_on_the_same_frame(
    day_stack: Stack, posted: Posted, by: str
) -> None:
    """Every table of the JSON equals routing.reports' function on the frame built from the database."""
    rep = get_report(day_stack, posted.day, by)
    df = frame_of(day_stack, posted.day - timedelta(days=2), posted.day)
    assert_table_equals(rep["tables"]["on_time"], reports.on_time_rate(df, by=by))
    assert_table_equals(
        rep["tables"]["request_to_completion"], reports.request_to_completion_summary(df, by=by)
    )
    assert_table_equals(rep["tables"]["arrival"], reports.arrival_deltas(df, by=by))
    assert_table_equals(rep["tables"]["failures"], reports.failure_reasons(df, by=by))
    assert_table_equals(rep["tables"]["couriers"], reports.courier_comparison(df))
    assert_table_equals(rep["tables"]["unassigned"], reports.unassigned_reasons(df))
    # The groups add up to the attempts that have the group key (the town day's jobs carry no zone).
    key = {"post_office": "depot_id", "zone": "zone_id", "courier": "courier_id", "day": "day"}[by]
    att = reports.attempts(df)
    keyed = att[att[key].notna()]
    groups = rep["tables"]["groups"]["rows"]
    assert sum(g["attempts"] for g in groups) == len(keyed)
    assert sum(g["failed"] for g in groups) == int((keyed["outcome"] == "failed").sum())
    if by != "zone":
        assert len(keyed) == rep["headline"]["attempts"]


def test_bad_ranges_are_refused_naming_the_field(day_stack: Stack) -> None:
    """An inverted range, a range over a year, a missing start and an unknown grouping are 422."""
    h = day_stack.h("manager")
    for path in (
        "/reports/range",
        "/reports/range.csv",
        "/reports/range.xlsx",
        "/reports/range.svg",
    ):
        r = day_stack.client.get(
            path, headers=h, params={"start": "2026-03-10", "end": "2026-03-01"}
        )
        assert r.status_code == 422, path
        assert r.json()["errors"][0]["column"] == "end"
    r = day_stack.client.get(
        "/reports/range", headers=h, params={"start": "2025-01-01", "end": "2026-01-02"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "end"
    assert "366" in r.json()["errors"][0]["reason"]
    ok = day_stack.client.get(
        "/reports/range", headers=h, params={"start": "2024-01-01", "end": "2024-12-31"}
    )
    assert ok.status_code == 200  # a leap year is 366 days: allowed
    r = day_stack.client.get("/reports/range", headers=h, params={"end": "2026-01-02"})
    assert r.status_code == 422
    assert "start" in r.json()["errors"][0]["column"]
    r = day_stack.client.get(
        "/reports/range",
        headers=h,
        params={"start": "2026-01-01", "end": "2026-01-02", "by": "planet"},
    )
    assert r.status_code == 422
    assert "by" in r.json()["errors"][0]["column"]


def test_a_range_without_plans_is_empty_not_an_error(day_stack: Stack) -> None:
    """A range with no published plan reports zeros and empty tables, and still draws charts."""
    h = day_stack.h("manager")
    params = {"start": "2020-01-01", "end": "2020-01-31", "by": "zone"}
    rep = day_stack.client.get("/reports/range", headers=h, params=params).json()
    assert rep["headline"]["stops"] == 0
    assert rep["headline"]["on_time_rate"] is None
    assert rep["tables"]["groups"]["rows"] == []
    svg = day_stack.client.get(
        "/reports/range.svg", headers=h, params={**params, "chart": "failures"}
    )
    assert svg.status_code == 200
    assert svg.text.lstrip().startswith("<?xml")


def test_xlsx_sheets_hold_the_json_numbers(day_stack: Stack, posted: Posted) -> None:
    """The workbook opens with openpyxl; its on-time and failure sheets equal the JSON tables."""
    rep = get_report(day_stack, posted.day, "courier")
    r = day_stack.client.get(
        "/reports/range.xlsx",
        headers=day_stack.h("dispatcher"),
        params={"start": rep["start"], "end": rep["end"], "by": "courier"},
    )
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    assert "Đúng hẹn (on time)" in wb.sheetnames
    assert "Dữ liệu (rows)" in wb.sheetnames

    def sheet(name: str) -> list[dict[str, Any]]:
        rows = list(wb[name].iter_rows(values_only=True))
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]

    on_time = sheet("Đúng hẹn (on time)")
    want = rep["tables"]["on_time"]["rows"]
    assert [x["courier_id"] for x in on_time] == [x["courier_id"] for x in want]
    for got, exp in zip(on_time, want, strict=True):
        for col in ("attempts", "completed", "on_time", "on_time_rate"):
            assert close(got[col], exp[col]), col
    fails = sheet("Lý do (failures)")
    assert {(x["courier_id"], x["fail_reason"], x["count"]) for x in fails} == {
        (x["courier_id"], x["fail_reason"], x["count"]) for x in rep["tables"]["failures"]["rows"]
    }
    data = sheet("Dữ liệu (rows)")
    assert sum(x["outcome"] == "failed" for x in data) == rep["headline"]["failed"]


def test_csv_is_the_main_table(day_stack: Stack, posted: Posted) -> None:
    """The CSV parses (UTF-8 with BOM) into the JSON's main table, one row per group."""
    rep = get_report(day_stack, posted.day, "courier")
    r = day_stack.client.get(
        "/reports/range.csv",
        headers=day_stack.h("manager"),
        params={"start": rep["start"], "end": rep["end"], "by": "courier"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    want = rep["tables"]["groups"]
    assert list(rows[0]) == want["columns"]
    assert [x["courier_id"] for x in rows] == [x["courier_id"] for x in want["rows"]]
    for got, exp in zip(rows, want["rows"], strict=True):
        assert int(got["attempts"]) == exp["attempts"]
        assert int(got["failed"]) == exp["failed"]
        assert math.isclose(float(got["on_time_rate"]), exp["on_time_rate"], rel_tol=1e-5)


@pytest.mark.parametrize("chart", ["request_to_completion", "arrival_delay", "on_time", "failures"])
def test_charts_are_svg_in_both_languages(day_stack: Stack, posted: Posted, chart: str) -> None:
    """Each chart is an SVG document; the Vietnamese and English drawings differ (labels)."""
    params = {"start": posted.day.isoformat(), "end": posted.day.isoformat(), "chart": chart}
    h = day_stack.h("manager")
    vi = day_stack.client.get("/reports/range.svg", headers=h, params=params)
    en = day_stack.client.get("/reports/range.svg", headers=h, params={**params, "lang": "en"})
    assert vi.status_code == en.status_code == 200
    assert vi.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in vi.content
    assert vi.content != en.content


def test_day_report_is_the_range_report_of_one_day(day_stack: Stack, posted: Posted) -> None:
    """/reports/day counts the same completed and failed stops as the range report of that day."""
    h = day_stack.h("manager")
    day = posted.day.isoformat()
    one = day_stack.client.get("/reports/day", headers=h, params={"day": day}).json()
    rng = day_stack.client.get(
        "/reports/range", headers=h, params={"start": day, "end": day}
    ).json()
    assert one["total"]["completed"] == rng["headline"]["completed"]
    assert one["total"]["failed"] == rng["headline"]["failed"]
    assert one["total"]["stops"] == rng["headline"]["stops"]
    assert one["total"]["on_time"] == rng["headline"]["on_time"]
    for courier in {posted.courier_of[j] for j in posted.failed}:
        mine = sum(posted.courier_of[j] == courier for j in posted.failed)
        assert one["by_courier"][courier]["failed"] == mine


def test_a_new_event_shows_in_the_next_report(
    day_stack: Stack, town: Problem, posted: Posted
) -> None:
    """Reports reuse a range's frame only while nothing changed: a new failure is counted at once.

    The failure is recorded in ``posted`` too (arrived, then failed, like the script's), so the
    other tests of this module hold whether they run before or after this one.
    """
    h = day_stack.h("manager")
    params = {"start": posted.day.isoformat(), "end": posted.day.isoformat(), "by": "courier"}
    before = day_stack.client.get("/reports/range", headers=h, params=params).json()["headline"]
    again = day_stack.client.get("/reports/range", headers=h, params=params).json()["headline"]
    assert again == before
    rnd = day_stack.client.get(
        "/rounds/me", headers=day_stack.h("C07"), params={"day": posted.day.isoformat()}
    ).json()
    stop = next(st for st in rnd["stops"] if st["status"] == "planned")
    arrival = stop["planned_arrival_s"]
    job_id = stop["job_id"]
    _post(
        day_stack,
        "C07",
        {"device_ts": at(posted.day, arrival), "job_id": job_id, "kind": "arrived"},
    )
    _post(
        day_stack,
        "C07",
        {
            "device_ts": at(posted.day, arrival + 300),
            "job_id": job_id,
            "kind": "failed",
            "reason": "road_closed",
        },
    )
    posted.courier_of[job_id] = "C07"
    posted.failed[job_id] = "road_closed"
    after = day_stack.client.get("/reports/range", headers=h, params=params).json()
    assert after["headline"]["failed"] == before["failed"] + 1
    assert after["headline"]["pending"] == before["pending"] - 1
    assert {"courier_id": "C07", "fail_reason": "road_closed", "count": 1}.items() <= next(
        r for r in after["tables"]["failures"]["rows"] if r["courier_id"] == "C07"
    ).items()
