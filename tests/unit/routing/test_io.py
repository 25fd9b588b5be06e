"""Readers of the dispatcher's files: precise row errors, Vietnamese text, local times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from routing.errors import InputError, InputFileError
from routing.io import (
    COURIER_COLUMNS,
    JOB_COLUMNS,
    courier_row,
    job_row,
    parse_clock,
    parse_windows,
    read_couriers,
    read_depots,
    read_jobs,
    write_csv,
)

HEADER = "job_id,kind,lon,lat,windows,service_min,items,weight_kg,cash_vnd,skills,priority,requested_at,pair_id,address,recipient"
GOOD = [
    "J1,pickup,108.001,14.351,07:30-11:30;13:30-17:00,10,1,0.5,0,,2,2026-11-27 15:04,,12 Trần Hưng Đạo,Nguyễn Thị Hồng",
    "J2,delivery,108.010,14.360,08:00-11:00,5,1,0.2,2500000,cash_payout;id_check,1,,,Thôn Kon Klor,Y Blông",
    "J3,phat,108.020,14.370,13:30-16:30,5,1,0.1,0,id_check,1,,,Đắk Hà,A Thắm",
]


def _write(path: Path, lines: list[str], *, bom: bool = False) -> Path:
    path.write_bytes(("\ufeff" if bom else "").encode() + "\n".join(lines).encode("utf-8"))
    return path


@pytest.mark.parametrize("bom", [False, True])
def test_reads_vietnamese_csv_with_or_without_bom(tmp_path: Path, bom: bool) -> None:
    """UTF-8 with and without Excel's BOM both keep Vietnamese text; local times become seconds."""
    jobs = read_jobs(_write(tmp_path / "jobs.csv", [HEADER, *GOOD], bom=bom)).records
    assert [j.job_id for j in jobs] == ["J1", "J2", "J3"]
    assert jobs[0].address == "12 Trần Hưng Đạo"
    assert jobs[0].recipient == "Nguyễn Thị Hồng"
    assert [(w.start_s, w.end_s) for w in jobs[0].windows] == [(27000, 41400), (48600, 61200)]
    assert jobs[1].demand.cash_vnd == 2_500_000
    assert jobs[1].skills == {"cash_payout", "id_check"}
    assert jobs[2].kind == "delivery"
    assert jobs[0].requested_at is not None
    assert jobs[0].requested_at.utcoffset().total_seconds() == 7 * 3600


def test_bad_rows_are_named_precisely(tmp_path: Path) -> None:
    """Each bad row is reported with its spreadsheet row number, column, value and reason."""
    lines = [
        HEADER,
        GOOD[0],
        "J2,delivery,108.01,91.5,08:00-11:00,5,1,0.2,0,,1,,,x,y",  # row 3: latitude
        "J3,pickup,108.02,14.37,11:00-08:00,5,1,0.1,0,,1,,,x,y",  # row 4: reversed window
        "J4,teleport,108.02,14.37,08:00-09:00,5,1,0.1,0,,1,,,x,y",  # row 5: kind
        "J1,pickup,108.02,14.37,08:00-09:00,5,1,0.1,0,,1,,,x,y",  # row 6: duplicate id
        "J6,pickup,108.02,14.37,08:00-09:00,5,1,0.1,0,,9,,,x,y",  # row 7: priority
        "J7,pickup,108.02,abc,08:00-09:00,5,1,0.1,0,,1,,,x,y",  # row 8: not a number
    ]
    with pytest.raises(InputFileError) as info:
        read_jobs(_write(tmp_path / "jobs.csv", lines))
    got = {(e.row, e.column) for e in info.value.errors}
    assert got == {
        (3, "lat"),
        (4, "windows"),
        (5, "kind"),
        (6, "job_id"),
        (7, "priority"),
        (8, "lat"),
    }
    assert "jobs.csv" in str(info.value)
    assert "row 3" in str(info.value)
    bad_lat = next(e for e in info.value.errors if e.row == 3)
    assert bad_lat.value == "91.5"


def test_keep_good_rows(tmp_path: Path) -> None:
    """With keep_good, good rows come back and bad ones are listed, none lost."""
    lines = [HEADER, GOOD[0], "J2,delivery,,14.36,08:00-11:00,5,1,0.2,0,,1,,,x,y", GOOD[2]]
    result = read_jobs(_write(tmp_path / "jobs.csv", lines), keep_good=True)
    assert [j.job_id for j in result.records] == ["J1", "J3"]
    assert [(e.row, e.column) for e in result.errors] == [(3, "lon")]
    assert "missing" in result.errors[0].reason


def test_missing_column_and_empty_file(tmp_path: Path) -> None:
    """A header without a required column, and an empty file, are rejected at row 1."""
    with pytest.raises(InputFileError, match="lat"):
        read_jobs(
            _write(tmp_path / "a.csv", ["job_id,kind,lon,windows", "J1,pickup,108,07:00-08:00"])
        )
    with pytest.raises(InputFileError) as info:
        read_jobs(_write(tmp_path / "b.csv", [""]))
    assert info.value.errors[0].row == 1


def test_not_utf8_and_unknown_type(tmp_path: Path) -> None:
    """Legacy-encoded files and unknown extensions get a clear message."""
    path = tmp_path / "jobs.csv"
    path.write_bytes((HEADER + "\n" + GOOD[0]).encode("utf-16"))
    with pytest.raises(InputFileError, match="UTF-8"):
        read_jobs(path)
    with pytest.raises(InputFileError, match="unsupported"):
        read_jobs(_write(tmp_path / "jobs.txt", [HEADER]))
    with pytest.raises(InputFileError, match="not found"):
        read_jobs(tmp_path / "none.csv")


def test_excel_file(tmp_path: Path) -> None:
    """An .xlsx file with Excel time cells and numbers reads like the CSV."""
    from datetime import time

    book = Workbook()
    sheet = book.active
    sheet.append(
        ["job_id", "kind", "lon", "lat", "window_start", "window_end", "cash_vnd", "address"]
    )
    sheet.append(
        ["E1", "delivery", 108.0, 14.35, time(7, 30), time(11, 0), 1500000, "Phường Quyết Thắng"]
    )
    sheet.append(["E2", "pickup", 108.1, "north", time(13, 30), time(17, 0), 0, "Xã Ia Chim"])
    path = tmp_path / "jobs.xlsx"
    book.save(path)
    result = read_jobs(path, keep_good=True)
    assert [j.job_id for j in result.records] == ["E1"]
    assert result.records[0].windows[0].start_s == 7 * 3600 + 1800
    assert result.records[0].address == "Phường Quyết Thắng"
    assert [(e.row, e.column) for e in result.errors] == [(3, "lat")]


def test_geojson_points(tmp_path: Path) -> None:
    """Jobs as GeoJSON points; a non-point geometry is a bad feature."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [108.0, 14.35]},
            "properties": {"job_id": "G1", "kind": "pickup", "windows": "07:00-11:00"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[108, 14], [108.1, 14]]},
            "properties": {"job_id": "G2", "kind": "pickup", "windows": "07:00-11:00"},
        },
    ]
    path = tmp_path / "jobs.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = read_jobs(path, keep_good=True)
    assert [j.job_id for j in result.records] == ["G1"]
    assert [(e.row, e.column) for e in result.errors] == [(2, "geometry")]


def test_couriers_and_depots(tmp_path: Path) -> None:
    """Couriers' shifts and breaks, and post offices, read with checks."""
    couriers = _write(
        tmp_path / "couriers.csv",
        [
            "courier_id,depot_id,name,shift_start,shift_end,break_start,break_end,break_min,max_items,max_weight_kg,max_cash_vnd,skills",
            "C1,BC-KONTUM,Trần Văn Tú,07:00,17:00,11:30,13:30,60,40,30,20000000,cash_payout;id_check",
            "C2,BC-KONTUM,Lê Thị Mai,17:00,07:00,,,,40,30,0,",
            "C3,BC-KONTUM,A Nhông,07:00,17:00,11:30,,60,40,30,0,",
        ],
    )
    result = read_couriers(couriers, keep_good=True)
    assert [c.courier_id for c in result.records] == ["C1"]
    c1 = result.records[0]
    assert c1.name == "Trần Văn Tú"
    assert c1.break_duration_s == 3600
    assert c1.capacity.cash_vnd == 20_000_000
    assert {(e.row, e.column) for e in result.errors} == {(3, "shift_end"), (4, "break_end")}
    depots = _write(
        tmp_path / "depots.csv",
        ["depot_id,name,lon,lat,open,close", "BC-KONTUM,Bưu cục Kon Tum,108.0,14.35,07:00,17:30"],
    )
    d = read_depots(depots).records[0]
    assert d.name == "Bưu cục Kon Tum"
    assert d.opening.end_s == 17 * 3600 + 1800


def test_round_trip_through_csv(tmp_path: Path) -> None:
    """Jobs and couriers written by the writers read back equal."""
    jobs = read_jobs(_write(tmp_path / "jobs.csv", [HEADER, *GOOD])).records
    again = read_jobs(
        write_csv([job_row(j) for j in jobs], tmp_path / "out.csv", JOB_COLUMNS)
    ).records
    assert again == jobs
    couriers = _write(
        tmp_path / "c.csv",
        [
            "courier_id,depot_id,shift_start,shift_end,break_start,break_end,break_min",
            "C1,D,07:00,17:00,11:30,13:30,45",
        ],
    )
    cs = read_couriers(couriers).records
    assert (
        read_couriers(
            write_csv([courier_row(c) for c in cs], tmp_path / "c2.csv", COURIER_COLUMNS)
        ).records
        == cs
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("07:30", 27000), ("7:30:15", 27015), ("17h05", 61500), ("24:00", 86400)]
)
def test_parse_clock(text: str, seconds: int) -> None:
    """Local clock times parse to seconds after midnight."""
    assert parse_clock(text) == seconds


@pytest.mark.parametrize("text", ["25:00", "7.30", "noon", "07:61"])
def test_parse_clock_rejects(text: str) -> None:
    """Anything that is not a clock time is rejected."""
    with pytest.raises(ValueError, match="time of day"):
        parse_clock(text)


def test_parse_windows_rejects_overlap() -> None:
    """Overlapping windows are an error, not silently merged."""
    with pytest.raises(ValueError, match="overlap"):
        parse_windows("07:00-10:00;09:00-11:00")


def test_input_error_is_a_value_error() -> None:
    """InputFileError is an InputError and a ValueError, so callers may catch either."""
    err = InputFileError("x.csv", [InputError(2, "lat", "x", "not a number")])
    assert isinstance(err, ValueError)
    assert err.row == 2
