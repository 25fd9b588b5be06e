"""Small generated problems for routing tests: seeded, offline, Euclidean matrices."""

from __future__ import annotations

import numpy as np

from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow
from routing.plan import Plan, Route, Stop, Unassigned

H = 3600
SPEED_M_PER_S = 30_000 / 3600  # 30 km/h
BASE_LON, BASE_LAT = 108.0, 14.35  # Kon Tum


def matrices(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Return (durations s, distances m) from lon/lat via a flat projection (1 deg ~ 111 km)."""
    pts = [(d.lon, d.lat) for d in problem.depots] + [(j.lon, j.lat) for j in problem.jobs]
    xy = np.asarray(pts) * 111_000.0
    dist = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    dur = np.ceil(dist / SPEED_M_PER_S).astype(np.int64)
    return dur, dist


def at(dx_km: float, dy_km: float) -> tuple[float, float]:
    """Return (lon, lat) ``dx_km`` east and ``dy_km`` north of the base point."""
    return BASE_LON + dx_km / 111.0, BASE_LAT + dy_km / 111.0


def courier(
    cid: str,
    depot_id: str = "D",
    *,
    shift: tuple[int, int] = (7 * H, 17 * H),
    capacity: Load | None = None,
    skills: frozenset[str] = frozenset(),
    brk: tuple[int, int, int] | None = None,
) -> Courier:
    """Build a courier; ``brk`` is (window start, window end, duration)."""
    return Courier(
        courier_id=cid,
        depot_id=depot_id,
        shift=TimeWindow(*shift),
        capacity=capacity or Load(items=100, weight_g=100_000, cash_vnd=100_000_000),
        skills=skills,
        break_window=TimeWindow(brk[0], brk[1]) if brk else None,
        break_duration_s=brk[2] if brk else 0,
    )


def job(
    jid: str,
    dx_km: float,
    dy_km: float,
    *,
    kind: str = "delivery",
    windows: tuple[tuple[int, int], ...] = ((7 * H, 17 * H),),
    service_s: int = 300,
    demand: Load | None = None,
    **kw: object,
) -> Job:
    lon, lat = at(dx_km, dy_km)
    return Job(
        job_id=jid,
        kind=kind,  # type: ignore[arg-type]
        lon=lon,
        lat=lat,
        windows=tuple(TimeWindow(a, b) for a, b in windows),
        service_s=service_s,
        demand=demand or Load(items=1, weight_g=500),
        **kw,  # type: ignore[arg-type]
    )


def depot(did: str = "D", dx_km: float = 0.0, dy_km: float = 0.0) -> Depot:
    lon, lat = at(dx_km, dy_km)
    return Depot(did, f"Bưu cục {did}", lon, lat, TimeWindow(6 * H, 18 * H))


def random_problem(
    seed: int,
    *,
    n_jobs: int = 12,
    n_couriers: int = 2,
    radius_km: float = 8.0,
    tight_windows: bool = True,
    pickups: bool = True,
    pairs: int = 0,
    breaks: bool = False,
    skills: bool = False,
    cash: bool = False,
    multi_windows: bool = False,
    capacity_items: int = 100,
    cash_cap_vnd: int = 100_000_000,
    skilled_couriers: int = 1,
) -> Problem:
    """Generate a small province-like problem with the requested features."""
    rng = np.random.default_rng(seed)
    depots = (depot("D"),)
    couriers = []
    for k in range(n_couriers):
        couriers.append(
            courier(
                f"c{k}",
                capacity=Load(items=capacity_items, weight_g=50_000, cash_vnd=cash_cap_vnd),
                skills=frozenset({"cash"}) if (skills and k < skilled_couriers) else frozenset(),
                brk=(11 * H + 1800, 13 * H + 1800, 3600) if breaks else None,
            )
        )
    jobs: list[Job] = []
    for i in range(n_jobs):
        dx, dy = rng.uniform(-radius_km, radius_km, size=2)
        kind = "pickup" if (pickups and rng.random() < 0.4) else "delivery"
        if tight_windows:
            a = int(rng.integers(7 * H, 15 * H))
            windows: tuple[tuple[int, int], ...] = ((a, a + 2 * H),)
        else:
            windows = ((7 * H, 17 * H),)
        if multi_windows and rng.random() < 0.5:
            windows = ((7 * H + 1800, 11 * H), (13 * H + 1800, 16 * H + 1800))
        amount = int(rng.integers(1, 4))
        cash_vnd = 0
        needs: frozenset[str] = frozenset()
        if cash and kind == "delivery" and rng.random() < 0.5:
            cash_vnd = int(rng.integers(1, 6)) * 1_000_000
            if skills:
                needs = frozenset({"cash"})
        jobs.append(
            job(
                f"j{i}",
                float(dx),
                float(dy),
                kind=kind,
                windows=windows,
                service_s=int(rng.integers(120, 600)),
                demand=Load(items=amount, weight_g=amount * 400, cash_vnd=cash_vnd),
                skills=needs,
                priority=int(rng.integers(1, 6)),
            )
        )
    for k in range(pairs):
        dx, dy = rng.uniform(-radius_km, radius_km, size=2)
        ex, ey = rng.uniform(-radius_km, radius_km, size=2)
        load = Load(items=1, weight_g=300)
        jobs.append(
            job(f"p{k}", float(dx), float(dy), kind="pickup", demand=load, pair_id=f"pair{k}")
        )
        jobs.append(
            job(f"d{k}", float(ex), float(ey), kind="delivery", demand=load, pair_id=f"pair{k}")
        )
    return Problem(depots, tuple(couriers), tuple(jobs), name=f"random-{seed}")


def plan_from_sequences(
    problem: Problem,
    sequences: dict[str, list[str]],
    durations: np.ndarray,
    distances: np.ndarray,
    *,
    break_start_s: dict[str, int] | None = None,
) -> Plan:
    """Schedule job-id sequences per courier at the earliest times (no break) into a Plan.

    Jobs not in any sequence are unassigned with ``dropped_low_priority``.
    """
    routes = []
    routed: set[str] = set()
    positions = {j.job_id: i for i, j in enumerate(problem.jobs)}
    couriers = problem.courier_by_id()
    for cid, seq in sequences.items():
        c = couriers[cid]
        start_loc = problem.depot_index(c.depot_id)
        end_loc = problem.depot_index(c.end_depot)
        t = start = c.shift.start_s
        prev = start_loc
        jobs = [problem.jobs[positions[j]] for j in seq]
        load = problem.start_load(list(seq))
        stops = []
        dist = drive = wait = 0
        for j in jobs:
            loc = problem.job_location(positions[j.job_id])
            arrival = t + int(durations[prev, loc])
            begin = j.earliest_start_from(arrival)
            begin = arrival if begin is None else begin
            load = load.serve(j.kind, j.demand)
            stops.append(
                Stop(j.job_id, loc, arrival, begin, begin + j.service_s, begin - arrival, load)
            )
            dist += int(distances[prev, loc])
            drive += int(durations[prev, loc])
            wait += begin - arrival
            t = begin + j.service_s
            prev = loc
            routed.add(j.job_id)
        dist += int(distances[prev, end_loc])
        drive += int(durations[prev, end_loc])
        end = t + int(durations[prev, end_loc])
        routes.append(
            Route(
                cid,
                c.depot_id,
                start,
                end,
                tuple(stops),
                dist,
                drive,
                end - start,
                wait,
                (break_start_s or {}).get(cid),
                c.end_depot,
                c.break_duration_s,
            )
        )
    unassigned = [
        Unassigned(j.job_id, "dropped_low_priority") for j in problem.jobs if j.job_id not in routed
    ]
    return Plan(tuple(routes), tuple(unassigned), 0)
