"""Malformed files are refused with an InputError naming row, column and reason, never another error."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from routing.errors import InputError, InputFileError, InputTooLargeError
from routing.io import read_couriers, read_depots, read_jobs

HEADER = "job_id,kind,lon,lat,windows"
ROW = "J1,pickup,108.0,14.3,07:30-11:30"


def _errors(path: Path) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(InputFileError) as info:
        read_jobs(path)
    return [(e.row, e.column, e.reason) for e in info.value.errors]


def _row_errors(path: Path) -> list[tuple[int | None, str | None, str]]:
    result = read_jobs(path, keep_good=True)
    return [(e.row, e.column, e.reason) for e in result.errors]


@pytest.mark.parametrize(
    ("name", "data", "row", "words"),
    [
        ("big.csv", f'{HEADER},note\n{ROW},"{"x" * 200_000}"\n'.encode(), 2, "field larger"),
        ("nul.csv", f"{HEADER}\n{ROW}\x00\n".encode(), 2, "NUL"),
        (
            "latin1.csv",
            f"{HEADER}\nJ1,pickup,108,14,07:30-11:30,Hà Nam\n".encode("latin-1", "replace"),
            None,
            "UTF-8",
        ),
        ("empty.csv", b"\xef\xbb\xbf", 1, "empty file"),
        ("deep.json", b"[" * 100_000, None, "nested too deeply"),
        ("digits.json", b'[{"items": ' + b"9" * 5000 + b"}]", None, "not valid JSON"),
        ("junk.xlsx", b"PK\x03\x04" + bytes(range(256)) * 4, None, "not a readable Excel"),
    ],
)
def test_unreadable_files_name_the_reason(
    tmp_path: Path, name: str, data: bytes, row: int | None, words: str
) -> None:
    """CSV fields over 128 KiB, NUL bytes, legacy encodings, empty, deep or broken files: one clear error."""
    path = tmp_path / name
    path.write_bytes(data)
    [(got_row, _, reason)] = _errors(path)
    assert got_row == row
    assert words in reason


def test_duplicated_and_wrongly_delimited_headers_are_refused(tmp_path: Path) -> None:
    """A column twice in the header is named with both positions; a '|' header misses every column."""
    path = tmp_path / "dup.csv"
    path.write_text(f"job_id,{HEADER}\nJ0,{ROW}\n", encoding="utf-8")
    assert _errors(path) == [(1, "job_id", "column appears more than once (columns 1 and 2)")]
    path.write_text(f"{HEADER.replace(',', '|')}\n{ROW.replace(',', '|')}\n", encoding="utf-8")
    assert {c for _, c, _ in _errors(path)} == {"job_id", "kind", "lon", "lat", "windows"}


@pytest.mark.parametrize(
    ("value", "column", "words"),
    [
        ('"lon": 1e400', "lon", "not a finite number"),
        ('"lon": NaN', "lon", "not a finite number"),
        ('"lon": Infinity', "lon", "not a finite number"),
        ('"lon": true', "lon", "not a number"),
        ('"lon": [108, 14]', "lon", "not a list"),
        ('"items": ' + "9" * 400, "items", "not a finite number"),
        ('"items": 1e300', "items", "at most"),
        ('"cash_vnd": 1e13', "cash_vnd", "at most"),
        ('"weight_kg": 1e6', "weight_kg", "at most"),
        ('"job_id": {"a": 1}', "job_id", "not a list"),
        ('"job_id": "' + "j" * 101 + '"', "job_id", "longer than 100"),
        ('"windows": ["07:00-08:00"]', "windows", "not a list"),
        ('"requested_at": "0001-01-01 00:00"', "requested_at", "not a date"),
    ],
)
def test_wrong_json_values_are_row_errors(
    tmp_path: Path, value: str, column: str, words: str
) -> None:
    """Huge, non-finite, boolean, nested or over-long values are refused on their row and column."""
    fields = {
        "job_id": '"J1"',
        "kind": '"pickup"',
        "lon": "108",
        "lat": "14",
        "windows": '"07:00-08:00"',
    }
    key = value.split(":", 1)[0].strip('"')
    fields[key] = value.split(":", 1)[1].strip()
    body = ", ".join(f'"{k}": {v}' for k, v in fields.items())
    path = tmp_path / "jobs.json"
    path.write_text(f"[{{{body}}}]", encoding="utf-8")
    [(row, got_column, reason)] = _row_errors(path)
    assert (row, got_column) == (1, column)
    assert words in reason


def test_geojson_features_of_the_wrong_shape_are_row_errors(tmp_path: Path) -> None:
    """A feature that is not an object, properties that are a list, coordinates that are a number."""
    props = '"properties": {"job_id": "J%d", "kind": "pickup", "windows": "07:00-08:00"}'
    features = [
        "5",
        '{"type": "Feature", "geometry": null, "properties": [1, 2]}',
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": 5}, %s}' % (props % 3),
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1e999, 1]}, %s}'
        % (props % 4),
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [108, 14]}, %s}'
        % (props % 5),
    ]
    path = tmp_path / "jobs.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [' + ", ".join(features) + "]}")
    result = read_jobs(path, keep_good=True)
    assert [j.job_id for j in result.records] == ["J5"]
    assert [(e.row, e.column) for e in result.errors] == [
        (1, "feature"),
        (2, "properties"),
        (3, "coordinates"),
        (4, "lon"),
    ]


def test_row_cap_is_a_too_large_error(tmp_path: Path) -> None:
    """More rows than max_rows (CSV, JSON rows, even empty Excel rows) is InputTooLargeError naming the cap."""
    path = tmp_path / "jobs.csv"
    rows = [f"J{i},pickup,108,14,07:00-08:00" for i in range(11)]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    assert len(read_jobs(path, max_rows=11).records) == 11
    with pytest.raises(InputTooLargeError, match="more than 10 rows") as info:
        read_jobs(path, max_rows=10)
    assert info.value.row == 12
    jpath = tmp_path / "jobs.json"
    jpath.write_text("[" + ",".join(["{}"] * 11) + "]", encoding="utf-8")
    with pytest.raises(InputTooLargeError):
        read_depots(jpath, max_rows=10)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["courier_id", "depot_id", "shift_start", "shift_end"])
    sheet.cell(row=5000, column=1, value="C1")
    book.save(tmp_path / "c.xlsx")
    with pytest.raises(InputTooLargeError):
        read_couriers(tmp_path / "c.xlsx", max_rows=100)


def test_xlsx_declaring_a_huge_unpacked_size_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    """A zip bomb: a small .xlsx whose parts declare more than the cap is refused by its declared sizes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 3_000_000)
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 20_000
    with pytest.raises(InputTooLargeError, match="unpacks to 3000000 bytes"):
        read_jobs(path, max_unpacked_bytes=1_000_000)
    # Under the cap it is opened, and found not to be a workbook.
    with pytest.raises(InputFileError, match="not a readable Excel"):
        read_jobs(path, max_unpacked_bytes=10_000_000)


def test_xlsx_needing_an_unknown_zip_version_is_refused(tmp_path: Path) -> None:
    """A workbook whose zip directory asks for zip version 6.4 (found by the fuzz) is a clear error."""
    book = openpyxl.Workbook()
    buf = io.BytesIO()
    book.save(buf)
    data = bytearray(buf.getvalue())
    at = data.index(b"PK\x01\x02")  # the first central directory entry
    data[at + 6] = 64  # version needed to extract: 6.4
    path = tmp_path / "v64.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="not a readable Excel"):
        read_jobs(path)


def test_every_error_is_an_input_error() -> None:
    """The too-large error is an InputError too, so callers catching InputError see every refusal."""
    assert issubclass(InputTooLargeError, InputError)
    assert issubclass(InputFileError, InputError)
