"""Plan a whole day: validated inputs + road network + options -> checked plan with road geometry.

This is the one pipeline; the command line, the service's worker and the benchmarks call it.

1. **Snap** every post office and job onto the day's road graph; addresses too far from any
   road are reported (``far_from_road``), never moved silently.
2. **Close** the roads closed that day (landslides, works).
3. **Assign** jobs to post offices: the office named on the job, else the office of the
   job's zone (when zones are given), else the office nearest by travel time. Both halves of
   a pickup-delivery pair go with the pickup.
4. **Split** each office's day into pieces of at most ``max_jobs_per_piece`` jobs (a sweep
   around the office, couriers shared in proportion, the skilled ones where their skills are
   needed), so every model stays small enough to solve well; an office's whole day up to that
   size is one piece, whose couriers can then share all its jobs. With a territory
   (``preferred`` couriers), each courier goes to the piece holding most of their usual
   communes' jobs, and a job whose courier sits in another piece follows them while that
   piece has room.
5. **Solve** the pieces in parallel worker processes (matrices per piece), then **check**
   each piece's plan with the independent checker against the same matrices.
6. **Stitch** the pieces into one plan (location indices of the whole day) and draw each leg
   along the roads.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from geodata.closures import Closure, closed_edges
from geodata.geometry import leg_coords, polyline_length_m
from geodata.matrix import Router
from geodata.snap import DEFAULT_MAX_SNAP_M, Snapped, Snapper
from routing.check import Violation, check_plan
from routing.model import UNREACHABLE, Courier, Problem
from routing.params import SolverParams
from routing.plan import Plan, ReasonCode, Route, Unassigned

if TYPE_CHECKING:
    import geopandas as gpd

    from geodata.compact import CompactGraph
    from routing.solver import SolveGuide

logger = logging.getLogger(__name__)


class PlanCallbacks(Protocol):
    """Observe a day being planned (progress bars, live progress in the service)."""

    def on_stage(self, stage: str, done: int, total: int) -> None:
        """Report progress of a stage: snapping, matrices, solving, checking, geometry."""

    def on_improvement(
        self, piece: str, elapsed_s: float, objective: int, assigned_jobs: int
    ) -> None:
        """Report a better solution of one piece."""


class NullPlanCallbacks:
    """Callbacks that ignore everything."""

    def on_stage(self, stage: str, done: int, total: int) -> None:
        """Ignore stage progress."""

    def on_improvement(
        self, piece: str, elapsed_s: float, objective: int, assigned_jobs: int
    ) -> None:
        """Ignore improvements."""


#: Cost of giving a job to another courier than its commune's usual one (seconds of driving).
#: A simulated fortnight (``tests/benchmarks/bench_territory.py``, 2026-12-03): at 300 jobs a
#: day 300 s kept 78.4 % of the jobs with their usual courier (+0.10 % km), 450 s 79.6 %
#: (+0.39 %), 600 s 82.0 % (+1.94 %); at 120 jobs a day 300 s 93.7 % (+1.40 %), 600 s 96.5 %
#: (+2.53 %). The target is 80 % for at most 3 % more kilometres.
DEFAULT_TERRITORY_COST_S = 600

#: Default most jobs of one solved piece. The solver (a PyVRP start, then OR-Tools) plans
#: office days of this size well within their share of the time; pieces of 60 jobs left a
#: town office's couriers one or two to a piece, unable to help each other, and a piece
#: without a courier holding a skill its jobs need (bench_province.py, results/README.md).
MAX_JOBS_PER_PIECE = 200
#: The default wall time of a plan, (jobs of the day, seconds), straight lines in between
#: and the last slope beyond: a dispatcher waits 20 s for a small day, 22 s for 300 jobs,
#: 55 s from 2,000 to 5,000 jobs and 150 s for 10,000 (issue 12 asks at most 60 s and 180 s).
#: Offices' pieces of 150-200 jobs need the time: on a 2,000-job day (quiet machine) 34 s
#: left them a median 2.5-2.6 % above their best knowns (2-3 of 14 pieces within 1 %, two
#: jobs left out), 55 s 1.3-1.8 % (4-6 of 14, every job served). Days over 5,000 jobs get
#: more search per job: with 60 % of the 10,000-job day's time, the plan served 0.7 % fewer
#: jobs than the 60-job pieces did; with 165 s, 2.8 % more.
DEFAULT_TIME_LIMITS: tuple[tuple[int, float], ...] = (
    (0, 20.0),
    (500, 23.5),
    (2_000, 55.0),
    (5_000, 55.0),
    (10_000, 150.0),
)


def default_time_limit_s(n_jobs: int) -> float:
    """Return the default wall time of a day's plan, seconds: it grows with the day's jobs.

    The CLI and the service use it when no limit is given (see :data:`DEFAULT_TIME_LIMITS`).
    """
    jobs = [n for n, _ in DEFAULT_TIME_LIMITS]
    seconds = [s for _, s in DEFAULT_TIME_LIMITS]
    n = max(0, n_jobs)
    if n <= jobs[-1]:
        return float(np.interp(n, jobs, seconds))
    slope = (seconds[-1] - seconds[-2]) / (jobs[-1] - jobs[-2])
    return seconds[-1] + slope * (n - jobs[-1])


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Options of :func:`plan_day`.

    Parameters
    ----------
    time_limit_s
        Wall time of the whole plan, seconds: from the call to the checked plan with its road
        geometry, as a dispatcher waiting for it counts; None for
        :func:`default_time_limit_s` of the day's jobs. Snapping and matrices come first;
        what remains (less an allowance for checking, stitching and drawing) is shared among
        the pieces by their weight (:func:`piece_weight`: jobs and the travel at stake) and
        the ``workers`` that solve them side by side (see :func:`share_time`). A limit
        shorter than the set-up itself is overrun: every piece still searches at least
        :data:`MIN_SEARCH_S`.
    seed
        Random seed of the search.
    workers
        Processes for matrices and for solving pieces.
    max_jobs_per_piece
        Larger office days are split into pieces of at most this many jobs (see
        :data:`MAX_JOBS_PER_PIECE`).
    max_snap_m
        Addresses farther than this from every road are reported, not routed.
    vehicle_fixed_cost_s
        Cost of using one more courier, in seconds of driving.
    geometry
        Draw each leg along the roads (needed for maps; skip it in benchmarks of the solve).
    piece_time_limit_s
        Search time of a full piece instead of a wall time for the day (benchmarks that
        compare solves piece by piece): a piece of :data:`FULL_TIME_JOBS` jobs or more
        searches this long, a smaller one a share in proportion to its jobs (at least
        :data:`MIN_PIECE_TIME_S`), whatever the whole day then takes. ``time_limit_s`` is not
        used when this is set.
    territory_cost_s
        Cost of serving a job with another courier than its preferred one (``preferred`` of
        :func:`plan_day`, the usual courier of its commune), in seconds of driving. Measured
        by ``tests/benchmarks/bench_territory.py``.
    balance
        Even out working time among each post office's couriers (see
        ``SolverParams.balance``): balanced within each piece, the pieces of an office
        sharing its couriers by their jobs. On by default for a post office's day.
    """

    time_limit_s: float | None = None
    seed: int = 0
    workers: int = 2
    max_jobs_per_piece: int = MAX_JOBS_PER_PIECE
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    vehicle_fixed_cost_s: int = 1800
    geometry: bool = True
    piece_time_limit_s: float | None = None
    territory_cost_s: int = DEFAULT_TERRITORY_COST_S
    balance: bool = True

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            msg = f"time_limit_s must be positive, got {self.time_limit_s}"
            raise ValueError(msg)
        if self.piece_time_limit_s is not None and not self.piece_time_limit_s > 0:
            msg = f"piece_time_limit_s must be positive, got {self.piece_time_limit_s}"
            raise ValueError(msg)
        if self.territory_cost_s < 0:
            msg = f"territory_cost_s must be >= 0, got {self.territory_cost_s}"
            raise ValueError(msg)
        if self.workers < 1 or self.max_jobs_per_piece < 2:
            msg = "workers must be >= 1 and max_jobs_per_piece >= 2"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Piece:
    """One independently solved part of the day: an office's couriers and some of its jobs."""

    piece_id: str
    depot_id: str
    problem: Problem
    job_positions: tuple[int, ...]  # positions in the day's problem.jobs
    depot_positions: tuple[int, ...]  # positions in the day's problem.depots


@dataclass(slots=True)
class PieceResult:
    """A piece's plan with the matrices it was solved and checked on."""

    piece: Piece
    plan: Plan
    violations: list[Violation]
    seconds: float
    durations: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int64]
    time_limit_s: float = 0.0  # the search time the piece was given


@dataclass(slots=True)
class DayPlan:
    """The planned day: one plan over all offices, its checks, road geometry and timings."""

    problem: Problem
    plan: Plan
    violations: list[Violation]
    pieces: list[PieceResult]
    snapped: Snapped
    legs: dict[str, list[list[tuple[float, float]]]] = field(default_factory=dict)
    leg_lengths_m: dict[str, list[float]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_geojson(self) -> dict[str, Any]:
        """Return routes (LineStrings along the roads) and stops (Points) as RFC 7946 GeoJSON."""
        from routing.export import plan_geojson

        return plan_geojson(self)


# -- the pipeline ---------------------------------------------------------------------------


def plan_day(
    problem: Problem,
    graph: CompactGraph,
    *,
    zones: gpd.GeoDataFrame | None = None,
    closures: Sequence[Closure] = (),
    options: PlanOptions | None = None,
    callbacks: PlanCallbacks | None = None,
    preferred: Mapping[str, str] | None = None,
) -> DayPlan:
    """Plan every courier's round of a day.

    Parameters
    ----------
    problem
        The day's post offices, couriers and jobs (validated).
    graph
        The region's compact road graph for the couriers' vehicle profile.
    zones
        Zone polygons with ``zone_id`` and ``depot_id`` columns, or None.
    closures
        Road closures; those active on ``problem.day`` are applied.
    options
        See :class:`PlanOptions`.
    callbacks
        Progress observer.
    preferred
        Preferred courier per job id (the usual courier of its commune,
        :func:`routing.territory.preferred_couriers`): couriers go to the piece holding most
        of their preferred jobs, and serving a job with another courier costs
        ``options.territory_cost_s``.

    Returns
    -------
    day_plan
        Every job is on exactly one route or unassigned with a reason; ``violations`` lists
        what the independent checker found (empty for a sound plan).
    """
    opts = options or PlanOptions()
    time_limit_s = (
        opts.time_limit_s
        if opts.time_limit_s is not None
        else default_time_limit_s(len(problem.jobs))
    )
    cb: PlanCallbacks = callbacks or NullPlanCallbacks()
    timings: dict[str, float] = {}
    started = time.monotonic()  # the wall-time limit counts from here (a clock all processes share)
    t0 = time.perf_counter()

    # 1-4. snap, close, assign jobs to offices, split into pieces
    cut = cut_day(
        problem,
        graph,
        zones=zones,
        closures=closures,
        options=opts,
        callbacks=cb,
        preferred=preferred,
        timings=timings,
    )
    pieces, snapped, router = cut.pieces, cut.snapped, cut.router
    pre_unassigned = cut.pre_unassigned
    nd = len(problem.depots)
    preferred = dict(preferred or {})

    # 5. matrices per piece, solved in parallel
    t2 = time.perf_counter()
    matrices = _matrices(pieces, nd, snapped, router, opts.workers, cb)
    timings["matrices_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    params = piece_params(opts, opts.piece_time_limit_s or time_limit_s)
    deadline = None
    if opts.piece_time_limit_s is None:
        # the wall time left after snapping and matrices, less the finish, is the solve's
        finish = finish_allowance_s(len(problem.jobs), geometry=opts.geometry)
        deadline = started + time_limit_s - finish
    guides = _territory_guides(pieces, preferred, opts.territory_cost_s)
    results = _solve_pieces(
        pieces, matrices, params, opts.workers, cb, deadline=deadline, guides=guides
    )
    timings["solve_s"] = time.perf_counter() - t3

    # 6. check, stitch, draw
    t4 = time.perf_counter()
    cb.on_stage("checking", 0, len(results))
    violations: list[Violation] = []
    for k, r in enumerate(results):
        r.violations = check_plan(r.piece.problem, r.plan, r.durations, r.distances)
        violations += r.violations
        cb.on_stage("checking", k + 1, len(results))
    plan = _stitch(problem, results, pre_unassigned)
    violations += completeness(problem, plan)
    timings["check_s"] = time.perf_counter() - t4
    if violations:
        logger.warning(
            "plan has %d violations: %s", len(violations), "; ".join(map(str, violations[:5]))
        )

    day_plan = DayPlan(problem, plan, violations, results, snapped, timings=timings)
    if opts.geometry:
        t5 = time.perf_counter()
        _draw(day_plan, router, cb, opts.workers)
        timings["geometry_s"] = time.perf_counter() - t5
    timings["total_s"] = time.perf_counter() - t0
    logger.info(
        "planned %d jobs: %d routes, %d unassigned, %d violations in %.1f s",
        len(problem.jobs),
        len(plan.routes),
        len(plan.unassigned),
        len(violations),
        timings["total_s"],
    )
    return day_plan


#: Share of a piece's search that PyVRP gets, and the seconds OR-Tools' search from PyVRP's
#: start gets at most (``SolverParams.ortools_after_pyvrp_max_s``): OR-Tools takes 30 % of a
#: short town piece's search and a second of a long mountain one's, where PyVRP's extra
#: seconds go further. Mean objective gap on the 2,000-job day, twelve seeds
#: (``tests/benchmarks/results/README.md``): 1.46 % with 20 % of every piece's search for
#: OR-Tools, 1.31 % with this.
PIECE_PYVRP_SHARE = 0.7
PIECE_ORTOOLS_MAX_S = 1.0


def piece_params(options: PlanOptions, time_limit_s: float) -> SolverParams:
    """Return the solver parameters of a day's pieces under ``options``.

    Travel time is the arc cost, a courier used costs ``vehicle_fixed_cost_s``; balance as
    the options say; PyVRP's share of the search as :data:`PIECE_PYVRP_SHARE` says.
    ``time_limit_s`` stands until each piece gets its share.
    """
    return SolverParams(
        time_limit_s=time_limit_s,
        seed=options.seed,
        objective="duration",
        vehicle_fixed_cost=options.vehicle_fixed_cost_s,
        balance=options.balance,
        pyvrp_share=PIECE_PYVRP_SHARE,
        ortools_after_pyvrp_max_s=PIECE_ORTOOLS_MAX_S,
    )


@dataclass(slots=True)
class DayCut:
    """A day cut into the pieces :func:`plan_day` solves (see :func:`cut_day`)."""

    pieces: list[Piece]
    snapped: Snapped
    router: Router
    pre_unassigned: list[Unassigned]


def cut_day(
    problem: Problem,
    graph: CompactGraph,
    *,
    zones: gpd.GeoDataFrame | None = None,
    closures: Sequence[Closure] = (),
    options: PlanOptions | None = None,
    callbacks: PlanCallbacks | None = None,
    preferred: Mapping[str, str] | None = None,
    timings: dict[str, float] | None = None,
) -> DayCut:
    """Snap the day, close its closed roads, assign jobs to offices and split into pieces.

    Steps 1-4 of :func:`plan_day` (which calls it), also used by the benchmark that solves a
    day's pieces one by one (``tests/benchmarks/bench_days.py``), so both cut a day alike.
    Parameters as :func:`plan_day`'s; ``timings`` receives ``snapping_s`` and ``assign_s``.

    Returns
    -------
    cut
        The pieces (each with its couriers), the snapped locations (depots then jobs), the
        router with the day's closures, and the jobs reported before solving (far from any
        road, a pair's partner of one, no courier at their office).
    """
    opts = options or PlanOptions()
    cb: PlanCallbacks = callbacks or NullPlanCallbacks()
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()

    # 1. snap depots then jobs (location order of the whole day)
    cb.on_stage("snapping", 0, problem.num_locations)
    snapper = Snapper(graph)
    lon = [d.lon for d in problem.depots] + [j.lon for j in problem.jobs]
    lat = [d.lat for d in problem.depots] + [j.lat for j in problem.jobs]
    snapped = snapper.snap(lon, lat, max_distance_m=opts.max_snap_m)
    cb.on_stage("snapping", problem.num_locations, problem.num_locations)
    timings["snapping_s"] = time.perf_counter() - t0

    # 2. the day's closures
    t1 = time.perf_counter()
    closed = closed_edges(graph, list(closures), day=problem.day, snapper=snapper)
    router = Router(graph, closed=closed, workers=opts.workers)

    # 3-4. assign jobs to offices and split into pieces
    pre_unassigned: list[Unassigned] = []
    nd = len(problem.depots)
    for pos, job in enumerate(problem.jobs):
        if snapped.far[nd + pos]:
            detail = f"{snapped.distance_m[nd + pos]:.0f} m from the nearest road"
            pre_unassigned.append(Unassigned(job.job_id, ReasonCode.FAR_FROM_ROAD, detail))
    far_ids = {u.job_id for u in pre_unassigned}
    partner = problem.pair_partner()
    for job_id in list(far_ids):
        other = partner.get(job_id)
        if other and other not in far_ids:
            far_ids.add(other)
            pre_unassigned.append(
                Unassigned(other, ReasonCode.PAIR_INCOMPLETE, f"partner {job_id} is off the road")
            )
    office = _assign_offices(problem, snapped, router, zones, skip=far_ids)
    preferred = dict(preferred or {})
    pieces, orphans = _split(problem, office, opts.max_jobs_per_piece, snapped, preferred)
    pre_unassigned += orphans
    timings["assign_s"] = time.perf_counter() - t1
    return DayCut(pieces, snapped, router, pre_unassigned)


def _assign_offices(
    problem: Problem,
    snapped: Snapped,
    router: Router,
    zones: gpd.GeoDataFrame | None,
    *,
    skip: set[str],
) -> dict[int, str]:
    """Return the office of each job position (pairs follow their pickup)."""
    nd = len(problem.depots)
    office: dict[int, str] = {}
    undecided = [p for p, j in enumerate(problem.jobs) if j.job_id not in skip]
    if zones is not None and "depot_id" in zones.columns and undecided:
        from geodata.zones import assign_zones

        jobs = [problem.jobs[p] for p in undecided]
        found = assign_zones(zones, [j.lon for j in jobs], [j.lat for j in jobs]).zone_id
        depot_of = dict(zip(zones["zone_id"], zones["depot_id"].astype(str), strict=True))
        known = {d.depot_id for d in problem.depots}
        for p, z in zip(undecided, found, strict=True):
            if z is not None and depot_of.get(z) in known:
                office[p] = depot_of[z]
    for p in undecided:
        if problem.jobs[p].depot_id is not None:
            office[p] = str(problem.jobs[p].depot_id)
    rest = [p for p in undecided if p not in office]
    if rest:
        # nearest office by travel time from the office; straight line when no road leads there
        idx = list(range(nd)) + [nd + p for p in rest]
        times = router.matrix(snapped.subset(idx), distances=False).time_s[:nd, nd:]
        straight = np.hypot(
            np.subtract.outer([d.lon for d in problem.depots], [problem.jobs[p].lon for p in rest]),
            np.subtract.outer([d.lat for d in problem.depots], [problem.jobs[p].lat for p in rest]),
        )
        for k, p in enumerate(rest):
            col = times[:, k].astype(float)
            best = (
                int(np.argmin(col))
                if np.isfinite(col).any() and col.min() < (1 << 40)
                else int(np.argmin(straight[:, k]))
            )
            office[p] = problem.depots[best].depot_id
    # pairs go with their pickup
    pickup_of = {
        j.pair_id: p for p, j in enumerate(problem.jobs) if j.pair_id and j.kind == "pickup"
    }
    for p, job in enumerate(problem.jobs):
        if job.pair_id is not None and job.kind == "delivery" and p in office:
            q = pickup_of.get(job.pair_id)
            if q is not None and q in office:
                office[p] = office[q]
    return office


def _split(
    problem: Problem,
    office: dict[int, str],
    max_jobs: int,
    snapped: Snapped,
    preferred: Mapping[str, str] | None = None,
) -> tuple[list[Piece], list[Unassigned]]:
    """Cut each office's jobs into pieces by a sweep around the office; share its couriers."""
    pieces: list[Piece] = []
    orphans: list[Unassigned] = []
    depot_pos = {d.depot_id: i for i, d in enumerate(problem.depots)}
    nd = len(problem.depots)
    for depot in problem.depots:
        positions = [p for p, d in office.items() if d == depot.depot_id]
        if not positions:
            continue
        couriers = [c for c in problem.couriers if c.depot_id == depot.depot_id]
        if not couriers:
            orphans += [
                Unassigned(
                    problem.jobs[p].job_id, ReasonCode.NO_COURIER, f"no courier at {depot.depot_id}"
                )
                for p in positions
            ]
            continue
        units = _pair_units(problem, positions)
        n_pieces = min(len(couriers), max(1, math.ceil(len(positions) / max_jobs)))
        groups = _sweep(units, n_pieces, snapped, nd, depot_pos[depot.depot_id])
        sizes = np.array([len(g) for g in groups], dtype=float)
        share = np.maximum(1, np.floor(sizes / sizes.sum() * len(couriers))).astype(int)
        while share.sum() > len(couriers):
            share[int(np.argmax(share))] -= 1
        while share.sum() < len(couriers):
            share[int(np.argmax(sizes / share))] += 1
        crews = _crews(problem, couriers, groups, share.tolist(), preferred or {})
        groups = _follow_couriers(problem, groups, crews, preferred or {}, max_jobs)
        for k, (group, piece_couriers) in enumerate(zip(groups, crews, strict=True)):
            end_ids = {c.end_depot for c in piece_couriers} | {depot.depot_id}
            depots = [depot] + [
                d for d in problem.depots if d.depot_id in end_ids and d.depot_id != depot.depot_id
            ]
            jobs = tuple(problem.jobs[p] for p in group)
            sub = Problem(
                depots=tuple(depots),
                couriers=tuple(piece_couriers),
                jobs=jobs,
                day=problem.day,
                name=f"{problem.name} {depot.depot_id}#{k + 1}",
            )
            pieces.append(
                Piece(
                    piece_id=f"{depot.depot_id}#{k + 1}",
                    depot_id=depot.depot_id,
                    problem=sub,
                    job_positions=tuple(group),
                    depot_positions=tuple(depot_pos[d.depot_id] for d in depots),
                )
            )
    return pieces, orphans


def _crews(
    problem: Problem,
    couriers: list[Courier],
    groups: list[list[int]],
    sizes: list[int],
    preferred: Mapping[str, str],
) -> list[list[Courier]]:
    """Give each piece its number of couriers: those with most preferred jobs in it.

    Without preferences the couriers are dealt by :func:`_deal_couriers` (skilled ones where
    their skills are needed). With them, couriers go to the pieces so that as many jobs as
    possible share a piece with their preferred courier, a skilled courier also counting the
    piece's jobs that need their skills (an assignment of couriers to the pieces' seats);
    couriers with no preferred job today fill the seats left, near their list position.
    """
    order = [c.courier_id for c in couriers]
    if preferred and len(groups) > 1:
        from scipy.optimize import linear_sum_assignment

        at = {c: k for k, c in enumerate(order)}
        score = np.zeros((len(couriers), len(groups)), dtype=np.int64)
        for g, group in enumerate(groups):
            for p in group:
                c = preferred.get(problem.jobs[p].job_id)
                if c in at:
                    score[at[c], g] += 2
        if score.any():
            # a skilled courier also counts the piece's jobs needing their skills (cash payouts)
            for g, group in enumerate(groups):
                needs = Counter(s for p in group for s in problem.jobs[p].skills)
                for row, courier in enumerate(couriers):
                    score[row, g] += sum(needs[s] for s in courier.skills)
            seats = [g for g, n in enumerate(sizes) for _ in range(n)]
            # maximise preferred jobs kept; ties keep couriers near their list position
            cost = -score[:, seats] * (len(couriers) + 1) * len(seats)
            cost += np.abs(np.subtract.outer(np.arange(len(couriers)), np.arange(len(seats))))
            rows, cols = linear_sum_assignment(cost)
            crews: list[list[Courier]] = [[] for _ in groups]
            for r, s in sorted(zip(rows.tolist(), cols.tolist(), strict=True)):
                crews[seats[s]].append(couriers[r])
            return crews
    return _deal_couriers(problem, groups, couriers, sizes)


def _follow_couriers(
    problem: Problem,
    groups: list[list[int]],
    crews: list[list[Courier]],
    preferred: Mapping[str, str],
    max_jobs: int,
) -> list[list[int]]:
    """Move jobs to the piece of their preferred courier, while that piece has room.

    The sweep cuts an office's day at other angles every day, so a commune on a cut has jobs
    in a piece its usual courier is not in. Such a job (a pair with its partner) moves to its
    courier's piece when that piece stays within ``max_jobs``; no piece is emptied.
    """
    if not preferred or len(groups) < 2:
        return groups
    piece_of = {c.courier_id: g for g, crew in enumerate(crews) for c in crew}
    out = [list(g) for g in groups]
    for g, group in enumerate(groups):
        for unit in _pair_units(problem, group):
            target = piece_of.get(preferred.get(problem.jobs[unit[0]].job_id, ""), g)
            if target == g or len(out[target]) + len(unit) > max_jobs:
                continue
            if len(out[g]) <= len(unit):
                continue
            out[g] = [p for p in out[g] if p not in unit]
            out[target] += unit
    return out


def _territory_guides(
    pieces: list[Piece], preferred: Mapping[str, str], cost_s: int
) -> list[SolveGuide | None]:
    """Return each piece's guide: its jobs' preferred couriers that work in the piece."""
    from routing.solver import SolveGuide

    guides: list[SolveGuide | None] = []
    for piece in pieces:
        crew = {c.courier_id for c in piece.problem.couriers}
        mine = {
            j.job_id: preferred[j.job_id]
            for j in piece.problem.jobs
            if preferred.get(j.job_id) in crew
        }
        guides.append(SolveGuide(preferred=mine, reassign_cost=cost_s) if mine and cost_s else None)
    return guides


def _deal_couriers(
    problem: Problem, groups: list[list[int]], couriers: list[Courier], share: list[int]
) -> list[list[Courier]]:
    """Give each piece its ``share`` of the office's couriers, skilled ones where needed.

    A courier holding skills goes to the piece with the most jobs needing one of them per
    courier already there with it, so a piece of cash payouts is not left with couriers who
    cannot pay out (its jobs would all be ``missing_skill``); the others fill the remaining
    places in their order. Each piece keeps the couriers' order of the day.
    """
    need = [Counter(s for p in g for s in problem.jobs[p].skills) for g in groups]
    have: list[Counter[str]] = [Counter() for _ in groups]
    places = list(share)
    chosen: list[list[int]] = [[] for _ in groups]
    rest: list[int] = []
    for i in sorted(range(len(couriers)), key=lambda i: (-len(couriers[i].skills), i)):
        skills = couriers[i].skills
        score = [
            sum(need[k][s] / (1 + have[k][s]) for s in skills) if places[k] else -1.0
            for k in range(len(groups))
        ]
        best = int(np.argmax(score)) if skills else -1
        if best < 0 or score[best] <= 0:
            rest.append(i)
            continue
        chosen[best].append(i)
        places[best] -= 1
        have[best].update(skills)
    rest.sort()
    for k in range(len(groups)):
        chosen[k] += rest[: places[k]]
        rest = rest[places[k] :]
    return [[couriers[i] for i in sorted(c)] for c in chosen]


def _pair_units(problem: Problem, positions: list[int]) -> list[list[int]]:
    """Group job positions so both halves of a pair stay together."""
    units: dict[str, list[int]] = {}
    for p in positions:
        job = problem.jobs[p]
        units.setdefault(job.pair_id or f"#{p}", []).append(p)
    return list(units.values())


def _sweep(
    units: list[list[int]], n: int, snapped: Snapped, nd: int, depot: int
) -> list[list[int]]:
    """Split job units into n groups of similar size by angle around the office."""
    if n <= 1:
        return [[p for u in units for p in u]]
    cx, cy = snapped.lon[depot], snapped.lat[depot]
    angle = [math.atan2(snapped.lat[nd + u[0]] - cy, snapped.lon[nd + u[0]] - cx) for u in units]
    order = np.argsort(angle, kind="stable")
    total = sum(len(u) for u in units)
    groups: list[list[int]] = [[] for _ in range(n)]
    acc = 0
    for k in order.tolist():
        g = min(n - 1, acc * n // total)
        groups[g] += units[k]
        acc += len(units[k])
    return [g for g in groups if g]


# -- solving pieces in worker processes -----------------------------------------------------

_WORK: dict[str, Any] = {}
#: The least search time any piece gets under ``piece_time_limit_s`` (seconds).
MIN_PIECE_TIME_S = 2.0
#: Pieces with this many jobs or more get the full ``piece_time_limit_s``.
FULL_TIME_JOBS = 60
#: Under ``piece_time_limit_s``, a piece that found no solution at all is searched once more
#: with this many times its limit.
RETRY_FACTOR = 3.0
#: The least search time a piece gets under a wall-time limit (seconds); a limit shorter than
#: the set-up is overrun by about this much per piece.
MIN_SEARCH_S = 0.1
#: What a piece's solve takes beyond its search time (seconds): building the model before the
#: clock's end is checked, reading the routes out after it, handing the plan back.
PIECE_OVERHEAD_S = 0.02
#: Allowance for what follows the solve under a wall-time limit: checking and stitching the
#: pieces, closing the worker processes (seconds) ...
FINISH_BASE_S = 0.15
#: ... and drawing each leg along the roads, per job of the day (seconds).
GEOMETRY_PER_JOB_S = 0.001


def piece_time_limit(time_limit_s: float, n_jobs: int) -> float:
    """Return the search time of a piece: the full limit for big pieces, a share for small ones."""
    return min(time_limit_s, max(MIN_PIECE_TIME_S, time_limit_s * n_jobs / FULL_TIME_JOBS))


#: How much a piece's claim on search time follows its travel at stake rather than its jobs
#: (:func:`piece_weight`). Mean objective gap on the 2,000-job day, six seeds
#: (``tests/benchmarks/results/README.md``): 0 (jobs alone) 1.75 %, 0.5 1.47 %, 0.75 1.20 %,
#: 1 (the stake alone: a 185-job Kon Tum piece down to 0.5 s) 1.79 %; with the solver's longer
#: search on a smaller fleet (``routing.solver.STAY_SHARE``) 0.5 1.42 % and 0.75 1.09 %. Since
#: whole routes are ruined and recreated (``routing.solver._ruin_routes``) a town piece's
#: second goes further than a mountain piece's, and the balance moved back (2026-12-03, one
#: machine, runs side by side): 0.4 1.34 %, 0.5 1.23 and 1.24 %, 0.6 1.27-1.35 %, 0.75 1.51 %.
STAKE_EXPONENT = 0.5


def piece_weight(n_jobs: int, durations: npt.NDArray[np.int64]) -> float:
    """Return a piece's claim on search time: its jobs and, mostly, its travel at stake.

    The jobs say how big the search is; the stake, how much travel a better plan can save:
    the shortest road network joining the piece's office and stops (a minimum spanning tree
    of its travel times, seconds). A mountain office's rounds drive hours where a town's
    drive minutes, and a second more of search saves more there: on the 2,000-job day, three
    times the default time took ``BC-TUMORONG#1`` (120 jobs) from 6.9 % over its best known
    to 0.4 %, 3.3 hours of driving, and ``BC-KONTUM#1`` (186 jobs) from 3.1 % to 2.4 %,
    4 minutes (``tests/benchmarks/results/README.md``). The weight is
    ``jobs ** (1 - STAKE_EXPONENT) * stake ** STAKE_EXPONENT``.

    Parameters
    ----------
    n_jobs
        Jobs of the piece.
    durations
        The piece's travel times, seconds, its depots then its jobs; :data:`UNREACHABLE` where
        no road leads.

    Returns
    -------
    weight
        At least 1; only ratios between pieces matter.
    """
    from scipy.sparse.csgraph import minimum_spanning_tree

    t = np.asarray(durations, dtype=np.float64)
    t = np.minimum(t, t.T)
    t[t >= UNREACHABLE] = 0  # no edge (as between two stops at one address)
    stake_s = float(minimum_spanning_tree(t).sum()) if t.size else 0.0
    return float(max(1, n_jobs) ** (1 - STAKE_EXPONENT) * max(1.0, stake_s) ** STAKE_EXPONENT)


def share_time(budget_s: float, weight: float, queued_weights: Sequence[float]) -> float:
    """Return a piece's search time under a wall-time limit.

    A worker process solves its pieces one after the other; when it starts one, the pieces it
    still has to solve (this one included) share its remaining time in proportion to their
    weights (:func:`piece_weight`), each getting at least :data:`MIN_SEARCH_S` (the floors are
    set aside first, so tiny pieces do not push the last one past the deadline). Time a quick
    piece leaves over goes to the ones after it.

    Parameters
    ----------
    budget_s
        Seconds left until the solve must end, less the overheads of the pieces still queued.
    weight
        The piece's weight.
    queued_weights
        Weights of the pieces the process has still to solve, this one included.

    Returns
    -------
    seconds
        At least :data:`MIN_SEARCH_S`; the shares of the queued pieces add up to ``budget_s``
        when it is large enough for every floor.
    """
    weights = sorted(max(1.0, w) for w in queued_weights)
    rest, total = budget_s, float(sum(weights))
    # water-filling: pieces whose proportional share is below the floor get the floor
    for k, w in enumerate(weights):
        if rest * w / total >= MIN_SEARCH_S:
            break
        rest -= MIN_SEARCH_S
        total -= w
        if k == len(weights) - 1 or rest <= 0:
            return MIN_SEARCH_S
    return max(MIN_SEARCH_S, rest * max(1.0, weight) / total)


def deal_pieces(weights: Sequence[float], workers: int) -> list[list[int]]:
    """Deal pieces to worker processes: heaviest first, each to the process with least weight.

    Parameters
    ----------
    weights
        Weight of each piece (:func:`piece_weight`).
    workers
        Processes solving side by side.

    Returns
    -------
    slots
        For each process, the positions of its pieces in solving order (heaviest first).
    """
    n = max(1, min(workers, len(weights)))
    slots: list[list[int]] = [[] for _ in range(n)]
    load = [0.0] * n
    for k in sorted(range(len(weights)), key=lambda k: (-weights[k], k)):
        s = min(range(n), key=lambda i: (load[i], i))
        slots[s].append(k)
        load[s] += max(1.0, weights[k])
    return [slot for slot in slots if slot]


def planned_search_times(weights: Sequence[float], workers: int, budget_s: float) -> list[float]:
    """Return each piece's search time when every piece searches its whole share.

    What :func:`plan_day` gives the pieces under a wall-time limit when no piece ends early:
    the pieces are dealt to the processes (:func:`deal_pieces`) and each process shares what
    is left of ``budget_s`` among its queued pieces as it starts each one
    (:func:`share_time`, less :data:`PIECE_OVERHEAD_S` per queued piece). A piece that ends
    early would leave its time to the next ones of its process.

    Parameters
    ----------
    weights
        Weight of each piece (:func:`piece_weight`).
    workers
        Processes solving side by side.
    budget_s
        Seconds from the start of the solve to its deadline.

    Returns
    -------
    seconds
        The search time of each piece, in the pieces' order.
    """
    out = [0.0] * len(weights)
    for slot in deal_pieces(weights, workers):
        left = budget_s
        for i, k in enumerate(slot):
            queued = slot[i:]
            seconds = share_time(
                left - PIECE_OVERHEAD_S * len(queued), weights[k], [weights[q] for q in queued]
            )
            out[k] = seconds
            left -= seconds + PIECE_OVERHEAD_S
    return out


def finish_allowance_s(n_jobs: int, *, geometry: bool) -> float:
    """Return the seconds kept, under a wall-time limit, for what follows the solve."""
    return FINISH_BASE_S + (GEOMETRY_PER_JOB_S * n_jobs if geometry else 0.0)


class _QueueCallbacks:
    """Solver callbacks of one piece that forward improvements to the parent through a queue."""

    def __init__(self, piece_id: str, queue: Any) -> None:
        self.piece_id = piece_id
        self.queue = queue

    def on_start(self, info: dict[str, Any]) -> None:
        del info

    def on_improvement(self, elapsed_s: float, objective: int, assigned_jobs: int) -> None:
        self.queue.put(("improvement", self.piece_id, elapsed_s, objective, assigned_jobs))

    def on_end(self, plan: Plan) -> None:
        del plan


class _DirectQueue:
    """Stands for the queue when pieces are solved in this process: delivers messages at once."""

    def __init__(self, deliver: Any) -> None:
        self.deliver = deliver

    def put(self, message: tuple[Any, ...]) -> None:
        self.deliver(message)


def _solve_one(k: int, queued: Sequence[int]) -> tuple[int, Plan, float, float]:
    """Solve piece ``k``; ``queued`` is it and the pieces its process solves after it."""
    from routing.solver import solve

    piece: Piece = _WORK["pieces"][k]
    durations, distances = _WORK["matrices"][k]
    t0 = time.perf_counter()
    params: SolverParams = _WORK["params"]
    deadline: float | None = _WORK["deadline"]
    n_jobs = len(piece.problem.jobs)
    if deadline is None:
        limit = piece_time_limit(params.time_limit_s, n_jobs)
    else:
        weights: list[float] = _WORK["weights"]
        left = deadline - time.monotonic() - PIECE_OVERHEAD_S * len(queued)
        limit = share_time(left, weights[k], [weights[q] for q in queued])
    callbacks = _QueueCallbacks(piece.piece_id, _WORK["queue"])
    guide: SolveGuide | None = _WORK["guides"][k]
    plan = solve(
        piece.problem,
        durations,
        distances,
        params=replace(params, time_limit_s=limit),
        callbacks=callbacks,
        guide=guide,
    )
    if any(u.reason == "time_limit" for u in plan.unassigned):
        if deadline is None:
            # no first solution in time: a late plan beats an empty one, so search once more
            logger.warning(
                "piece %s: no solution in %.1f s, searching %.1f s more",
                piece.piece_id,
                limit,
                RETRY_FACTOR * limit,
            )
            plan = solve(
                piece.problem,
                durations,
                distances,
                params=replace(params, time_limit_s=RETRY_FACTOR * limit),
                callbacks=callbacks,
                guide=guide,
            )
        else:
            # the dispatcher's wait is the limit: its jobs are reported, with the reason
            logger.warning(
                "piece %s: no solution in its %.1f s of the plan's time limit",
                piece.piece_id,
                limit,
            )
    _WORK["queue"].put(("done", piece.piece_id))
    return k, plan, time.perf_counter() - t0, limit


def _solve_slot(slot: list[int]) -> list[tuple[int, Plan, float, float]]:
    """Solve one process's pieces one after the other."""
    return [_solve_one(k, slot[i:]) for i, k in enumerate(slot)]


def _solve_pieces(
    pieces: list[Piece],
    matrices: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    params: SolverParams,
    workers: int,
    cb: PlanCallbacks,
    *,
    deadline: float | None,
    guides: Sequence[SolveGuide | None] = (),
) -> list[PieceResult]:
    """Solve the pieces on ``workers`` processes; by ``deadline`` (monotonic) when given.

    The pieces are dealt to the processes beforehand (:func:`deal_pieces`), so each process
    knows the pieces it still has to solve and shares its remaining time among them
    (:func:`share_time`); with no deadline each piece searches :func:`piece_time_limit`.
    """
    import multiprocessing

    results: dict[int, tuple[Plan, float, float]] = {}
    done: list[str] = []
    cb.on_stage("solving", 0, len(pieces))
    weights = [
        piece_weight(len(p.problem.jobs), durations)
        for p, (durations, _) in zip(pieces, matrices, strict=True)
    ]
    slots = deal_pieces(weights, workers)
    use_pool = len(slots) > 1 and "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork") if use_pool else None

    def deliver(message: tuple[Any, ...]) -> None:
        if message[0] == "improvement":
            _, piece_id, elapsed, objective, assigned = message
            cb.on_improvement(piece_id, elapsed, objective, assigned)
        else:
            done.append(message[1])
            cb.on_stage("solving", len(done), len(pieces))

    queue: Any = ctx.SimpleQueue() if ctx is not None else _DirectQueue(deliver)
    _WORK.update(
        pieces=pieces,
        matrices=matrices,
        weights=weights,
        params=params,
        queue=queue,
        deadline=deadline,
        guides=list(guides) or [None] * len(pieces),
    )
    stop = threading.Event()

    def relay() -> None:
        while not stop.is_set() or not queue.empty():
            if queue.empty():
                time.sleep(0.05)
                continue
            deliver(queue.get())

    try:
        if ctx is not None:
            relay_thread = threading.Thread(target=relay, name="plan-progress", daemon=True)
            relay_thread.start()
            try:
                with ProcessPoolExecutor(max_workers=len(slots), mp_context=ctx) as pool:
                    futures: list[Future[list[tuple[int, Plan, float, float]]]] = [
                        pool.submit(_solve_slot, slot) for slot in slots
                    ]
                    for fut in as_completed(futures):
                        for k, plan, seconds, limit in fut.result():
                            results[k] = (plan, seconds, limit)
            finally:
                stop.set()
                relay_thread.join(timeout=2)
        else:
            for slot in slots:
                for k, plan, seconds, limit in _solve_slot(slot):
                    results[k] = (plan, seconds, limit)
    finally:
        _WORK.clear()
    out = []
    for k, piece in enumerate(pieces):
        plan, seconds, limit = results[k]
        logger.info(
            "piece %s: %d jobs, %d couriers, %d unassigned, %.1f s (limit %.1f s)",
            piece.piece_id,
            len(piece.problem.jobs),
            len(piece.problem.couriers),
            len(plan.unassigned),
            seconds,
            limit,
        )
        out.append(PieceResult(piece, plan, [], seconds, *matrices[k], time_limit_s=limit))
    return out


# -- stitching, checks, geometry --------------------------------------------------------------


def _stitch(problem: Problem, results: list[PieceResult], pre: list[Unassigned]) -> Plan:
    """Merge piece plans into one plan whose location indices are the whole day's."""
    nd = len(problem.depots)
    routes: list[Route] = []
    unassigned = list(pre)
    objective = 0
    engines: dict[str, int] = {}
    stranded: dict[str, Any] = {}  # couriers without a round, and why (routing.solver.solve)
    for r in results:
        piece = r.piece
        to_global = [*piece.depot_positions, *(nd + p for p in piece.job_positions)]
        for route in r.plan.routes:
            stops = tuple(replace(s, location_idx=to_global[s.location_idx]) for s in route.stops)
            routes.append(replace(route, stops=stops))
        unassigned += list(r.plan.unassigned)
        objective += r.plan.objective
        engine = str(r.plan.stats.get("engine", "?"))
        engines[engine] = engines.get(engine, 0) + 1
        stranded |= r.plan.stats.get("stranded", {})
    routes.sort(key=lambda rt: rt.courier_id)
    stats: dict[str, Any] = {"pieces": len(results), "engines": engines}
    if stranded:
        stats["stranded"] = stranded
    return Plan(tuple(routes), tuple(unassigned), objective, stats)


def completeness(problem: Problem, plan: Plan, *, done: Collection[str] = ()) -> list[Violation]:
    """Every job exactly once: on one route, unassigned, or (re-planning a running day) done."""
    seen: dict[str, int] = {}
    for route in plan.routes:
        for s in route.stops:
            seen[s.job_id] = seen.get(s.job_id, 0) + 1
    for u in plan.unassigned:
        seen[u.job_id] = seen.get(u.job_id, 0) + 1
    for j in done:
        seen[j] = seen.get(j, 0) + 1
    out = []
    for job in problem.jobs:
        n = seen.pop(job.job_id, 0)
        if n != 1:
            out.append(Violation("coverage", None, job.job_id, f"appears {n} times in the plan"))
    out += [Violation("unknown_job", None, j, "not a job of the day") for j in seen]
    return out


def _draw(day_plan: DayPlan, router: Router, cb: PlanCallbacks, workers: int) -> None:
    """Draw every leg of every route along the roads (depot -> stops -> end depot)."""
    problem = day_plan.problem
    depot_index = {d.depot_id: i for i, d in enumerate(problem.depots)}
    sequences = []
    for route in day_plan.plan.routes:
        seq = [depot_index[route.depot_id], *(s.location_idx for s in route.stops)]
        seq.append(depot_index[route.end_depot_id or route.depot_id])
        sequences.append(seq)
    _FORKED.update(router=router, snapped=day_plan.snapped, sequences=sequences)
    total = len(sequences)
    drawn: dict[int, tuple[list[list[tuple[float, float]]], list[float]]] = {}
    try:
        for k, lines, lengths in _fork_map(_draw_route, list(range(total)), workers):
            drawn[k] = (lines, lengths)
            cb.on_stage("geometry", len(drawn), total)
    finally:
        _FORKED.clear()
    for k, route in enumerate(day_plan.plan.routes):  # in the routes' order, however drawn
        day_plan.legs[route.courier_id], day_plan.leg_lengths_m[route.courier_id] = drawn[k]


def _draw_route(k: int) -> tuple[int, list[list[tuple[float, float]]], list[float]]:
    """Draw the legs of route ``k`` of :data:`_FORKED` (in a forked process or in-process)."""
    router: Router = _FORKED["router"]
    snapped: Snapped = _FORKED["snapped"]
    lines: list[list[tuple[float, float]]] = []
    lengths: list[float] = []
    for a, b in itertools.pairwise(_FORKED["sequences"][k]):
        coords = leg_coords(router, snapped, a, b)
        if coords is None:
            lines.append([])
            lengths.append(0.0)
            continue
        lines.append([(x, y) for x, y in np.round(coords, 6).tolist()])
        lengths.append(polyline_length_m(coords))
    return k, lines, lengths


# -- work shared by forked processes ------------------------------------------------------------

#: What forked processes of a stage read (the day's router, snaps, pieces); set only meanwhile.
_FORKED: dict[str, Any] = {}
#: Below this many items a stage runs in this process: forking costs more than it saves.
MIN_FORKED_ITEMS = 8


def _fork_map(fn: Any, items: list[int], workers: int) -> Iterator[Any]:
    """Yield ``fn(item)`` for each item, on ``workers`` forked processes when that pays.

    The processes are forked once for the whole stage and read the day's data from
    :data:`_FORKED` (shared copy-on-write, nothing pickled on the way in); results come back
    as they finish, in any order.
    """
    import multiprocessing

    if (
        workers < 2
        or len(items) < MIN_FORKED_ITEMS
        or "fork" not in (multiprocessing.get_all_start_methods())
    ):
        yield from map(fn, items)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap_unordered(fn, items)
        # let the processes finish: leaving the block would terminate them, and a process
        # whose parent handles SIGTERM itself (an RQ worker, a server) ignores that and hangs
        pool.close()
        pool.join()


def _matrices(
    pieces: list[Piece],
    n_depots: int,
    snapped: Snapped,
    router: Router,
    workers: int,
    cb: PlanCallbacks,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Return each piece's travel-time and distance matrices, pieces on parallel processes.

    The day's hierarchy is customised for both metrics here, once, before forking; each
    process then computes whole pieces on one core (biggest first), so a day of many small
    pieces is as parallel as one of a few big ones.
    """
    router.time_metric, router.length_metric  # noqa: B018  (customised once, shared by the forks)
    one_core = copy.copy(router)
    one_core.workers = 1
    indices = [
        [*piece.depot_positions, *(n_depots + p for p in piece.job_positions)] for piece in pieces
    ]
    _FORKED.update(router=one_core, snapped=snapped, indices=indices)
    out: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None] = [None] * len(pieces)
    order = sorted(range(len(pieces)), key=lambda k: -len(indices[k]))
    cb.on_stage("matrices", 0, len(pieces))
    try:
        for done, (k, time_s, distance_m) in enumerate(
            _fork_map(_piece_matrix, order, workers), start=1
        ):
            out[k] = (time_s, distance_m)
            cb.on_stage("matrices", done, len(pieces))
    finally:
        _FORKED.clear()
    assert all(m is not None for m in out)
    return [m for m in out if m is not None]


def _piece_matrix(k: int) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Compute piece ``k``'s matrices from :data:`_FORKED` (in a forked process or in-process)."""
    router: Router = _FORKED["router"]
    m = router.matrix(_FORKED["snapped"].subset(_FORKED["indices"][k]))
    return k, m.time_s, m.distance_m
