"""Planning a whole day on the synthetic province: checked, complete, with the right reasons."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pytest

from geodata.snap import Snapped
from routing.model import UNREACHABLE, Courier, Depot, Job, Load, Problem, TimeWindow
from routing.planner import (
    MIN_SEARCH_S,
    PIECE_OVERHEAD_S,
    STAKE_EXPONENT,
    DayPlan,
    PlanOptions,
    _split,
    cut_day,
    deal_pieces,
    default_time_limit_s,
    piece_time_limit,
    piece_weight,
    plan_day,
    planned_search_times,
    share_time,
)
from routing.scenario import DayScenario, make_day

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int, int]] = []
        self.improvements: list[tuple[str, float, int, int]] = []

    def on_stage(self, stage: str, done: int, total: int) -> None:
        self.stages.append((stage, done, total))

    def on_improvement(
        self, piece: str, elapsed_s: float, objective: int, assigned_jobs: int
    ) -> None:
        self.improvements.append((piece, elapsed_s, objective, assigned_jobs))


@pytest.fixture(scope="module")
def scenario(province: SyntheticProvince) -> DayScenario:
    return make_day(province, n_jobs=90, n_couriers=18, seed=3)


@pytest.fixture(scope="module")
def planned(
    province: SyntheticProvince, province_graph: CompactGraph, scenario: DayScenario
) -> tuple[DayPlan, Recorder]:
    rec = Recorder()
    options = PlanOptions(time_limit_s=2, max_jobs_per_piece=25, workers=2)
    day = plan_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=options,
        callbacks=rec,
    )
    return day, rec


def test_plan_passes_the_independent_checker(planned: tuple[DayPlan, Recorder]) -> None:
    """The checker finds no violation in any piece, and every job appears exactly once."""
    day, _ = planned
    assert day.violations == []
    routed = [s.job_id for r in day.plan.routes for s in r.stops]
    unassigned = [u.job_id for u in day.plan.unassigned]
    assert Counter(routed + unassigned) == Counter(j.job_id for j in day.problem.jobs)


def test_impossible_jobs_get_their_reasons(planned: tuple[DayPlan, Recorder]) -> None:
    """Each impossible-by-construction job is unassigned with the reason it was built for."""
    day, _ = planned
    reasons = {u.job_id: u.reason for u in day.plan.unassigned}
    assert reasons["X-SATLO"] == "unreachable"  # the landslide closure
    assert reasons["X-NANG"] == "over_capacity"
    assert reasons["X-SOM"] in {"no_feasible_window", "shift_too_short"}
    assert reasons["X-DO"] == "missing_skill"
    assert reasons.get("X-COLAP") == "unreachable"  # a village with no road link


def test_most_jobs_are_served(planned: tuple[DayPlan, Recorder]) -> None:
    """A normal day serves most of its jobs (bound, not an exact count)."""
    day, _ = planned
    served = sum(len(r.stops) for r in day.plan.routes)
    assert served >= 0.75 * len(day.problem.jobs)


def test_big_offices_are_split_and_pairs_stay_together(planned: tuple[DayPlan, Recorder]) -> None:
    """Kon Tum's day is cut into pieces; both halves of every pair land in the same piece."""
    day, _ = planned
    kontum = [r for r in day.pieces if r.piece.depot_id == "BC-KONTUM"]
    assert len(kontum) >= 2
    assert all(len(r.piece.problem.jobs) <= 25 + 1 for r in kontum)
    for r in day.pieces:
        pairs = Counter(j.pair_id for j in r.piece.problem.jobs if j.pair_id)
        assert all(n == 2 for n in pairs.values())
    route_of = {s.job_id: r.courier_id for r in day.plan.routes for s in r.stops}
    for job in day.problem.jobs:
        if job.pair_id and job.job_id in route_of:
            partner = next(o for o in day.problem.jobs if o.pair_id == job.pair_id and o is not job)
            assert route_of.get(partner.job_id) == route_of[job.job_id]


def test_stop_locations_are_global_and_legs_follow_the_route(
    planned: tuple[DayPlan, Recorder],
) -> None:
    """Stitched stops point at the day's locations; each route has one leg per stop plus the return."""
    day, _ = planned
    loc = day.problem.location_index()
    for route in day.plan.routes:
        for stop in route.stops:
            assert stop.location_idx == loc[stop.job_id]
        assert len(day.legs[route.courier_id]) == len(route.stops) + 1
        assert all(len(leg) >= 2 for leg in day.legs[route.courier_id])


def test_progress_is_reported(planned: tuple[DayPlan, Recorder]) -> None:
    """Stages end complete and the search reports improvements from worker processes."""
    _, rec = planned
    finals = {s: (d, t) for s, d, t in rec.stages}
    for stage in ("snapping", "matrices", "solving", "checking", "geometry"):
        done, total = finals[stage]
        assert done == total, stage
    assert rec.improvements, "improvements are relayed from the solving processes"


def test_geojson_is_rfc7946(planned: tuple[DayPlan, Recorder]) -> None:
    """Routes are LineStrings and stops Points, in lon/lat order inside the province."""
    day, _ = planned
    geo = day.to_geojson()
    kinds = Counter(f["properties"]["kind"] for f in geo["features"])
    assert kinds["route"] >= 1
    assert kinds["stop"] == sum(len(r.stops) for r in day.plan.routes)
    for f in geo["features"]:
        coords = f["geometry"]["coordinates"]
        first = coords[0] if f["geometry"]["type"] == "LineString" else coords
        assert 107 < first[0] < 109
        assert 13.5 < first[1] < 15.5


def test_far_addresses_are_reported(province_graph: CompactGraph, scenario: DayScenario) -> None:
    """An address far from any road is unassigned as far_from_road, its pair partner too."""
    jobs = list(scenario.problem.jobs)
    k = next(i for i, j in enumerate(jobs) if j.pair_id is None)
    jobs[k] = replace(jobs[k], lon=jobs[k].lon + 0.2)  # about 20 km into the forest
    problem = replace(scenario.problem, jobs=tuple(jobs))
    day = plan_day(
        problem, province_graph, options=PlanOptions(time_limit_s=1, geometry=False, workers=1)
    )
    reasons = {u.job_id: u.reason for u in day.plan.unassigned}
    assert reasons[jobs[k].job_id] == "far_from_road"
    assert day.violations == []


def _office_day(n_jobs: int, skilled_jobs: int, couriers: int, skilled: int) -> Problem:
    """One office, jobs on a circle around it (every few a cash payout), skilled couriers first."""
    depot = Depot("D", "office", 108.0, 14.35, TimeWindow(7 * 3600, 17 * 3600))
    cash = frozenset({"cash_payout"})
    jobs = tuple(
        Job(
            job_id=f"J{k}",
            kind="delivery",
            lon=108.0 + 0.05 * math.cos(2 * math.pi * k / n_jobs),
            lat=14.35 + 0.05 * math.sin(2 * math.pi * k / n_jobs),
            windows=(TimeWindow(8 * 3600, 16 * 3600),),
            service_s=120,
            skills=cash if k % (n_jobs // skilled_jobs) == 0 else frozenset(),
        )
        for k in range(n_jobs)
    )
    crew = tuple(
        Courier(
            courier_id=f"C{k}",
            depot_id="D",
            shift=TimeWindow(7 * 3600, 17 * 3600),
            capacity=Load(items=100),
            skills=cash if k < skilled else frozenset(),
        )
        for k in range(couriers)
    )
    return Problem(depots=(depot,), couriers=crew, jobs=jobs)


def _snapped(problem: Problem) -> Snapped:
    lon = np.array([d.lon for d in problem.depots] + [j.lon for j in problem.jobs])
    lat = np.array([d.lat for d in problem.depots] + [j.lat for j in problem.jobs])
    n = len(lon)
    return Snapped(
        edge=np.zeros(n, np.int64), fraction=np.zeros(n), distance_m=np.zeros(n),
        lon=lon, lat=lat, far=np.zeros(n, bool), max_distance_m=1000.0,
    )  # fmt: skip


def test_an_office_day_up_to_the_cap_is_one_piece() -> None:
    """An office's day of at most ``max_jobs_per_piece`` jobs is one piece with all its couriers."""
    problem = _office_day(150, 10, 6, 2)
    office = dict.fromkeys(range(150), "D")
    pieces, orphans = _split(problem, office, 150, _snapped(problem))
    assert orphans == []
    assert len(pieces) == 1
    assert len(pieces[0].problem.jobs) == 150
    assert len(pieces[0].problem.couriers) == 6


def test_pieces_respect_the_cap_and_get_skilled_couriers() -> None:
    """A bigger day is cut into pieces of at most the cap, each with a courier who pays out.

    Every courier is in exactly one piece (a pair may add one job to the cap), and each piece
    with cash payouts has a courier holding the skill (there are enough of them), although
    they come first in the courier list.
    """
    problem = _office_day(400, 40, 16, 4)
    office = dict.fromkeys(range(400), "D")
    pieces, _ = _split(problem, office, 100, _snapped(problem))
    assert len(pieces) == 4
    assert all(len(p.problem.jobs) <= 100 + 1 for p in pieces)
    dealt = [c.courier_id for p in pieces for c in p.problem.couriers]
    assert sorted(dealt) == sorted(c.courier_id for c in problem.couriers)
    for p in pieces:
        assert len(p.problem.couriers) >= 1
        if any(j.skills for j in p.problem.jobs):
            assert any("cash_payout" in c.skills for c in p.problem.couriers), p.piece_id


def test_default_time_limit_grows_with_the_day() -> None:
    """The default wall time grows with the day's jobs and keeps province days in their targets.

    5,000 jobs within a minute, 10,000 within three, with room for the finish.
    """
    sizes = [0, 300, 2000, 5000, 10_000]
    limits = [default_time_limit_s(n) for n in sizes]
    assert limits == sorted(limits)
    assert limits[0] > 0
    assert limits[3] <= 57
    assert limits[4] <= 170
    assert default_time_limit_s(20_000) > limits[4], "beyond the last size it keeps growing"
    assert PlanOptions().time_limit_s is None, "plan_day uses the default for the day"


def test_piece_time_limit() -> None:
    """Small pieces get a share of the time limit, never less than the minimum."""
    assert piece_time_limit(20, 200) == 20
    assert piece_time_limit(20, 30) == 10
    assert piece_time_limit(20, 1) == 2
    assert piece_time_limit(1, 1) == 1


def _line_matrix(positions_s: list[float]) -> np.ndarray:
    """Travel times between places on one road, seconds (the office first)."""
    x = np.asarray(positions_s, dtype=np.int64)
    return np.abs(x[:, None] - x[None, :])


def test_a_piece_weighs_its_jobs_and_the_travel_at_stake() -> None:
    """Far stops weigh more than as many near ones; more jobs weigh more; no road adds nothing."""
    town = _line_matrix([0, 60, 120, 180, 240])  # four stops a minute apart
    mountain = _line_matrix([0, 3600, 3660, 7200, 7260])  # two communes an hour and two away
    assert piece_weight(4, mountain) > 5 * piece_weight(4, town)
    assert piece_weight(8, town) > piece_weight(4, town)

    def weight(jobs: int, tree_s: float) -> float:
        return float(jobs ** (1 - STAKE_EXPONENT) * tree_s**STAKE_EXPONENT)

    assert piece_weight(4, town) == pytest.approx(weight(4, 240))  # the town's tree: 4 minutes
    cut = mountain.copy()
    cut[0, 1:] = cut[1:, 0] = UNREACHABLE  # the office reaches no stop: only the stops' tree
    assert piece_weight(4, cut) == pytest.approx(weight(4, 60 + 3540 + 60))
    assert piece_weight(0, np.zeros((1, 1), dtype=np.int64)) == 1.0


def test_share_time_adds_up_to_the_budget() -> None:
    """Queued pieces share the budget by weight; light ones get the floor, set aside first."""
    sizes = [30, 10, 1, 1]
    shares = [share_time(3.0, n, sizes) for n in sizes]
    assert sum(shares) == pytest.approx(3.0)
    assert shares[2] == shares[3] == MIN_SEARCH_S  # 1/42 of 3 s is below the floor
    assert shares[0] == pytest.approx(3 * shares[1])
    assert share_time(0.05, 30, sizes) == MIN_SEARCH_S, "no budget left: the floor"


def test_deal_pieces_balances_weight_over_processes() -> None:
    """Each piece goes to exactly one process, heaviest first, loads as even as pieces allow."""
    sizes = [49, 49, 48, 17, 22, 13, 13, 11, 14, 25, 27, 17]
    slots = deal_pieces(sizes, 2)
    assert sorted(k for slot in slots for k in slot) == list(range(len(sizes)))
    loads = [sum(sizes[k] for k in slot) for slot in slots]
    assert max(loads) - min(loads) <= max(sizes)
    for slot in slots:
        assert [sizes[k] for k in slot] == sorted((sizes[k] for k in slot), reverse=True)
    assert deal_pieces([5, 3], 4) == [[0], [1]], "no more processes than pieces"
    assert deal_pieces([5, 3, 2], 1) == [[0, 1, 2]]


def test_planned_search_times_share_each_process_budget() -> None:
    """Each process's pieces fill its budget by weight; both processes get the whole budget."""
    sizes = [146, 17, 22, 13, 13, 11, 14, 25, 27, 17]
    budget = 20.0
    seconds = planned_search_times(sizes, 2, budget)
    for slot in deal_pieces(sizes, 2):
        used = sum(seconds[k] + PIECE_OVERHEAD_S for k in slot)
        assert used == pytest.approx(budget)
        first, *rest = slot
        for k in rest:  # no floors here: shares in proportion to weight
            assert seconds[k] / seconds[first] == pytest.approx(sizes[k] / sizes[first])
    assert planned_search_times([30], 1, 5.0) == [pytest.approx(5.0 - PIECE_OVERHEAD_S)]
    tiny = planned_search_times([1, 1, 1], 1, 0.1)
    assert tiny == [MIN_SEARCH_S] * 3, "no budget: every piece still gets the floor"


def test_cut_day_gives_the_pieces_plan_day_solves(
    province: SyntheticProvince,
    province_graph: CompactGraph,
    scenario: DayScenario,
    planned: tuple[DayPlan, Recorder],
) -> None:
    """The benchmarks' cut of a day is the planner's: same jobs and couriers per piece."""
    day, _ = planned
    cut = cut_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=PlanOptions(max_jobs_per_piece=25),
    )
    assert len(cut.pieces) == len(day.pieces) > 1
    for piece, result in zip(cut.pieces, day.pieces, strict=True):
        assert piece.piece_id == result.piece.piece_id
        assert piece.job_positions == result.piece.job_positions
        assert piece.problem.couriers == result.piece.problem.couriers
    assert {u.job_id for u in cut.pre_unassigned} <= {u.job_id for u in day.plan.unassigned}


#: Beyond the limit a plan may take: starting and joining the two solving processes and the
#: operating system's scheduling on a machine whose two cores other work shares (seconds).
#: Snapping, matrices, checks and drawing are inside the limit, not in this allowance.
WALL_ALLOWANCE_S = 0.5


def test_time_limit_is_the_wall_time_of_the_plan(
    province: SyntheticProvince, province_graph: CompactGraph
) -> None:
    """A 6 s limit on a day of many pieces takes 6 s of wall time, within 10 % (+ the allowance)."""
    scenario = make_day(province, n_jobs=120, n_couriers=20, seed=5)
    limit = 6.0
    options = PlanOptions(time_limit_s=limit, workers=2, max_jobs_per_piece=20)
    t0 = time.perf_counter()
    day = plan_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=options,
    )
    wall = time.perf_counter() - t0
    assert len(day.pieces) >= 6, "several pieces share the limit"
    assert 0.9 * limit <= wall <= 1.1 * limit + WALL_ALLOWANCE_S, day.timings
    assert day.violations == []
    searched = sum(r.time_limit_s for r in day.pieces)
    assert searched > 1.5 * limit, "the pieces are solved side by side on both processes"
