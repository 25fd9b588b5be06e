"""Store uploaded depots, couriers and jobs, and rebuild ``routing.model`` objects from the store.

Uploads are parsed by ``routing.io`` (CSV, XLSX, GeoJSON/JSON), so the service and the CLI
validate files the same way. A file with a bad row is rejected whole unless the caller asks
to keep the good rows.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.jobs.models import CourierRecord, DepotRecord, JobRecord
from api.pagination import Page, keyset_page
from routing import io as rio
from routing.errors import InputError, InputFileError
from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow

logger = logging.getLogger(__name__)
T = TypeVar("T")

# -- (de)serialisation of the model ------------------------------------------------------------


def _tw(w: TimeWindow) -> list[int]:
    return [w.start_s, w.end_s]


def _load(x: Load) -> dict[str, int]:
    return {"items": x.items, "weight_g": x.weight_g, "cash_vnd": x.cash_vnd}


def depot_to_json(d: Depot) -> dict[str, Any]:
    """Return a depot as a JSON-ready dict."""
    return {
        "depot_id": d.depot_id,
        "name": d.name,
        "lon": d.lon,
        "lat": d.lat,
        "opening": _tw(d.opening),
    }


def depot_from_json(x: dict[str, Any]) -> Depot:
    """Rebuild a depot from :func:`depot_to_json`."""
    return Depot(x["depot_id"], x["name"], x["lon"], x["lat"], TimeWindow(*x["opening"]))


def courier_to_json(c: Courier) -> dict[str, Any]:
    """Return a courier as a JSON-ready dict."""
    return {
        "courier_id": c.courier_id,
        "depot_id": c.depot_id,
        "name": c.name,
        "profile": c.profile,
        "shift": _tw(c.shift),
        "break_window": _tw(c.break_window) if c.break_window else None,
        "break_duration_s": c.break_duration_s,
        "capacity": _load(c.capacity),
        "skills": sorted(c.skills),
        "end_depot_id": c.end_depot_id,
    }


def courier_from_json(x: dict[str, Any]) -> Courier:
    """Rebuild a courier from :func:`courier_to_json`."""
    bw = x.get("break_window")
    return Courier(
        courier_id=x["courier_id"],
        depot_id=x["depot_id"],
        name=x.get("name", ""),
        profile=x.get("profile", "motorbike"),
        shift=TimeWindow(*x["shift"]),
        break_window=TimeWindow(*bw) if bw else None,
        break_duration_s=x.get("break_duration_s", 0),
        capacity=Load(**x["capacity"]),
        skills=frozenset(x.get("skills", ())),
        end_depot_id=x.get("end_depot_id"),
    )


def job_to_json(j: Job) -> dict[str, Any]:
    """Return a job as a JSON-ready dict."""
    return {
        "job_id": j.job_id,
        "kind": j.kind,
        "lon": j.lon,
        "lat": j.lat,
        "windows": [_tw(w) for w in j.windows],
        "service_s": j.service_s,
        "demand": _load(j.demand),
        "skills": sorted(j.skills),
        "priority": j.priority,
        "requested_at": j.requested_at.isoformat() if j.requested_at else None,
        "pair_id": j.pair_id,
        "depot_id": j.depot_id,
        "zone_id": j.zone_id,
        "category": j.category,
        "address": j.address,
        "recipient": j.recipient,
        "note": j.note,
    }


def job_from_json(x: dict[str, Any]) -> Job:
    """Rebuild a job from :func:`job_to_json`."""
    return Job(
        job_id=x["job_id"],
        kind=x["kind"],
        lon=x["lon"],
        lat=x["lat"],
        windows=tuple(TimeWindow(*w) for w in x["windows"]),
        service_s=x["service_s"],
        demand=Load(**x["demand"]),
        skills=frozenset(x.get("skills", ())),
        priority=x.get("priority", 1),
        requested_at=datetime.fromisoformat(x["requested_at"]) if x.get("requested_at") else None,
        pair_id=x.get("pair_id"),
        depot_id=x.get("depot_id"),
        zone_id=x.get("zone_id"),
        category=x.get("category", ""),
        address=x.get("address", ""),
        recipient=x.get("recipient", ""),
        note=x.get("note", ""),
    )


def problem_to_json(p: Problem) -> dict[str, Any]:
    """Return a problem snapshot as a JSON-ready dict."""
    return {
        "day": p.day.isoformat() if p.day else None,
        "name": p.name,
        "depots": [depot_to_json(d) for d in p.depots],
        "couriers": [courier_to_json(c) for c in p.couriers],
        "jobs": [job_to_json(j) for j in p.jobs],
    }


def problem_from_json(x: dict[str, Any]) -> Problem:
    """Rebuild a problem from :func:`problem_to_json`."""
    return Problem(
        depots=tuple(depot_from_json(d) for d in x["depots"]),
        couriers=tuple(courier_from_json(c) for c in x["couriers"]),
        jobs=tuple(job_from_json(j) for j in x["jobs"]),
        day=date.fromisoformat(x["day"]) if x.get("day") else None,
        name=x.get("name", ""),
    )


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
