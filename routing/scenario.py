"""A realistic day of work for the synthetic Kon Tum province: the demo's and the tests' data.

The mix follows the Kon Tum post's services: dossier pickups at citizens' homes (thu gom hồ
sơ), returns of results, driving licences and certificates with an ID check (trả kết quả),
pension payouts in cash at the door (chi trả lương hưu), EMS deliveries and parcel pickups,
and dossiers carried from a home to the one-stop administrative centre on the same round
(pickup-delivery pairs). Windows follow office hours around the lunch break. A few jobs are
impossible on purpose (a commune cut off by a landslide, a village with no road, a parcel too
heavy for a motorbike, a window before the shift, a skill nobody has) so that every reason
code shows up in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geodata.closures import Closure, write_closures
from routing.clock import LOCAL_TZ
from routing.io import (
    COURIER_COLUMNS,
    DEPOT_COLUMNS,
    JOB_COLUMNS,
    courier_row,
    depot_row,
    job_row,
    parse_windows,
    write_csv,
)
from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow

if TYPE_CHECKING:
    from geodata.synthetic import SyntheticProvince

MORNING = "07:30-11:30"
AFTERNOON = "13:30-17:00"
ALL_DAY = f"{MORNING};{AFTERNOON}"
ONE_STOP_HOURS = "07:30-11:30;13:30-16:30"

# category, kind, share, skills, service minutes, priority
_MIX = (
    ("dossier_pickup", "pickup", 0.22, (), 8, 1),
    ("result_return", "delivery", 0.14, ("id_check",), 6, 2),
    ("licence_return", "delivery", 0.08, ("id_check",), 6, 2),
    ("pension_payout", "delivery", 0.14, ("cash_payout", "id_check"), 12, 3),
    ("ems_delivery", "delivery", 0.22, (), 4, 1),
    ("parcel_pickup", "pickup", 0.10, (), 6, 1),
    ("dossier_transfer", "pair", 0.05, (), 6, 2),
)
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Y", "A", "Đinh", "Võ", "Rơ Mah")
_GIVEN = (
    "Văn Hùng",
    "Thị Lan",
    "Blông",
    "Thị Hoa",
    "Minh",
    "Nhông",
    "Thị Mai",
    "Quang",
    "H'Linh",
    "Đức",
)


@dataclass(frozen=True, slots=True)
class DayScenario:
    """A generated day: the problem to plan and the road closures in force."""

    problem: Problem
    closures: list[Closure]
    day: date


def make_day(
    province: SyntheticProvince,
    *,
    n_jobs: int = 300,
    n_couriers: int | None = None,
    seed: int = 0,
    day: date = date(2026, 11, 30),
    impossible: bool = True,
) -> DayScenario:
    """Generate a day of jobs and couriers on the synthetic province.

    Parameters
    ----------
    province
        From :func:`geodata.synthetic.make_province`.
    n_jobs
        Number of jobs (a pair counts as two).
    n_couriers
        Couriers over all post offices; default one per 10 jobs, at least one per office,
        shared by workload (remote village jobs count three times).
    seed
        Random seed.
    day
        The plan's day.
    impossible
        Add the five impossible-by-construction jobs.

    Returns
    -------
    scenario
    """
    rng = np.random.default_rng(seed)
    G = province.graph
    node_xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    depots = tuple(
        Depot(
            depot_id=str(d["depot_id"]),
            name=str(d["name"]),
            lon=float(d["lon"]),  # type: ignore[arg-type]
            lat=float(d["lat"]),  # type: ignore[arg-type]
            opening=TimeWindow(7 * 3600, 17 * 3600 + 1800),
        )
        for d in province.depots
    )
    towns = {d.depot_id: (d.lon, d.lat) for d in depots}
    connected = [
        v for v in province.villages if v.connected and v is not province.landslide_village
    ]
    mountain = [v for v in connected if v.mountain]

    def near(lon: float, lat: float, radius_deg: float) -> tuple[float, float]:
        """Return a house by a road near (lon, lat): a road node in the radius, a few metres off."""
        d2 = (node_xy[:, 0] - lon) ** 2 + (node_xy[:, 1] - lat) ** 2
        candidates = np.flatnonzero(d2 <= radius_deg**2)
        k = int(rng.choice(candidates)) if candidates.size else int(np.argmin(d2))
        x, y = node_xy[k]
        return float(x + rng.normal(0, 1.5e-4)), float(y + rng.normal(0, 1.5e-4))

    def place() -> tuple[float, float]:
        """Return an address: 45 % in Kon Tum town, 30 % in district towns, 25 % in villages."""
        r = rng.random()
        if r < 0.45:
            return near(*towns["BC-KONTUM"], 0.035)
        if r < 0.75:
            key = str(rng.choice([d for d in towns if d != "BC-KONTUM"]))
            return near(*towns[key], 0.012)
        pool = mountain if (r < 0.82 and mountain) else connected
        v = pool[int(rng.integers(len(pool)))]
        return near(v.lon, v.lat, 0.004)

    shares = np.array([m[2] for m in _MIX])
    jobs: list[Job] = []
    k = 0
    while len(jobs) < n_jobs:
        category, kind, _, skills, service_min, priority = _MIX[
            int(rng.choice(len(_MIX), p=shares / shares.sum()))
        ]
        lon, lat = place()
        k += 1
        requested = datetime.combine(
            day - timedelta(days=int(rng.integers(0, 4))), datetime.min.time(), LOCAL_TZ
        )
        requested += timedelta(minutes=int(rng.integers(7 * 60 + 30, 16 * 60 + 30)))
        if requested.date() == day and requested.hour >= 11:
            requested -= timedelta(days=1)
        who = f"{_FAMILY[int(rng.integers(len(_FAMILY)))]} {_GIVEN[int(rng.integers(len(_GIVEN)))]}"
        windows = parse_windows(
            str(rng.choice([MORNING, AFTERNOON, ALL_DAY, ALL_DAY, _appointment(rng)]))
        )
        if kind == "pair":
            if len(jobs) + 2 > n_jobs:
                continue
            pair = f"P{k:04d}"
            olon, olat = province.one_stop_centre
            demand = Load(items=1, weight_g=int(rng.integers(200, 1500)))
            jobs.append(
                Job(
                    job_id=f"J{k:04d}P",
                    kind="pickup",
                    lon=lon,
                    lat=lat,
                    windows=parse_windows(MORNING),
                    service_s=service_min * 60,
                    pair_id=pair,
                    category=category,
                    recipient=who,
                    address=f"Nhà ông/bà {who}",
                    note="Hồ sơ nộp tại Trung tâm hành chính công",
                    demand=demand,
                    priority=priority,
                    requested_at=requested,
                )
            )
            jobs.append(
                Job(
                    job_id=f"J{k:04d}D",
                    kind="delivery",
                    lon=olon + rng.normal(0, 2e-5),
                    lat=olat,
                    windows=parse_windows(ONE_STOP_HOURS),
                    service_s=5 * 60,
                    pair_id=pair,
                    category=category,
                    recipient="Bộ phận một cửa",
                    address="Trung tâm Phục vụ hành chính công tỉnh",
                    demand=demand,
                    priority=priority,
                    requested_at=requested,
                )
            )
            continue
        cash = int(rng.integers(15, 60)) * 100_000 if category == "pension_payout" else 0
        weight = (
            int(rng.integers(1000, 12000))
            if category == "parcel_pickup"
            else int(rng.integers(100, 2500))
        )
        jobs.append(
            Job(
                job_id=f"J{k:04d}",
                kind=kind,  # type: ignore[arg-type]
                lon=lon,
                lat=lat,
                windows=windows,
                service_s=service_min * 60,
                demand=Load(items=1, weight_g=weight, cash_vnd=cash),
                skills=frozenset(skills),
                priority=priority,
                requested_at=requested,
                category=category,
                recipient=who,
                address=f"Nhà ông/bà {who}",
            )
        )
    if impossible:
        jobs += _impossible_jobs(province)
    couriers = _couriers(depots, jobs, province, n_couriers, rng)
    closure = Closure(
        "sat-lo-mang-ri",
        way_ids=tuple(province.landslide_way_ids),
        start_date=day - timedelta(days=3),
        end_date=day + timedelta(days=10),
        reason="Sạt lở đất, đường lên xã Măng Ri bị chia cắt",
    )
    problem = Problem(
        depots=depots,
        couriers=tuple(couriers),
        jobs=tuple(jobs),
        day=day,
        name=f"Kon Tum {day.isoformat()}",
    )
    return DayScenario(problem, [closure], day)


def _appointment(rng: np.random.Generator) -> str:
    start = int(rng.choice([8 * 60, 9 * 60, 10 * 60, 14 * 60, 15 * 60]))
    return f"{start // 60:02d}:{start % 60:02d}-{start // 60 + 2:02d}:00"


def _impossible_jobs(province: SyntheticProvince) -> list[Job]:
    """One job for each reason a plan must report."""
    landslide = province.landslide_village
    island = next((v for v in province.villages if not v.connected), None)
    town = next(d for d in province.depots if d["depot_id"] == "BC-KONTUM")
    tlon, tlat = float(town["lon"]) + 0.004, float(town["lat"]) + 0.003  # type: ignore[arg-type]
    jobs = [
        Job(
            job_id="X-SATLO",
            kind="delivery",
            lon=landslide.lon,
            lat=landslide.lat,
            windows=parse_windows(ALL_DAY),
            service_s=600,
            demand=Load(items=1, cash_vnd=2_000_000),
            skills=frozenset({"cash_payout"}),
            category="pension_payout",
            recipient="Già làng A Rang",
            address=landslide.name,
            note="Xã bị chia cắt do sạt lở",
        ),
        Job(
            job_id="X-NANG",
            kind="pickup",
            lon=tlon,
            lat=tlat,
            windows=parse_windows(ALL_DAY),
            service_s=600,
            demand=Load(items=1, weight_g=85_000),
            category="parcel_pickup",
            address="Kho hàng",
            note="Kiện 85 kg",
        ),
        Job(
            job_id="X-SOM",
            kind="delivery",
            lon=tlon,
            lat=tlat - 0.002,
            windows=parse_windows("05:00-05:30"),
            service_s=300,
            demand=Load(items=1),
            category="ems_delivery",
            note="Hẹn giao 5 giờ sáng",
        ),
        Job(
            job_id="X-DO",
            kind="delivery",
            lon=tlon - 0.003,
            lat=tlat,
            windows=parse_windows(ALL_DAY),
            service_s=300,
            demand=Load(items=1),
            skills=frozenset({"boat"}),
            category="ems_delivery",
            note="Cần đò qua sông",
        ),
    ]
    if island is not None:
        jobs.append(
            Job(
                job_id="X-COLAP",
                kind="delivery",
                lon=island.lon,
                lat=island.lat,
                windows=parse_windows(ALL_DAY),
                service_s=300,
                demand=Load(items=1),
                category="result_return",
                skills=frozenset({"id_check"}),
                address=island.name,
                note="Làng không có đường nối",
            )
        )
    return jobs


def _couriers(
    depots: tuple[Depot, ...],
    jobs: list[Job],
    province: SyntheticProvince,
    n_couriers: int | None,
    rng: np.random.Generator,
) -> list[Courier]:
    """Couriers per post office in proportion to the jobs around it (at least one each)."""
    from geodata.zones import assign_zones

    zone_of = assign_zones(province.zones, [j.lon for j in jobs], [j.lat for j in jobs]).zone_id
    depot_of_zone = dict(zip(province.zones["zone_id"], province.zones["depot_id"], strict=True))
    where = {d.depot_id: (d.lon, d.lat) for d in depots}
    workload = {d.depot_id: 1.0 for d in depots}
    for job, z in zip(jobs, zone_of, strict=True):
        if z is None:
            continue
        depot_id = depot_of_zone[z]
        lon, lat = where[depot_id]
        remote = np.hypot(job.lon - lon, job.lat - lat) > 0.05  # a village about 5 km or more out
        workload[depot_id] += 3.0 if remote else 1.0
    total = n_couriers if n_couriers is not None else max(len(depots), round(len(jobs) / 10))
    total = max(total, len(depots))
    weights = np.array([workload[d.depot_id] for d in depots])
    per = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(int)
    while per.sum() < total:
        per[int(np.argmax(weights / per))] += 1
    while per.sum() > total:
        per[int(np.argmax(np.where(per > 1, per, 0)))] -= 1
    couriers = []
    for depot, n in zip(depots, per.tolist(), strict=True):
        for i in range(n):
            cash_ok = i % 2 == 0
            couriers.append(
                Courier(
                    courier_id=f"{depot.depot_id.removeprefix('BC-')}-{i + 1:02d}",
                    depot_id=depot.depot_id,
                    name=f"Bưu tá {_FAMILY[int(rng.integers(len(_FAMILY)))]} {_GIVEN[int(rng.integers(len(_GIVEN)))]}",
                    shift=TimeWindow(7 * 3600, 17 * 3600),
                    break_window=TimeWindow(11 * 3600 + 1800, 13 * 3600 + 1800),
                    break_duration_s=3600,
                    capacity=Load(items=45, weight_g=40_000, cash_vnd=30_000_000 if cash_ok else 0),
                    skills=frozenset({"id_check", "cash_payout"} if cash_ok else {"id_check"}),
                )
            )
    return couriers


def write_scenario(
    scenario: DayScenario, province: SyntheticProvince, folder: Path | str
) -> dict[str, Path]:
    """Write the day's input files as a dispatcher would receive them."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    p = scenario.problem
    paths = {
        "jobs": write_csv([job_row(j) for j in p.jobs], out / "jobs.csv", JOB_COLUMNS),
        "couriers": write_csv(
            [courier_row(c) for c in p.couriers], out / "couriers.csv", COURIER_COLUMNS
        ),
        "depots": write_csv([depot_row(d) for d in p.depots], out / "depots.csv", DEPOT_COLUMNS),
        "closures": write_closures(scenario.closures, out / "closures.geojson"),
    }
    zones = out / "zones.geojson"
    province.zones.to_file(zones, driver="GeoJSON")
    paths["zones"] = zones
    return paths
