"""Territory: which courier usually serves each commune, learned from the last published days.

Citizens and couriers both gain when the same courier comes back to the same communes: the
courier knows the lanes, the dogs and who is home after lunch; the citizen knows who to
expect. This module learns, from past plans, the usual courier of each area (a commune or a
zone: whatever ``Job.zone_id`` or the zones file names), turns it into a preferred courier
per job of a new day (the planner makes serving a job with another courier cost something,
through :class:`routing.solver.SolveGuide`), and measures how many of a plan's jobs went to
their area's usual courier.

Areas come from the caller (:func:`job_areas`): ``routing`` knows no commune list.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from routing.plan import Plan

__all__ = [
    "DEFAULT_MIN_SHARE",
    "AreaJob",
    "Territory",
    "TerritoryShare",
    "job_areas",
    "learn_territory",
    "preferred_couriers",
    "served_by",
    "territory_share",
]

#: A courier becomes an area's preferred courier only when they served at least this share
#: of its past jobs (among the couriers still present). Below it the area has no clear owner
#: (a zone as big as a whole office, shared by all its couriers), and preferring one courier
#: would only pull the office's work onto them.
DEFAULT_MIN_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Territory:
    """Jobs each courier served in each area over the learned days.

    Parameters
    ----------
    counts
        ``area -> courier_id -> jobs served``.
    last_day
        ``area -> courier_id -> index of the latest learned day they served it`` (0 is the
        oldest day): ties of ``counts`` go to the courier seen there most recently.
    days
        Number of days learned from.
    """

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    last_day: dict[str, dict[str, int]] = field(default_factory=dict)
    days: int = 0

    def ranking(self, area: str, among: Collection[str] | None = None) -> list[tuple[str, int]]:
        """Return ``(courier_id, jobs)`` of an area, most jobs first.

        Ties go to the courier who served the area most recently, then by courier id, so the
        answer never depends on dict order. Couriers not in ``among`` (when given: those
        working today) are left out.
        """
        served = self.counts.get(area, {})
        seen = self.last_day.get(area, {})
        rows = [(c, n) for c, n in served.items() if n > 0 and (among is None or c in among)]
        rows.sort(key=lambda cn: (-cn[1], -seen.get(cn[0], -1), cn[0]))
        return rows

    def usual(self, area: str | None, among: Collection[str] | None = None) -> str | None:
        """Return the area's usual courier (among ``among`` when given), or None if unknown."""
        if area is None:
            return None
        rows = self.ranking(area, among)
        return rows[0][0] if rows else None

    def usual_share(self, area: str, among: Collection[str] | None = None) -> float:
        """Return the share of the area's learned jobs (of couriers in ``among``) its usual courier served."""
        rows = self.ranking(area, among)
        total = sum(n for _, n in rows)
        return rows[0][1] / total if total else 0.0

    def usual_couriers(self, among: Collection[str] | None = None) -> dict[str, str]:
        """Return ``area -> usual courier`` for every learned area that has one."""
        out = {}
        for area in sorted(self.counts):
            courier = self.usual(area, among)
            if courier is not None:
                out[area] = courier
        return out


@dataclass(frozen=True, slots=True)
class TerritoryShare:
    """How many of a plan's routed jobs went to their area's usual courier.

    Parameters
    ----------
    routed
        Jobs on a route.
    known
        Routed jobs whose area has a usual courier (learned, and working today).
    by_usual
        Of those, the jobs served by that courier.
    """

    routed: int
    known: int
    by_usual: int

    @property
    def share(self) -> float | None:
        """Return ``by_usual / known``, or None when no routed job has a usual courier."""
        return self.by_usual / self.known if self.known else None


class AreaJob(Protocol):
    """What :func:`job_areas` reads of a job (a :class:`routing.model.Job` has it)."""

    @property
    def job_id(self) -> str: ...  # noqa: D102
    @property
    def kind(self) -> str: ...  # noqa: D102
    @property
    def pair_id(self) -> str | None: ...  # noqa: D102
    @property
    def zone_id(self) -> str | None: ...  # noqa: D102


def job_areas(
    jobs: Sequence[AreaJob], zone_of: Mapping[str, str | None] | None = None
) -> dict[str, str | None]:
    """Return the area of each job: ``zone_of[job_id]``, else ``job.zone_id``.

    Both halves of a pickup-delivery pair get the pickup's area: the delivery goes to the
    one-stop centre, which is nobody's territory, and the pair has one courier.

    Parameters
    ----------
    jobs
        The day's jobs.
    zone_of
        Area per job id (for instance from a spatial join of the jobs on commune polygons);
        it wins over ``job.zone_id``.

    Returns
    -------
    areas
        ``job_id -> area`` (None when the job has none).
    """
    zone_of = zone_of or {}
    area: dict[str, str | None] = {}
    for job in jobs:
        z = zone_of.get(job.job_id)
        area[job.job_id] = z if z is not None else job.zone_id
    pickup_area = {
        j.pair_id: area[j.job_id] for j in jobs if j.pair_id is not None and j.kind == "pickup"
    }
    for job in jobs:
        if job.pair_id is not None and job.kind == "delivery" and job.pair_id in pickup_area:
            area[job.job_id] = pickup_area[job.pair_id]
    return area


def served_by(plan: Plan) -> dict[str, str]:
    """Return the courier of each routed job of a plan (``job_id -> courier_id``)."""
    return {stop.job_id: route.courier_id for route in plan.routes for stop in route.stops}


def learn_territory(
    history: Iterable[tuple[Mapping[str, str], Mapping[str, str | None]]],
) -> Territory:
    """Count, area by area, the jobs each courier was given on past days.

    Parameters
    ----------
    history
        Past days, oldest first: who served each job that day (:func:`served_by` of the
        day's published plan) and the area of each job (:func:`job_areas`). Jobs with no
        area are not counted.

    Returns
    -------
    territory
    """
    counts: dict[str, dict[str, int]] = {}
    last_day: dict[str, dict[str, int]] = {}
    days = 0
    for k, (served, area_of) in enumerate(history):
        days += 1
        for job_id, courier_id in served.items():
            area = area_of.get(job_id)
            if area is None:
                continue
            per = counts.setdefault(area, {})
            per[courier_id] = per.get(courier_id, 0) + 1
            last_day.setdefault(area, {})[courier_id] = k
    return Territory(counts, last_day, days)


def preferred_couriers(
    territory: Territory,
    area_of: Mapping[str, str | None],
    couriers: Collection[str],
    *,
    min_share: float = DEFAULT_MIN_SHARE,
) -> dict[str, str]:
    """Return the preferred courier of each job of a new day: its area's usual courier.

    A courier absent today is skipped: the area's next courier by jobs served takes it over.
    An area whose usual courier served less than ``min_share`` of its learned jobs (among
    today's couriers) has no clear owner, and its jobs get no preference.

    Parameters
    ----------
    territory
        From :func:`learn_territory`.
    area_of
        Area of each job of the day (:func:`job_areas`).
    couriers
        Ids of today's couriers.
    min_share
        Least share of an area's learned jobs its usual courier must have served.

    Returns
    -------
    preferred
        ``job_id -> courier_id`` for the jobs whose area has a usual courier working today.
    """
    if not 0.0 <= min_share <= 1.0:
        msg = f"min_share must be between 0 and 1, got {min_share}"
        raise ValueError(msg)
    present = set(couriers)
    owner: dict[str, str | None] = {}
    for area in {a for a in area_of.values() if a is not None}:
        courier = territory.usual(area, present)
        keep = courier is not None and territory.usual_share(area, present) >= min_share
        owner[area] = courier if keep else None
    out: dict[str, str] = {}
    for job_id, job_area in area_of.items():
        chosen = owner.get(job_area) if job_area is not None else None
        if chosen is not None:
            out[job_id] = chosen
    return out


def territory_share(
    plan: Plan,
    area_of: Mapping[str, str | None],
    territory: Territory,
    *,
    couriers: Collection[str] | None = None,
) -> TerritoryShare:
    """Measure how many of a plan's routed jobs were served by their area's usual courier.

    Parameters
    ----------
    plan
        The day's plan.
    area_of
        Area of each job (:func:`job_areas`).
    territory
        Learned from the days *before* the plan's day.
    couriers
        Today's couriers: an area whose usual courier is absent falls to the next one, as in
        :func:`preferred_couriers` (every learned courier counts when None).

    Returns
    -------
    share
    """
    usual: dict[str, str | None] = {}
    routed = known = by_usual = 0
    for route in plan.routes:
        for stop in route.stops:
            routed += 1
            area = area_of.get(stop.job_id)
            if area is None:
                continue
            if area not in usual:
                usual[area] = territory.usual(area, couriers)
            if usual[area] is None:
                continue
            known += 1
            by_usual += usual[area] == route.courier_id
    return TerritoryShare(routed, known, by_usual)
