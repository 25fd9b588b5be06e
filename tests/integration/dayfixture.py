"""A small, realistic day in Kon Tum town for the service tests: one post office, 10 couriers."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from geodata.synthetic import SyntheticProvince
from routing.io import (
    COURIER_COLUMNS,
    DEPOT_COLUMNS,
    JOB_COLUMNS,
    courier_row,
    depot_row,
    job_row,
    write_csv,
)
from routing.model import Load, Problem
from routing.scenario import make_day

OFFICE = "BC-KONTUM"


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dx = (lon2 - lon1) * 111.32 * math.cos(math.radians((lat1 + lat2) / 2))
    dy = (lat2 - lat1) * 110.57
    return math.hypot(dx, dy)


def town_day(
    province: SyntheticProvince,
    *,
    n_couriers: int = 10,
    radius_km: float = 6.0,
    n_jobs: int = 40,
    seed: int = 1,
) -> Problem:
    """Return a day of jobs near Kon Tum post office, served by ``n_couriers`` small-capacity couriers.

    Couriers carry at most 2 items, so a plan needs every one of them.
    """
    sc = make_day(province, n_jobs=240, n_couriers=12, seed=seed, impossible=False)
    p = sc.problem
    depot = next(d for d in p.depots if d.depot_id == OFFICE)
    near = {j.job_id for j in p.jobs if _km(depot.lon, depot.lat, j.lon, j.lat) <= radius_km}
    partner = p.pair_partner()
    by_id = p.job_by_id()
    chosen: list[str] = []
    for j in p.jobs:
        if len(chosen) >= n_jobs:
            break
        if (
            j.job_id in near
            and j.job_id not in chosen
            and (j.job_id not in partner or partner[j.job_id] in near)
        ):
            chosen += [j.job_id] + ([partner[j.job_id]] if j.job_id in partner else [])
    jobs = [by_id[k] for k in sorted(chosen, key=lambda k: p.jobs.index(by_id[k]))]
    skills = frozenset().union(*(j.skills for j in jobs))
    jobs = [
        replace(
            j,
            depot_id=None,
            demand=Load(
                items=1,
                weight_g=min(j.demand.weight_g, 2000),
                cash_vnd=min(j.demand.cash_vnd, 2_000_000),
            ),
        )
        for j in jobs
    ]
    base = next(c for c in p.couriers if c.depot_id == OFFICE)
    couriers = [
        replace(
            base,
            courier_id=f"C{i:02d}",
            name=f"Bưu tá {i:02d}",
            end_depot_id=None,
            capacity=Load(items=2, weight_g=40_000, cash_vnd=20_000_000),
            skills=skills,
        )
        for i in range(1, n_couriers + 1)
    ]
    return Problem((depot,), tuple(couriers), tuple(jobs), day=sc.day, name="town day")


def write_day(problem: Problem, folder: Path) -> dict[str, Path]:
    """Write depots.csv, couriers.csv and jobs.csv as a dispatcher would upload them."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "depots": write_csv(
            [depot_row(d) for d in problem.depots], folder / "depots.csv", DEPOT_COLUMNS
        ),
        "couriers": write_csv(
            [courier_row(c) for c in problem.couriers], folder / "couriers.csv", COURIER_COLUMNS
        ),
        "jobs": write_csv([job_row(j) for j in problem.jobs], folder / "jobs.csv", JOB_COLUMNS),
    }
