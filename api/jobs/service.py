"""Store uploaded depots, couriers and jobs, and rebuild ``routing.model`` objects from the store.

Uploads are parsed by ``routing.io`` (CSV, XLSX, GeoJSON/JSON), so the service and the CLI
validate files the same way. A file with a bad row is rejected whole unless the caller asks
to keep the good rows.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.jobs.models import CourierRecord, DepotRecord, JobRecord
from api.pagination import Page, keyset_page
from routing import io as rio
from routing.codec import (
    courier_from_json,
    courier_to_json,
    depot_from_json,
    depot_to_json,
    job_from_json,
    job_to_json,
)
from routing.errors import InputError, InputFileError
from routing.model import Courier, Depot, Job, Problem

logger = logging.getLogger(__name__)
T = TypeVar("T")

# -- uploads -----------------------------------------------------------------------------------

SUFFIX_FOR_TYPE = {
    "text/csv": ".csv",
    "application/json": ".json",
    "application/geo+json": ".geojson",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


def upload_suffix(filename: str | None, content_type: str | None) -> str:
    """Return the file suffix that tells ``routing.io`` how to parse an upload.

    Raises
    ------
    InputError
        If neither the name nor the content type is a supported format.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix in rio.SUFFIXES:
        return suffix
    ctype = "" if suffix else ctype_of(content_type)
    if ctype in SUFFIX_FOR_TYPE:
        return SUFFIX_FOR_TYPE[ctype]
    msg = f"unsupported file type {suffix or ctype or '?'}; use .csv, .xlsx, .geojson or .json"
    raise InputError(None, "file", filename, msg)


def ctype_of(content_type: str | None) -> str:
    """Return the bare media type of a Content-Type header."""
    return (content_type or "").split(";")[0].strip().lower()


def parse_upload(
    data: bytes,
    suffix: str,
    reader: Callable[..., rio.ReadResult[T]],
    *,
    keep_good: bool,
    **kwargs: Any,
) -> rio.ReadResult[T]:
    """Parse uploaded bytes with a ``routing.io`` reader through a temporary file.

    Raises
    ------
    InputFileError
        If a row is bad and ``keep_good`` is false, or the file cannot be parsed.
    """
    with tempfile.TemporaryDirectory(prefix="courier-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return reader(path, keep_good=keep_good, **kwargs)
        except InputError:
            raise
        except (ValueError, KeyError, OSError, UnicodeDecodeError) as e:
            msg = f"cannot read the file: {e}"
            raise InputFileError("upload", [InputError(None, "file", None, msg)]) from e


def _errors_or_raise(errors: list[InputError], keep_good: bool, source: str) -> list[InputError]:
    if errors and not keep_good:
        raise InputFileError(source, errors)
    return errors


def store_depots(
    session: Session, depots: list[Depot], *, keep_good: bool
) -> tuple[int, list[InputError]]:
    """Insert or update depots by id; return how many were stored and the rejected rows."""
    for d in depots:
        rec = session.get(DepotRecord, d.depot_id)
        if rec is None:
            rec = DepotRecord(depot_id=d.depot_id, lon=d.lon, lat=d.lat, record={})
            session.add(rec)
        rec.name, rec.lon, rec.lat, rec.record = d.name, d.lon, d.lat, depot_to_json(d)
    session.flush()
    return len(depots), []


def store_couriers(
    session: Session, couriers: list[Courier], *, keep_good: bool
) -> tuple[int, list[InputError]]:
    """Insert or update couriers by id; couriers of unknown depots are rejected.

    Raises
    ------
    InputFileError
        If a courier references an unknown depot and ``keep_good`` is false.
    """
    known = set(session.scalars(select(DepotRecord.depot_id)))
    errors: list[InputError] = []
    good: list[Courier] = []
    for c in couriers:
        bad = [x for x in (c.depot_id, c.end_depot) if x not in known]
        if bad:
            errors.append(
                InputError(None, "depot_id", bad[0], f"courier {c.courier_id}: unknown post office")
            )
        else:
            good.append(c)
    _errors_or_raise(errors, keep_good, "couriers")
    for c in good:
        rec = session.get(CourierRecord, c.courier_id)
        if rec is None:
            rec = CourierRecord(courier_id=c.courier_id, depot_id=c.depot_id, record={})
            session.add(rec)
        rec.depot_id, rec.name, rec.record, rec.active = (
            c.depot_id,
            c.name,
            courier_to_json(c),
            True,
        )
    session.flush()
    return len(good), errors


def store_jobs(
    session: Session, day: date, jobs: list[Job], *, keep_good: bool
) -> tuple[int, list[InputError]]:
    """Insert or update the jobs of a day by id; jobs of unknown depots are rejected.

    Raises
    ------
    InputFileError
        If a job references an unknown depot and ``keep_good`` is false.
    """
    known = set(session.scalars(select(DepotRecord.depot_id)))
    errors = [
        InputError(None, "depot_id", j.depot_id, f"job {j.job_id}: unknown post office")
        for j in jobs
        if j.depot_id is not None and j.depot_id not in known
    ]
    _errors_or_raise(errors, keep_good, "jobs")
    bad = {e.value for e in errors}
    existing = {r.job_id: r for r in session.scalars(select(JobRecord).where(JobRecord.day == day))}
    n = 0
    for j in jobs:
        if j.depot_id is not None and j.depot_id in bad:
            continue
        rec = existing.get(j.job_id)
        if rec is None:
            rec = JobRecord(day=day, job_id=j.job_id, kind=j.kind, lon=j.lon, lat=j.lat, record={})
            session.add(rec)
        rec.kind, rec.category, rec.depot_id = j.kind, j.category, j.depot_id
        rec.lon, rec.lat, rec.record = j.lon, j.lat, job_to_json(j)
        n += 1
    session.flush()
    return n, errors


def list_depots(session: Session, *, limit: int, after: str | None) -> Page[DepotRecord]:
    """Return a page of post offices by ``depot_id``."""
    return keyset_page(session, select(DepotRecord), DepotRecord.depot_id, limit=limit, after=after)


def list_couriers(session: Session, *, limit: int, after: str | None) -> Page[CourierRecord]:
    """Return a page of couriers by ``courier_id``."""
    q = select(CourierRecord)
    return keyset_page(session, q, CourierRecord.courier_id, limit=limit, after=after)


def list_jobs(session: Session, day: date, *, limit: int, after: str | None) -> Page[JobRecord]:
    """Return a page of a day's jobs by ``job_id``."""
    q = select(JobRecord).where(JobRecord.day == day)
    return keyset_page(session, q, JobRecord.job_id, limit=limit, after=after)


def build_problem(session: Session, day: date, *, courier_ids: list[str] | None = None) -> Problem:
    """Assemble the day's problem from the store: all depots, active couriers, the day's jobs.

    Raises
    ------
    InputError
        If there are no depots, couriers or jobs, or the data is inconsistent.
    """
    depots = [
        depot_from_json(r.record)
        for r in session.scalars(select(DepotRecord).order_by(DepotRecord.depot_id))
    ]
    q = select(CourierRecord).where(CourierRecord.active).order_by(CourierRecord.courier_id)
    couriers = [courier_from_json(r.record) for r in session.scalars(q)]
    if courier_ids is not None:
        wanted = set(courier_ids)
        unknown = wanted - {c.courier_id for c in couriers}
        if unknown:
            raise InputError(None, "courier_ids", sorted(unknown)[:5], "unknown couriers")
        couriers = [c for c in couriers if c.courier_id in wanted]
    jobs = [
        job_from_json(r.record)
        for r in session.scalars(
            select(JobRecord).where(JobRecord.day == day).order_by(JobRecord.id)
        )
    ]
    if not depots:
        raise InputError(None, "depots", None, "no post offices uploaded")
    if not couriers:
        raise InputError(None, "couriers", None, "no couriers uploaded")
    if not jobs:
        raise InputError(None, "day", day.isoformat(), "no jobs uploaded for this day")
    return Problem(tuple(depots), tuple(couriers), tuple(jobs), day=day, name=f"day {day}")
