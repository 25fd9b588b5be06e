"""Cash endpoints: issued and returned amounts, sign-off, a courier's cash, the reconciliation.

The managers' reconciliation comes by office and courier as JSON, CSV and XLSX.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth.service import Principal, Role
from api.cash import service
from api.days.schemas import CashRead, Vnd
from api.deps import CourierUser, Dispatcher, Manager, Reader, SessionDep, require
from api.errors import ERROR_RESPONSES, PermissionDeniedError
from api.reports.service import check_range
from routing.clock import local_today
from routing.reports import export_csv, export_xlsx

router = APIRouter(tags=["cash"], responses=ERROR_RESPONSES)

CourierId = Annotated[str, Path(min_length=1, max_length=100)]
ManagerOnly = Annotated[Principal, Depends(require(Role.manager))]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CashIn(BaseModel):
    """Cash handed to the courier in the morning and/or counted back at close (VND)."""

    issued_vnd: Vnd | None = None
    returned_vnd: Vnd | None = None


class SignOffIn(BaseModel):
    """A manager's note on a cash difference."""

    note: str = Field(min_length=1, max_length=1000)


class CashList(BaseModel):
    """Couriers' cash of a day."""

    data: list[CashRead]
    count: int


class Reconciliation(BaseModel):
    """The reconciliation of a range: rows per courier and day, and sums per office and courier."""

    start: dt.date
    end: dt.date
    rows: list[dict[str, Any]]
    by_office: list[dict[str, Any]]
    by_courier: list[dict[str, Any]]
    flagged: int


@router.get("/days/{day}/cash", response_model=CashList)
def day_cash(day: dt.date, session: SessionDep, _: Reader) -> dict[str, Any]:
    """Return each courier's cash of the day: issued (or proposed), paid, returned, difference."""
    rows = service.day_rows(session, day)
    return {"data": rows, "count": len(rows)}


@router.put("/days/{day}/cash/{courier_id}", response_model=CashRead)
def enter_cash(
    day: dt.date, courier_id: CourierId, body: CashIn, session: SessionDep, _: Dispatcher
) -> dict[str, Any]:
    """Enter the cash issued to a courier in the morning and/or returned at close."""
    row = service.set_cash(
        session, day, courier_id, issued_vnd=body.issued_vnd, returned_vnd=body.returned_vnd
    )
    session.commit()
    return row


@router.post("/days/{day}/cash/{courier_id}/sign-off", response_model=CashRead)
def sign_off(
    day: dt.date, courier_id: CourierId, body: SignOffIn, session: SessionDep, who: ManagerOnly
) -> dict[str, Any]:
    """Sign off a courier's cash difference with a note (managers only); 409 if none is open."""
    row = service.sign_off(session, day, courier_id, note=body.note, user_id=who.user_id)
    session.commit()
    return row


@router.get("/cash/me", response_model=CashRead)
def my_cash(session: SessionDep, who: CourierUser, day: dt.date | None = None) -> dict[str, Any]:
    """Return my cash of the day (today by default): issued, paid out, in hand."""
    if who.courier_id is None:
        msg = "only couriers carry cash of their own"
        raise PermissionDeniedError(msg)
    return service.courier_cash(session, day or local_today(), who.courier_id)


Start = Annotated[dt.date, Query(description="First day (local date)")]
End = Annotated[dt.date, Query(description="Last day, inclusive")]


def _records(frame: Any) -> list[dict[str, Any]]:
    from api.reports.service import table_json

    return list(table_json(frame)["rows"])


def _reconciliation(session: Any, start: dt.date, end: dt.date) -> tuple[Any, Any, Any]:
    check_range(start, end)
    df = service.reconciliation_frame(session, start, end)
    return (
        df,
        service.reconciliation_by(df, "depot_id"),
        service.reconciliation_by(df, "courier_id"),
    )


@router.get("/reports/cash", response_model=Reconciliation)
def reconciliation(session: SessionDep, _: Manager, start: Start, end: End) -> dict[str, Any]:
    """Return the cash reconciliation of a range by office and courier, and its rows."""
    df, offices, couriers = _reconciliation(session, start, end)
    return {
        "start": start,
        "end": end,
        "rows": _records(df),
        "by_office": _records(offices),
        "by_courier": _records(couriers),
        "flagged": int(df["flagged"].sum()) if not df.empty else 0,
    }


def _filename(start: dt.date, end: dt.date, ext: str) -> dict[str, str]:
    name = f"doi-soat-tien-{start.isoformat()}_{end.isoformat()}.{ext}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get(
    "/reports/cash.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The reconciliation rows"}},
)
def reconciliation_csv(
    session: SessionDep,
    _: Manager,
    start: Start,
    end: End,
    by: Annotated[Literal["courier_day", "courier", "post_office"], Query()] = "courier_day",
) -> Response:
    """Download the reconciliation as CSV (UTF-8 with BOM): per courier and day, courier or office."""
    df, offices, couriers = _reconciliation(session, start, end)
    frame = {"courier_day": df, "courier": couriers, "post_office": offices}[by]
    return Response(
        ("\ufeff" + export_csv(frame)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_filename(start, end, "csv"),
    )


@router.get(
    "/reports/cash.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "Offices, couriers, rows"}},
)
def reconciliation_xlsx(session: SessionDep, _: Manager, start: Start, end: End) -> Response:
    """Download the reconciliation as a workbook: by office, by courier, and every row."""
    df, offices, couriers = _reconciliation(session, start, end)
    sheets = {
        "Bưu cục (post office)": offices,
        "Bưu tá (courier)": couriers,
        "Dữ liệu (rows)": df,
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = export_xlsx(sheets, FilePath(tmp) / "cash.xlsx").read_bytes()
    return Response(data, media_type=XLSX_TYPE, headers=_filename(start, end, "xlsx"))
