"""Manager reports, checked by hand on a six-row table whose every figure is worked out below."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import openpyxl
import pandas as pd
import pytest

from routing import reports
from routing.clock import LOCAL_TZ
from routing.reports import MONTH_COLUMNS, month_frame

if TYPE_CHECKING:
    from pathlib import Path


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=LOCAL_TZ)


def row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(MONTH_COLUMNS)
    base.update(
        day=date(2026, 11, 2),
        attempt=1,
        category="ems_delivery",
        kind="delivery",
        priority=1,
        window_start=at(2, 7, 30),
        window_end=at(2, 17),
        rain=False,
        on_time=False,
    )
    base.update(kw)
    return base


@pytest.fixture
def table() -> pd.DataFrame:
    """Six jobs at two post offices.

    ======  ======  ====  =======  =========  ===============  =========  ================
    job     office  zone  courier  outcome    request->done h  delay min  note
    ======  ======  ====  =======  =========  ===============  =========  ================
    A       D1      Z1    C1       completed  26               +5         on time
    B       D1      Z1    C1       completed  28               +40        late
    C       D1      Z2    C2       failed     -                +10        nobody_home
    D       D2      Z3    C3       completed  48               -10        on time, day 3
    E       D2      Z3    C3       failed     -                -          road_closed
    F       D2      Z3    -        unassigned -                -          dropped
    ======  ======  ====  =======  =========  ===============  =========  ================
    """
    rows = [
        row(
            job_id="A",
            depot_id="D1",
            zone_id="Z1",
            courier_id="C1",
            seq=1,
            requested_at=at(1, 8),
            planned_arrival=at(2, 9, 50),
            actual_arrival=at(2, 9, 55),
            completed_at=at(2, 10),
            finished_at=at(2, 10),
            outcome="completed",
            request_to_completion_h=26.0,
            on_time=True,
            recipient_name="A Nhông",
        ),
        row(
            job_id="B",
            depot_id="D1",
            zone_id="Z1",
            courier_id="C1",
            seq=2,
            requested_at=at(1, 10),
            planned_arrival=at(2, 13),
            actual_arrival=at(2, 13, 40),
            completed_at=at(2, 14),
            finished_at=at(2, 14),
            outcome="completed",
            request_to_completion_h=28.0,
            recipient_name="Y Blông",
        ),
        row(
            job_id="C",
            depot_id="D1",
            zone_id="Z2",
            courier_id="C2",
            seq=1,
            requested_at=at(1, 9),
            planned_arrival=at(2, 9),
            actual_arrival=at(2, 9, 10),
            finished_at=at(2, 9, 12),
            outcome="failed",
            fail_reason="nobody_home",
        ),
        row(
            job_id="D",
            day=date(2026, 11, 3),
            depot_id="D2",
            zone_id="Z3",
            courier_id="C3",
            seq=1,
            requested_at=at(1, 12),
            planned_arrival=at(3, 11),
            actual_arrival=at(3, 10, 50),
            completed_at=at(3, 12),
            finished_at=at(3, 12),
            outcome="completed",
            request_to_completion_h=48.0,
            on_time=True,
            rain=True,
            recipient_name="Rơ Mah H'Linh",
            category="pension_payout",
            cash_paid_vnd=2_000_000,
            id_checked=True,
        ),
        row(
            job_id="E",
            day=date(2026, 11, 3),
            depot_id="D2",
            zone_id="Z3",
            courier_id="C3",
            seq=2,
            requested_at=at(2, 8),
            planned_arrival=at(3, 14),
            finished_at=at(3, 15),
            outcome="failed",
            fail_reason="road_closed",
            rain=True,
        ),
        row(
            job_id="F",
            day=date(2026, 11, 3),
            depot_id="D2",
            zone_id="Z3",
            requested_at=at(2, 9),
            outcome="unassigned",
            unassigned_reason="dropped_low_priority",
            rain=True,
        ),
    ]
    return month_frame(rows)


def test_request_to_completion_summary_matches_hand_figures(table: pd.DataFrame) -> None:
    """Completed times 26, 28, 48 h: median 28, mean 34, p90 44 (linear), max 48."""
    out = reports.request_to_completion_summary(table)
    first = out.loc["all"]
    assert first["completed"] == 3
    assert first["median_h"] == pytest.approx(28.0)
    assert first["mean_h"] == pytest.approx(34.0)
    assert first["p90_h"] == pytest.approx(44.0)
    assert first["max_h"] == pytest.approx(48.0)
    assert first["within_24h"] == pytest.approx(0.0)
    assert first["within_48h"] == pytest.approx(1.0)


def test_request_to_completion_by_post_office(table: pd.DataFrame) -> None:
    """D1 completed 26 and 28 h (median 27), D2 completed 48 h."""
    out = reports.request_to_completion_summary(table, by="post_office")
    assert list(out.index) == ["D1", "D2"]
    assert out.loc["D1", "median_h"] == pytest.approx(27.0)
    assert out.loc["D2", "completed"] == 1
    assert out.loc["D2", "median_h"] == pytest.approx(48.0)


def test_on_time_rate_counts_attempts_only(table: pd.DataFrame) -> None:
    """Five attempts (F was never planned): 3 completed, 2 on time."""
    out = reports.on_time_rate(table).loc["all"]
    assert (out["attempts"], out["completed"], out["on_time"]) == (5, 3, 2)
    assert out["on_time_rate"] == pytest.approx(0.4)
    assert out["completion_rate"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("post_office", {"D1": (3, 2, 1), "D2": (2, 1, 1)}),
        ("zone", {"Z1": (2, 2, 1), "Z2": (1, 0, 0), "Z3": (2, 1, 1)}),
        ("courier", {"C1": (2, 2, 1), "C2": (1, 0, 0), "C3": (2, 1, 1)}),
    ],
)
def test_on_time_rate_by_group(
    table: pd.DataFrame, by: str, expected: dict[str, tuple[int, int, int]]
) -> None:
    """Per group: (attempts, completed, on time) as counted by hand; rate = on time / attempts."""
    out = reports.on_time_rate(table, by=by)
    assert {
        k: tuple(map(int, v)) for k, v in out[["attempts", "completed", "on_time"]].iterrows()
    } == expected
    for key, (n, _, ok) in expected.items():
        assert out.loc[key, "on_time_rate"] == pytest.approx(ok / n)


def test_group_names_and_columns_are_interchangeable(table: pd.DataFrame) -> None:
    """``post_office`` is ``depot_id``, ``day`` is ``day``; unknown columns raise KeyError."""
    pd.testing.assert_frame_equal(
        reports.on_time_rate(table, by="post_office"), reports.on_time_rate(table, by="depot_id")
    )
    by_day = reports.on_time_rate(table, by="day")
    assert list(by_day["attempts"]) == [3, 2]
    with pytest.raises(KeyError):
        reports.on_time_rate(table, by="weather")


def test_arrival_deltas_match_hand_figures(table: pd.DataFrame) -> None:
    """Delays +5, +40, +10, -10 min (E never arrived): median 7.5, mean 11.25, 1 of 4 late."""
    delays = sorted(reports.arrival_delay_minutes(table).tolist())
    assert delays == pytest.approx([-10.0, 5.0, 10.0, 40.0])
    out = reports.arrival_deltas(table).loc["all"]
    assert out["arrivals"] == 4
    assert out["median_min"] == pytest.approx(7.5)
    assert out["mean_min"] == pytest.approx(11.25)
    assert out["late_share"] == pytest.approx(0.25)
    by_office = reports.arrival_deltas(table, by="post_office")
    assert by_office.loc["D2", "arrivals"] == 1
    assert by_office.loc["D2", "median_min"] == pytest.approx(-10.0)


def test_failure_reasons_counts_and_labels(table: pd.DataFrame) -> None:
    """One nobody_home and one road_closed, half each, with Vietnamese labels."""
    out = reports.failure_reasons(table)
    assert dict(zip(out["fail_reason"], out["count"], strict=True)) == {
        "nobody_home": 1,
        "road_closed": 1,
    }
    assert out["share"].sum() == pytest.approx(1.0)
    labels = dict(zip(out["fail_reason"], out["ly_do"], strict=True))
    assert labels["nobody_home"] == "Không có người nhận"
    assert labels["road_closed"] == "Đường bị chia cắt"
    by_office = reports.failure_reasons(table, by="post_office")
    assert set(zip(by_office["depot_id"], by_office["fail_reason"], strict=True)) == {
        ("D1", "nobody_home"),
        ("D2", "road_closed"),
    }
    assert (by_office["share"] == 1.0).all()


def test_failure_reasons_of_a_table_without_failures_is_empty(table: pd.DataFrame) -> None:
    """No failed row gives an empty table with the usual columns."""
    out = reports.failure_reasons(table[table["outcome"] != "failed"])
    assert out.empty
    assert {"fail_reason", "ly_do", "count", "share"} <= set(out.columns)


def test_unassigned_reasons(table: pd.DataFrame) -> None:
    """F is the one job left unplanned, for lack of courier time."""
    out = reports.unassigned_reasons(table)
    assert out.to_dict("records")[0]["unassigned_reason"] == "dropped_low_priority"
    assert list(out["count"]) == [1]
    assert out["ly_do"].iloc[0].startswith("Không đủ thời gian")


def test_courier_comparison(table: pd.DataFrame) -> None:
    """C1: 2 attempts on 1 day, all completed, half on time; C2 failed its only stop."""
    out = reports.courier_comparison(table)
    assert list(out.index) == ["C1", "C2", "C3"]
    c1 = out.loc["C1"]
    assert (c1["depot_id"], c1["days"], c1["attempts"], c1["failed"]) == ("D1", 1, 2, 0)
    assert c1["stops_per_day"] == pytest.approx(2.0)
    assert c1["completion_rate"] == pytest.approx(1.0)
    assert c1["on_time_rate"] == pytest.approx(0.5)
    assert c1["median_delay_min"] == pytest.approx(22.5)
    assert out.loc["C2", "completion_rate"] == pytest.approx(0.0)
    assert out.loc["C3", "failed"] == 1


def test_daily_summary(table: pd.DataFrame) -> None:
    """Two days: 3 jobs each; 2 November dry with 3 attempts, 3 November rainy with 2."""
    out = reports.daily_summary(table)
    assert list(out["jobs"]) == [3, 3]
    assert list(out["attempts"]) == [3, 2]
    assert list(out["rain"]) == [False, True]
    assert out["completion_rate"].iloc[1] == pytest.approx(0.5)


def test_reports_do_not_modify_their_input(table: pd.DataFrame) -> None:
    """Every report leaves the input table as it was."""
    before = table.copy()
    reports.manager_tables(table)
    pd.testing.assert_frame_equal(table, before)


def test_export_xlsx_writes_one_sheet_per_table(table: pd.DataFrame, tmp_path: Path) -> None:
    """Sheets in order with valid unique names; local times without zone; values readable."""
    frames = {
        "Bưu cục (post office)": reports.on_time_rate(table, by="post_office"),
        "data": table,
        "a/b:c*d?e[f]g" + "x" * 40: reports.failure_reasons(table),
        "data ": reports.unassigned_reasons(table),
    }
    path = reports.export_xlsx(frames, tmp_path / "out" / "report.xlsx")
    book = openpyxl.load_workbook(path)
    names = book.sheetnames
    assert len(names) == 4
    assert names[0] == "Bưu cục (post office)"
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert len({n.lower() for n in names}) == 4
    data = pd.read_excel(path, sheet_name=names[1])
    assert len(data) == len(table)
    first = data.iloc[0]
    assert pd.Timestamp(first["completed_at"]) == pd.Timestamp("2026-11-02 10:00")
    offices = pd.read_excel(path, sheet_name=names[0])
    assert list(offices["depot_id"]) == ["D1", "D2"]
    assert list(offices["attempts"]) == [3, 2]


def test_export_xlsx_needs_a_table(tmp_path: Path) -> None:
    """An empty mapping is refused rather than writing an invalid workbook."""
    with pytest.raises(ValueError, match="at least one"):
        reports.export_xlsx({}, tmp_path / "x.xlsx")


def test_manager_tables_export(table: pd.DataFrame, tmp_path: Path) -> None:
    """The standard manager tables export to one workbook, one sheet each."""
    tables = reports.manager_tables(table)
    path = reports.export_xlsx(tables, tmp_path / "manager.xlsx")
    assert len(openpyxl.load_workbook(path).sheetnames) == len(tables)


@pytest.mark.parametrize("by", ["post_office", "zone", "courier", "day"])
def test_grouped_tables_of_an_empty_or_keyless_frame_keep_their_columns(
    table: pd.DataFrame, by: str
) -> None:
    """No rows, or no row with the group key: empty tables with the usual columns, not a KeyError."""
    keyless = table.assign(zone_id=None, depot_id=None, courier_id=None, day=pd.NaT)
    for df in (month_frame([]), keyless):
        rates = reports.on_time_rate(df, by=by)
        assert rates.empty
        assert list(rates.columns) == [
            "attempts",
            "completed",
            "on_time",
            "on_time_rate",
            "completion_rate",
        ]
        assert reports.request_to_completion_summary(df, by=by).empty
        assert "late_share" in reports.arrival_deltas(df, by=by).columns
    assert reports.courier_comparison(month_frame([])).empty
