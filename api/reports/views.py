"""Manager endpoints: delivery-time reports over a date range (JSON, CSV, XLSX, SVG charts).

Every format comes from one :class:`~api.reports.service.RangeReport`, whose tables are
computed by :mod:`routing.reports` on the frame built from the event store:

- ``GET /reports/range``: the report as JSON (headline, tables, histograms);
- ``GET /reports/range.csv``: the main table (one row per group), UTF-8 with a BOM so Excel
  shows Vietnamese names;
- ``GET /reports/range.xlsx``: every table on its own sheet, plus the rows (``Dữ liệu (rows)``),
  written by :func:`routing.reports.export_xlsx`;
- ``GET /reports/range.svg?chart=``: one chart, drawn by matplotlib in ``lang``;
- ``GET /reports/day``: one day's counts per courier and post office.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import Manager, SessionDep
from api.errors import ERROR_RESPONSES
from api.reports import service
from api.reports.service import GroupBy
from api.web.i18n import Language
from routing.reports import export_csv, export_xlsx

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERROR_RESPONSES)

Start = Annotated[dt.date, Query(description="First day of the range (local date)")]
End = Annotated[
    dt.date,
    Query(description=f"Last day of the range, inclusive; at most {service.MAX_RANGE_DAYS} days"),
]
By = Annotated[GroupBy, Query(description="Group by post office, zone, courier or day")]
Lang = Annotated[Language, Query(description="Language of labels (Vietnamese first)")]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DayReport(BaseModel):
    """A day's report: overall, per post office, per courier."""

    day: dt.date
    plan_id: int | None
    total: dict[str, Any]
    by_courier: dict[str, dict[str, Any]]
    by_depot: dict[str, dict[str, Any]]


class Table(BaseModel):
    """A table: column names, then one object per row (group keys first)."""

    columns: list[str]
    rows: list[dict[str, Any]]


class Histogram(BaseModel):
    """Counts per bin ``[edges[i], edges[i+1])``; ``null`` edges are open ends."""

    edges: list[float | None]
    counts: list[int]
    total: int


class RangeReportRead(BaseModel):
    """Headline numbers, the tables of :mod:`routing.reports` and two distributions."""

    start: dt.date
    end: dt.date
    by: GroupBy
    days: list[dt.date]
    headline: dict[str, Any]
    tables: dict[str, Table]
    histograms: dict[str, Histogram]


def _filename(start: dt.date, end: dt.date, by: str, ext: str) -> dict[str, str]:
    name = f"bao-cao-{start.isoformat()}_{end.isoformat()}_{by}.{ext}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/day", response_model=DayReport)
def day_report(session: SessionDep, _: Manager, day: dt.date) -> dict[str, Any]:
    """Return completed, failed, on-time rate, planned vs actual arrival and request-to-completion."""
    return service.day_report(session, day)


@router.get("/range", response_model=RangeReportRead)
def range_report(
    session: SessionDep, _: Manager, start: Start, end: End, by: By = "post_office"
) -> dict[str, Any]:
    """Report a date range: request to completion, on-time rate, arrival delays, failures.

    Tables: ``summary`` (overall), ``groups`` (the main table per group), and per group
    ``request_to_completion``, ``on_time``, ``arrival``, ``failures``; then ``unassigned``,
    ``couriers`` and ``days``. A range longer than a year or ending before it starts is 422
    naming ``end``.
    """
    return service.report_json(service.range_report(session, start, end, by))


@router.get(
    "/range.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The main table"}},
)
def range_csv(
    session: SessionDep, _: Manager, start: Start, end: End, by: By = "post_office"
) -> Response:
    """Download the main table (one row per group) as CSV (UTF-8 with BOM, comma-separated)."""
    rep = service.range_report(session, start, end, by)
    text = export_csv(rep.tables["groups"].reset_index())
    return Response(
        ("\ufeff" + text).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_filename(start, end, by, "csv"),
    )


@router.get(
    "/range.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "Every table, one per sheet"}},
)
def range_xlsx(
    session: SessionDep, _: Manager, start: Start, end: End, by: By = "post_office"
) -> Response:
    """Download every table of the report on its own sheet, and the rows, as an Excel workbook."""
    rep = service.range_report(session, start, end, by)
    sheets = {service.SHEETS[k]: frame for k, frame in rep.tables.items()}
    sheets["Dữ liệu (rows)"] = rep.frame
    with tempfile.TemporaryDirectory() as tmp:
        data = export_xlsx(sheets, Path(tmp) / "report.xlsx").read_bytes()
    return Response(data, media_type=XLSX_TYPE, headers=_filename(start, end, by, "xlsx"))


@router.get(
    "/range.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "An SVG chart"}},
)
def range_chart(
    session: SessionDep,
    _: Manager,
    start: Start,
    end: End,
    chart: Annotated[
        service.ChartName, Query(description="Which chart of the report to draw")
    ] = "on_time",
    by: By = "post_office",
    lang: Lang = "vi",
) -> Response:
    """Draw one chart of the report as SVG, labelled in ``lang``."""
    from api.reports.charts import render_svg

    rep = service.range_report(session, start, end, by)
    svg = render_svg(rep, chart, lang=lang)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
