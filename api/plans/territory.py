"""The usual courier of each commune, read from the last published days (the store's side).

Deciding is :mod:`routing.territory`'s; this module reads who served which job on the last
published days and where each job was, and hands them over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.plans.models import PlanRecord, RouteRecord, StopRecord
from routing.territory import Territory, job_areas, learn_territory

if TYPE_CHECKING:
    import geopandas as gpd

    from routing.model import Job, Problem


def with_zones(problem: Problem, zones: gpd.GeoDataFrame) -> Problem:
    """Return the problem with each job that names no ``zone_id`` given the zone it lies in.

    The stored stops then carry their commune, for the dispatcher's page, the reports and the
    territory of the days after.
    """
    missing = [j for j in problem.jobs if j.zone_id is None]
    if not missing:
        return problem
    from geodata.zones import assign_zones

    found = assign_zones(zones, [j.lon for j in missing], [j.lat for j in missing]).zone_id
    zone_of = {j.job_id: z for j, z in zip(missing, found, strict=True) if z is not None}
    if not zone_of:
        return problem
    jobs = tuple(
        replace(j, zone_id=zone_of[j.job_id]) if j.job_id in zone_of else j for j in problem.jobs
    )
    return replace(problem, jobs=jobs)


class StoredJob(NamedTuple):
    """The few fields of a stored job that say where it is (cheaper than a whole Job)."""

    job_id: str
    kind: str
    pair_id: str | None
    zone_id: str | None
    lon: float
    lat: float


def areas_of(
    jobs: Sequence[Job] | Sequence[StoredJob], zones: gpd.GeoDataFrame | None
) -> dict[str, str | None]:
    """Return each job's area: its ``zone_id``, else the zone of the zones file it lies in.

    Pairs follow their pickup (:func:`routing.territory.job_areas`).
    """
    zone_of: dict[str, str | None] = {}
    missing = [j for j in jobs if j.zone_id is None]
    if zones is not None and missing:
        from geodata.zones import assign_zones

        found = assign_zones(zones, [j.lon for j in missing], [j.lat for j in missing]).zone_id
        zone_of = {j.job_id: z for j, z in zip(missing, found, strict=True)}
    return job_areas(jobs, zone_of)


def published_territory(
    session: Session, before: date, *, days: int, zones: gpd.GeoDataFrame | None
) -> Territory:
    """Learn each area's usual courier from the published plans of the last ``days`` days.

    Parameters
    ----------
    session
        An open session.
    before
        The day being planned: only published days before it count.
    days
        How many published days, the most recent first (0: none).
    zones
        Zones file of the service, for jobs that name no ``zone_id``.

    Returns
    -------
    territory
        Empty when there is no published day before ``before``.
    """
    if days <= 0:
        return Territory()
    rows = session.execute(
        select(PlanRecord.id, PlanRecord.day)
        .where(PlanRecord.status == "published", PlanRecord.day < before)
        .order_by(PlanRecord.day.desc())
        .limit(days)
    ).all()
    plan_ids = [pid for pid, _ in reversed(rows)]  # oldest first
    if not plan_ids:
        return Territory()
    served: dict[int, dict[str, str]] = {pid: {} for pid in plan_ids}
    jobs: dict[int, list[StoredJob]] = {pid: [] for pid in plan_ids}
    for pid, courier_id, job_id, lon, lat, job in session.execute(
        select(
            StopRecord.plan_id,
            RouteRecord.courier_id,
            StopRecord.job_id,
            StopRecord.lon,
            StopRecord.lat,
            StopRecord.job,
        )
        .join(RouteRecord, StopRecord.route_id == RouteRecord.id)
        .where(StopRecord.plan_id.in_(plan_ids))
    ):
        served[pid][job_id] = courier_id
        jobs[pid].append(
            StoredJob(job_id, job["kind"], job.get("pair_id"), job.get("zone_id"), lon, lat)
        )
    return learn_territory((served[pid], areas_of(jobs[pid], zones)) for pid in plan_ids)
