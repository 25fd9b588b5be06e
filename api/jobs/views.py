"""Dispatcher endpoints: upload and list depots, couriers and the day's jobs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from api.config import Settings
from api.deps import Dispatcher, Reader, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, PayloadTooLargeError, input_error_items
from api.jobs import service
from api.jobs.schemas import RecordList, RecordRead, UploadResult
from api.pagination import DEFAULT_LIMIT, After, Limit, Page
from routing import io as rio
from routing.errors import InputError

router = APIRouter(tags=["data"], responses=ERROR_RESPONSES)

KeepGood = Annotated[
    bool,
    Query(description="Store the good rows and report the bad ones instead of rejecting the file"),
]


async def _read_upload(file: UploadFile, limit: int) -> tuple[bytes, str]:
    data = await file.read(limit + 1)
    if len(data) > limit:
        msg = f"file larger than {limit} bytes"
        raise PayloadTooLargeError(msg, errors=[{"column": "file", "reason": msg}])
    if not data:
        raise InputError(None, "file", file.filename, "empty file")
    return data, service.upload_suffix(file.filename, file.content_type)


def _caps(settings: Settings) -> dict[str, int]:
    """Return the readers' size caps from the settings."""
    return {
        "max_rows": settings.max_upload_rows,
        "max_unpacked_bytes": settings.max_xlsx_unpacked_bytes,
    }


def _result(kind: str, stored: int, errors: list[InputError]) -> UploadResult:
    items = [i for e in errors for i in input_error_items(e)]
    return UploadResult(kind=kind, stored=stored, rejected=items)  # type: ignore[arg-type]


@router.post("/depots", response_model=UploadResult, status_code=201)
async def upload_depots(
    session: SessionDep,
    settings: SettingsDep,
    _: Dispatcher,
    file: Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON of post offices")],
    keep_good: KeepGood = False,
) -> UploadResult:
    """Upload post offices (insert or update by ``depot_id``)."""
    data, suffix = await _read_upload(file, settings.max_upload_bytes)

    def work() -> UploadResult:
        res = service.parse_upload(
            data, suffix, rio.read_depots, keep_good=keep_good, **_caps(settings)
        )
        n, errs = service.store_depots(session, res.records, keep_good=keep_good)
        session.commit()
        return _result("depots", n, [*res.errors, *errs])

    return await run_in_threadpool(work)


@router.post("/couriers", response_model=UploadResult, status_code=201)
async def upload_couriers(
    session: SessionDep,
    settings: SettingsDep,
    _: Dispatcher,
    file: Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON of couriers")],
    keep_good: KeepGood = False,
) -> UploadResult:
    """Upload couriers (insert or update by ``courier_id``); their post offices must exist."""
    data, suffix = await _read_upload(file, settings.max_upload_bytes)

    def work() -> UploadResult:
        res = service.parse_upload(
            data, suffix, rio.read_couriers, keep_good=keep_good, **_caps(settings)
        )
        n, errs = service.store_couriers(session, res.records, keep_good=keep_good)
        session.commit()
        return _result("couriers", n, [*res.errors, *errs])

    return await run_in_threadpool(work)


@router.post("/jobs", response_model=UploadResult, status_code=201)
async def upload_jobs(
    session: SessionDep,
    settings: SettingsDep,
    _: Dispatcher,
    file: Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON of the day's jobs")],
    day: Annotated[dt.date, Query(description="The plan day (local)")],
    keep_good: KeepGood = False,
) -> UploadResult:
    """Upload the jobs of a day (insert or update by ``job_id``)."""
    data, suffix = await _read_upload(file, settings.max_upload_bytes)

    def work() -> UploadResult:
        res = service.parse_upload(
            data, suffix, rio.read_jobs, keep_good=keep_good, **_caps(settings)
        )
        n, errs = service.store_jobs(session, day, res.records, keep_good=keep_good)
        session.commit()
        return _result("jobs", n, [*res.errors, *errs])

    return await run_in_threadpool(work)


def _records(page: Page[Any], key: str) -> RecordList:
    rows = [RecordRead(id=getattr(r, key), data=r.record) for r in page.rows]
    return RecordList(data=rows, count=page.count, next_after=page.next_after)


@router.get("/depots", response_model=RecordList)
def list_depots(
    session: SessionDep, _: Reader, limit: Limit = DEFAULT_LIMIT, after: After = None
) -> RecordList:
    """List the post offices by ``depot_id``, a page at a time (``next_after`` → ``after``)."""
    return _records(service.list_depots(session, limit=limit, after=after), "depot_id")


@router.get("/couriers", response_model=RecordList)
def list_couriers(
    session: SessionDep, _: Reader, limit: Limit = DEFAULT_LIMIT, after: After = None
) -> RecordList:
    """List the couriers by ``courier_id``, a page at a time (``next_after`` → ``after``)."""
    return _records(service.list_couriers(session, limit=limit, after=after), "courier_id")


@router.get("/jobs", response_model=RecordList)
def list_jobs(
    session: SessionDep,
    _: Reader,
    day: dt.date,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> RecordList:
    """List the jobs of a day by ``job_id``, a page at a time (``next_after`` → ``after``)."""
    return _records(service.list_jobs(session, day, limit=limit, after=after), "job_id")
