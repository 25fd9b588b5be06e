from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.check import check_plan
from routing.model import UNREACHABLE, Load, Problem
from routing.params import SolverParams
from routing.plan import Plan
from routing.progress import RecordingCallbacks
from routing.solver import SolveGuide, solve
from tests.unit.routing.helpers import H, courier, depot, job, matrices, random_problem

FAST = SolverParams(time_limit_s=0.5)


def _assert_complete(problem: Problem, plan: Plan) -> None:
    routed = [s.job_id for r in plan.routes for s in r.stops]
    unassigned = [u.job_id for u in plan.unassigned]
    assert sorted(routed + unassigned) == sorted(j.job_id for j in problem.jobs)
    assert all(u.reason for u in plan.unassigned)


FEATURES = {
    "plain": {},
    "breaks": {"breaks": True},
    "breaks_loose_windows": {"breaks": True, "tight_windows": False},
    "pairs": {"pairs": 3},
    "cash_ceiling": {"cash": True, "cash_cap_vnd": 6_000_000},
    "skills": {"skills": True, "cash": True},
    "multi_windows": {"multi_windows": True},
    "tight_capacity": {"capacity_items": 6},
    "everything": {
        "breaks": True,
        "pairs": 2,
        "cash": True,
        "skills": True,
        "multi_windows": True,
        "capacity_items": 8,
        "cash_cap_vnd": 8_000_000,
    },
}


@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("seed", [0, 1])
def test_generated_plans_pass_the_checker(feature: str, seed: int) -> None:
    """On generated problems with each feature, the plan has no violation and covers every job."""
    problem = random_problem(seed, n_jobs=14, **FEATURES[feature])  # type: ignore[arg-type]
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=FAST)
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)


def test_pyvrp_off_also_passes_the_checker() -> None:
    """The OR-Tools-only path (no PyVRP warm start) also yields checked plans."""
    problem = random_problem(3, n_jobs=14, pairs=2)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=0.5, use_pyvrp=False))
    assert plan.stats["engine"].startswith("ortools")
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)


def test_infeasible_by_construction_get_the_right_reason() -> None:
    """Each impossible job is unassigned with its reason, and the feasible ones are served."""
    big = Load(items=500)
    jobs = (
        job("ok", 1, 0),
        job("cut_off", 2, 2),  # matrix says no road
        job("too_early", 1, 1, windows=((6 * H, 6 * H + 60),)),  # before any shift
        job("far", 400, 0, windows=((7 * H, 17 * H),)),  # 800 km round trip
        job("heavy", 0, 1, demand=big),
        job("skill", 1, 2, skills=frozenset({"explosives"})),
        job("pp", 2, 0, kind="pickup", pair_id="x", demand=big),
        job("pd", 3, 0, kind="delivery", pair_id="x", demand=big),
        job("qp", 2, 1, kind="pickup", pair_id="y"),
        job("qd", 2, 3, kind="delivery", pair_id="y", windows=((6 * H, 6 * H + 60),)),
        job("cash", 0, 2, demand=Load(items=1, cash_vnd=500_000_000)),
    )
    problem = Problem((depot(),), (courier("c0"), courier("c1")), jobs)
    dur, dist = matrices(problem)
    cut = problem.location_index()["cut_off"]
    dur[cut, :] = dur[:, cut] = UNREACHABLE
    dist[cut, :] = dist[:, cut] = UNREACHABLE
    dur[cut, cut] = dist[cut, cut] = 0
    plan = solve(problem, dur, dist, params=FAST)
    reasons = {u.job_id: u.reason for u in plan.unassigned}
    assert reasons == {
        "cut_off": "unreachable",
        "too_early": "no_feasible_window",
        "far": "shift_too_short",
        "heavy": "over_capacity",
        "skill": "missing_skill",
        "pp": "over_capacity",
        "pd": "over_capacity",
        "qp": "pair_incomplete",
        "qd": "no_feasible_window",
        "cash": "over_capacity",
    }
    assert plan.assigned_job_ids() == ["ok"]
    assert check_plan(problem, plan, dur, dist) == []


def test_over_full_day_drops_low_priority_first() -> None:
    """With room for only some jobs, the urgent ones are served and the rest are dropped."""
    jobs = tuple(
        job(
            f"j{i}",
            5,
            0,
            windows=((8 * H, 8 * H + 600),),
            service_s=500,
            priority=5 if i < 2 else 1,
        )
        for i in range(6)
    )
    problem = Problem((depot(),), (courier("c0"),), jobs)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=FAST)
    assert check_plan(problem, plan, dur, dist) == []
    served = set(plan.assigned_job_ids())
    assert {"j0", "j1"} <= served
    assert all(u.reason == "dropped_low_priority" for u in plan.unassigned)
    _assert_complete(problem, plan)


def test_unreachable_arcs_are_avoided_without_overflow() -> None:
    """Sentinel arcs between reachable jobs are never used and the objective stays small."""
    problem = random_problem(5, n_jobs=10, tight_windows=False)
    dur, dist = matrices(problem)
    rng = np.random.default_rng(0)
    n = problem.num_locations
    for _ in range(25):
        a, b = (int(x) for x in rng.integers(1, n, size=2))
        if a != b:
            dur[a, b] = dist[a, b] = UNREACHABLE
    plan = solve(problem, dur, dist, params=FAST)
    assert check_plan(problem, plan, dur, dist) == []
    assert not plan.unassigned
    assert 0 < plan.objective < 10**7


def test_callbacks_receive_start_improvements_and_end() -> None:
    """on_start, on_improvement (decreasing objectives) and on_end are called."""
    problem = random_problem(2, n_jobs=12, breaks=True)
    dur, dist = matrices(problem)
    cb = RecordingCallbacks()
    plan = solve(problem, dur, dist, params=FAST, callbacks=cb)
    assert len(cb.started) == 1
    assert cb.started[0]["jobs"] == 12
    assert cb.improvements
    objectives = [o for _, o, _ in cb.improvements]
    assert objectives == sorted(objectives, reverse=True)
    assert cb.plans == [plan]


def test_matrix_shape_is_validated() -> None:
    """Matrices of the wrong size are rejected with an InputError."""
    problem = random_problem(0, n_jobs=3)
    dur, dist = matrices(problem)
    with pytest.raises(ValueError, match="depots then jobs"):
        solve(problem, dur[:-1, :-1], dist, params=FAST)


def test_no_couriers_means_all_unassigned() -> None:
    """Without couriers every job is unassigned with a reason."""
    problem = Problem((depot(),), (), (job("a", 1, 1),))
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=FAST)
    assert [(u.job_id, u.reason) for u in plan.unassigned] == [("a", "no_courier")]


# ------------------------------------------------------------------------ exact references


def _brute_force(problem: Problem, dur: np.ndarray, penalty: int) -> int:
    """Minimum travel time + drop penalties over all subsets and orders (one courier)."""
    c = problem.couriers[0]
    n_dep = len(problem.depots)
    best = sum(penalty * j.priority for j in problem.jobs)
    positions = range(len(problem.jobs))
    for k in range(1, len(problem.jobs) + 1):
        for subset in itertools.combinations(positions, k):
            dropped = sum(penalty * problem.jobs[p].priority for p in positions if p not in subset)
            if dropped >= best:
                continue
            for order in itertools.permutations(subset):
                load = problem.start_load([problem.jobs[p].job_id for p in order])
                if not load.fits_in(c.capacity):
                    continue
                t, prev, cost, ok = c.shift.start_s, 0, 0, True
                for p in order:
                    j = problem.jobs[p]
                    loc = n_dep + p
                    start = j.earliest_start_from(t + int(dur[prev, loc]))
                    if start is None:
                        ok = False
                        break
                    load = load + j.demand if j.kind == "pickup" else load - j.demand
                    if not load.fits_in(c.capacity):
                        ok = False
                        break
                    cost += int(dur[prev, loc])
                    t, prev = start + j.service_s, loc
                if not ok or t + int(dur[prev, 0]) > c.shift.end_s:
                    continue
                best = min(best, cost + int(dur[prev, 0]) + dropped)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_optimum_on_tiny_instances(seed: int) -> None:
    """With one courier and <= 6 jobs, the objective equals the enumerated optimum."""
    rng = np.random.default_rng(100 + seed)
    jobs = []
    for i in range(6):
        a = int(rng.integers(7 * H, 11 * H))
        kind = "pickup" if rng.random() < 0.4 else "delivery"
        jobs.append(
            job(
                f"j{i}",
                float(rng.uniform(-6, 6)),
                float(rng.uniform(-6, 6)),
                kind=kind,
                windows=((a, a + 3600),),
                service_s=int(rng.integers(300, 900)),
                demand=Load(items=int(rng.integers(1, 4))),
                priority=int(rng.integers(1, 4)),
            )
        )
    problem = Problem(
        (depot(),),
        (courier("c0", shift=(7 * H, 12 * H), capacity=Load(items=6)),),
        tuple(jobs),
    )
    dur, dist = matrices(problem)
    penalty = 1500
    params = SolverParams(time_limit_s=1.0, drop_penalty=penalty)
    plan = solve(problem, dur, dist, params=params)
    assert check_plan(problem, plan, dur, dist) == []
    screened = {u.job_id for u in plan.unassigned if u.reason != "dropped_low_priority"}
    extra = sum(penalty * j.priority for j in problem.jobs if j.job_id in screened)
    assert plan.objective + extra == _brute_force(problem, dur, penalty)


def _reference_objective(problem: Problem, dur: np.ndarray) -> int:
    """Solve with a plain Python-callback OR-Tools model (as the OR-Tools samples)."""
    n = problem.num_locations
    nv = len(problem.couriers)
    manager = pywrapcp.RoutingIndexManager(n, nv, 0)
    routing = pywrapcp.RoutingModel(manager)
    service = [0] + [j.service_s for j in problem.jobs]
    demand = [0] + [j.demand.items for j in problem.jobs]

    def travel(i: int, j: int) -> int:
        return int(dur[manager.IndexToNode(i), manager.IndexToNode(j)])

    def time_cb(i: int, j: int) -> int:
        return travel(i, j) + service[manager.IndexToNode(i)]

    def demand_cb(i: int) -> int:
        return demand[manager.IndexToNode(i)]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(travel))
    routing.AddDimension(routing.RegisterTransitCallback(time_cb), 24 * H, 24 * H, False, "t")
    t = routing.GetDimensionOrDie("t")
    for k, j in enumerate(problem.jobs, start=1):
        t.CumulVar(manager.NodeToIndex(k)).SetRange(j.first_start_s, j.last_end_s)
    for v, c in enumerate(problem.couriers):
        t.CumulVar(routing.Start(v)).SetRange(c.shift.start_s, c.shift.end_s)
        t.CumulVar(routing.End(v)).SetRange(c.shift.start_s, c.shift.end_s)
    caps = [c.capacity.items for c in problem.couriers]
    routing.AddDimensionWithVehicleCapacity(
        routing.RegisterUnaryTransitCallback(demand_cb), 0, caps, True, "load"
    )
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.FromMilliseconds(1000)
    solution = routing.SolveWithParameters(search)
    assert solution is not None
    return int(solution.ObjectiveValue())


def test_agrees_with_plain_callback_reference_model() -> None:
    """On a 5-node instance (4 jobs, 2 couriers) the objective equals a callback-based model's."""
    jobs = (
        job("a", 2, 0, windows=((8 * H, 9 * H),), demand=Load(items=2)),
        job("b", 2, 2, windows=((8 * H, 10 * H),), demand=Load(items=2)),
        job("c", -3, 1, windows=((9 * H, 10 * H),), demand=Load(items=2)),
        job("d", -1, -4, windows=((7 * H, 12 * H),), demand=Load(items=2)),
    )
    problem = Problem(
        (depot(),),
        (courier("c0", capacity=Load(items=4)), courier("c1", capacity=Load(items=4))),
        jobs,
    )
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=1.0))
    assert not plan.unassigned
    assert check_plan(problem, plan, dur, dist) == []
    assert plan.objective == _reference_objective(problem, dur)


def test_objective_distance_and_fixed_cost() -> None:
    """With objective='distance' and a fixed cost, the objective is distance + cost per route."""
    problem = random_problem(7, n_jobs=8, tight_windows=False)
    dur, dist = matrices(problem)
    params = SolverParams(time_limit_s=0.5, objective="distance", vehicle_fixed_cost=10_000)
    plan = solve(problem, dur, dist, params=params)
    assert not plan.unassigned
    assert plan.objective == plan.distance_m + 10_000 * plan.num_routes


def _closed_model(problem: Problem) -> Any:
    """The OR-Tools model of a problem, closed, as the solver loads warm starts into it."""
    from routing.solver import _build_model, _screen_jobs, _search_parameters

    dur, dist = matrices(problem)
    model = _build_model(problem, dur, dist, _screen_jobs(problem, dur), FAST)
    model.routing.CloseModelWithParameters(_search_parameters(FAST, 1.0))
    return model


def _performed(model: Any, assignment: Any) -> set[int]:
    """Return the job positions an assignment serves."""
    index = model.manager.NodeToIndex
    return {
        p
        for p, node in model.job_node.items()
        if assignment.Value(model.routing.NextVar(index(node))) != index(node)
    }


def test_pyvrp_routes_missing_the_break_are_repaired() -> None:
    """A warm start that ignores the break is cut to a feasible subsequence, not rejected."""
    from routing.solver import _assignment_from_sequences

    jobs = (
        job("a", 1, 0, windows=((10 * H, 11 * H),), service_s=600),
        job("b", 2, 0, windows=((11 * H, 11 * H + 600),), service_s=600),
        job("c", 3, 0, windows=((12 * H, 12 * H + 600),), service_s=600),
    )
    problem = Problem((depot(),), (courier("c0", brk=(11 * H, 12 * H + 1800, 3600)),), jobs)
    model = _closed_model(problem)
    seq = [[model.job_node[0], model.job_node[1], model.job_node[2]]]
    assignment = _assignment_from_sequences(model, seq)
    assert assignment is not None
    assert 0 < len(_performed(model, assignment)) < 3


def test_a_repair_out_of_time_keeps_the_routes_that_load() -> None:
    """Past the repair's deadline, routes that load alone are kept; the others start empty."""
    from routing.solver import _assignment_from_sequences

    jobs = (
        job("a", 1, 0, windows=((10 * H, 11 * H),), service_s=600),
        job("b", 2, 0, windows=((11 * H, 11 * H + 600),), service_s=600),
        job("c", 3, 0, windows=((12 * H, 12 * H + 600),), service_s=600),
        job("d", 0, 2, service_s=600),
    )
    couriers = (courier("c0", brk=(11 * H, 12 * H + 1800, 3600)), courier("c1"))
    model = _closed_model(Problem((depot(),), couriers, jobs))
    node = model.job_node
    # c0's route misses its break (infeasible as a whole); c1's loads alone.
    seq = [[node[0], node[1], node[2]], [node[3]]]
    assert (
        model.routing.ReadAssignmentFromRoutes(
            [[model.manager.NodeToIndex(n) for n in r] for r in seq], True
        )
        is None
    )
    assignment = _assignment_from_sequences(model, seq, deadline=0.0)
    assert assignment is not None
    assert _performed(model, assignment) == {3}


def test_pyvrp_warm_start_covers_skills_windows_breaks() -> None:
    """Skills, multi-window jobs and (loose-window) breaks still get a checked PyVRP start."""
    problem = random_problem(
        4,
        n_jobs=20,
        n_couriers=3,
        skills=True,
        cash=True,
        multi_windows=True,
        breaks=True,
        tight_windows=False,
    )
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=1.0))
    assert plan.stats["engine"] == "pyvrp+ortools"
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)


@pytest.mark.parametrize("use_pyvrp", [True, False])
def test_multi_depot_end_depot_and_preassigned_jobs(use_pyvrp: bool) -> None:
    """Couriers of two post offices (one ending elsewhere) respect pre-assigned jobs."""
    from routing.model import Courier, TimeWindow

    d1, d2 = depot("D"), depot("E", 10, 0)
    couriers = (
        courier("c0", "D"),
        courier("c1", "E"),
        Courier(
            courier_id="c2",
            depot_id="D",
            end_depot_id="E",
            shift=TimeWindow(7 * H, 17 * H),
            capacity=Load(items=100, weight_g=100_000, cash_vnd=10**8),
        ),
    )
    rng = np.random.default_rng(9)
    jobs = tuple(
        job(
            f"j{i}",
            float(rng.uniform(-2, 12)),
            float(rng.uniform(-4, 4)),
            depot_id=("D" if i % 3 == 0 else "E" if i % 3 == 1 else None),
        )
        for i in range(15)
    )
    problem = Problem((d1, d2), couriers, jobs)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=0.5, use_pyvrp=use_pyvrp))
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)
    assert not plan.unassigned
    for route in plan.routes:
        c = problem.courier_by_id()[route.courier_id]
        assert route.end_depot_id == c.end_depot


def test_pair_with_two_windows_via_pyvrp() -> None:
    """Pairs whose halves have two windows keep a feasible PyVRP start (longest window)."""
    two = ((7 * H + 1800, 11 * H), (13 * H + 1800, 16 * H + 1800))
    jobs = (
        job("a", 1, 1),
        job("b", -2, 3, windows=two),
        job("p", 3, -1, kind="pickup", pair_id="x", windows=two),
        job("q", -3, -2, kind="delivery", pair_id="x", windows=two),
    )
    problem = Problem((depot(),), (courier("c0"), courier("c1")), jobs)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=FAST)
    assert plan.stats["engine"] == "pyvrp+ortools"
    assert check_plan(problem, plan, dur, dist) == []
    assert not plan.unassigned


def test_compressed_windows_hold_wherever_the_break_falls() -> None:
    """A start in a window on PyVRP's clock without the break stays within the real window.

    For every break start ``B`` of the break window, a stop served at compressed ``t`` is
    served at ``t`` if it ends by ``B`` and at ``t + length`` if it starts at or after ``B``;
    both must lie in the job's real window.
    """
    from routing.model import TimeWindow
    from routing.solver import _compressed_windows

    rng = np.random.default_rng(3)
    brk = (11 * H + 1800, 13 * H + 1800, 3600)
    bs, be, length = brk
    checked = 0
    for _ in range(300):
        a = int(rng.integers(7 * H, 16 * H))
        w = TimeWindow(a, a + int(rng.integers(0, 4 * H)))
        service = int(rng.integers(0, 1800))
        for lo, hi in _compressed_windows(w, service, brk):
            assert lo <= hi
            for t in np.linspace(lo, hi, 7).astype(int).tolist():
                for b in range(bs, be - length + 1, 300):
                    if t + service <= b:
                        assert w.start_s <= t <= w.end_s
                        checked += 1
                    elif t >= b:
                        assert w.start_s <= t + length <= w.end_s
                        checked += 1
    assert checked > 1000


def test_compressed_windows_of_a_post_office_day() -> None:
    """Afternoon windows move a break earlier exactly; morning ones end before any break."""
    from routing.model import TimeWindow
    from routing.solver import _compressed_windows

    brk = (11 * H + 1800, 13 * H + 1800, 3600)
    afternoon = TimeWindow(13 * H + 1800, 17 * H)
    assert _compressed_windows(afternoon, 600, brk) == [(12 * H + 1800, 16 * H)]
    morning = TimeWindow(7 * H + 1800, 11 * H + 1800)
    assert _compressed_windows(morning, 600, brk) == [(7 * H + 1800, 11 * H + 1200)]


def test_shared_break_with_short_windows_gets_the_pyvrp_start() -> None:
    """Windows shorter than the break no longer rule PyVRP out when couriers share the break."""
    from dataclasses import replace

    from routing.model import TimeWindow
    from routing.solver import _pyvrp_supported

    problem = random_problem(
        11, n_jobs=24, n_couriers=3, breaks=True, tight_windows=True, multi_windows=True, pairs=2
    )
    short = tuple(
        replace(j, windows=(TimeWindow(j.windows[0].start_s, j.windows[0].start_s + 2700),))
        if k % 3 == 0 and j.pair_id is None
        else j
        for k, j in enumerate(problem.jobs)
    )
    problem = Problem(problem.depots, problem.couriers, short, name=problem.name)
    assert _pyvrp_supported(problem)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=1.0))
    assert plan.stats["engine"] == "pyvrp+ortools"
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)


def test_dear_couriers_fill_their_motorbikes() -> None:
    """When a courier costs more than any detour, the plan uses the fewest the loads allow.

    Thirty one-item jobs, motorbikes of ten items, a lunch break shared by all: three
    couriers are needed and enough, whatever PyVRP's first pass used.
    """
    rng = np.random.default_rng(5)
    jobs = tuple(
        job(f"j{i}", float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)), demand=Load(items=1))
        for i in range(30)
    )
    couriers = tuple(
        courier(f"c{k}", capacity=Load(items=10), brk=(11 * H + 1800, 13 * H + 1800, 3600))
        for k in range(6)
    )
    problem = Problem((depot(),), couriers, jobs)
    dur, dist = matrices(problem)
    params = SolverParams(time_limit_s=1.5, vehicle_fixed_cost=100_000)
    plan = solve(problem, dur, dist, params=params)
    assert check_plan(problem, plan, dur, dist) == []
    assert not plan.unassigned
    assert plan.num_routes == 3


def _promise_case() -> tuple[Problem, np.ndarray, np.ndarray, SolveGuide, tuple[str, ...]]:
    """A round in force A, C, B (A and B neighbours), its promised starts, an urgent job U."""
    jobs = (
        job("A", 5, 0),
        job("C", 0, 5),
        job("B", 5, 0.2),
        job("U", 1, 1, priority=5),
    )
    problem = Problem((depot(),), (courier("c0"),), jobs)
    dur, dist = matrices(problem)
    in_force = ("A", "C", "B")
    # The promised starts are those of the round in force, leaving at 07:00.
    promised: dict[str, int] = {}
    t, loc = 7 * H, 0
    for jid in in_force:
        k = 1 + next(i for i, j in enumerate(jobs) if j.job_id == jid)
        t += int(dur[loc, k])
        promised[jid] = t
        t += jobs[k - 1].service_s
        loc = k
    guide = SolveGuide(
        initial={"c0": in_force},
        preferred=dict.fromkeys(in_force, "c0"),
        reassign_cost=1800,
        promised_s=promised,
        promise_slack_s=60,
    )
    return problem, dur, dist, guide, in_force


def _order(plan: Plan) -> list[str]:
    (route,) = plan.routes
    return [j for j in route.job_ids if j != "U"]


def test_a_guided_search_keeps_promised_times_and_still_inserts_urgent_jobs() -> None:
    """A re-plan keeps the times citizens were told, even against a shorter order.

    The round in force visits A, C, B although A and B are neighbours: visiting B right
    after A saves about 14 minutes of driving but moves B's promised start by half an hour.
    Without promised times the search takes the shorter order (the test's control); with
    them it keeps the order told, and the urgent job (inserted where promised times are not
    priced, :func:`routing.solver._guided_start`) is still served.
    """
    problem, dur, dist, guide, in_force = _promise_case()
    params = SolverParams(time_limit_s=1.0, use_pyvrp=False)
    loose = solve(problem, dur, dist, params=params, guide=guide.without_promises())
    assert _order(loose) != list(in_force), "control: the shorter order is taken without promises"
    kept = solve(problem, dur, dist, params=params, guide=guide)
    assert check_plan(problem, kept, dur, dist) == []
    assert kept.stats["promises"] == "priced"
    assert _order(kept) == list(in_force)
    assert "U" in kept.assigned_job_ids()


def test_a_guided_search_starts_from_the_rounds_in_force_when_promises_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rounds that do not load where promised times are priced are searched without them.

    The rounds in force, with the urgent job inserted, are still among the search's starts
    (a construction heuristic may then start cheaper: without promised times the shorter
    order costs less).
    """
    import routing.solver

    monkeypatch.setattr(routing.solver, "_read_routes", lambda *args: None)
    problem, dur, dist, guide, _ = _promise_case()
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=0.5), guide=guide)
    assert check_plan(problem, plan, dur, dist) == []
    assert plan.stats["promises"] == "not priced"
    assert "replan+ortools" in plan.stats["start"]
    assert "U" in plan.assigned_job_ids()


def test_a_route_emptied_for_pyvrp_cannot_come_back() -> None:
    """The smaller fleet lacks the emptied route's vehicle, even when it was the only one of its kind.

    Two clients next to a depot; three vehicle types of one vehicle each, two of them based
    far away. The near vehicle serves one client, a far one the other: with the near route
    emptied, the far vehicle must serve both, though the near one would be far cheaper.
    """
    from pyvrp import Model, Route, Solution
    from pyvrp import solve as pyvrp_solve
    from pyvrp.stop import MaxIterations

    from routing.solver import _fleet_without

    m = Model()
    places = [m.add_location(x, 0) for x in (0, 1000, 1, 2)]
    near, far = m.add_depot(places[0]), m.add_depot(places[1])
    for place in places[2:]:
        m.add_client(place, service_duration=60)
    m.add_vehicle_type(1, start_depot=far, end_depot=far, name="far-1")
    m.add_vehicle_type(1, start_depot=far, end_depot=far, name="far-2")
    m.add_vehicle_type(1, start_depot=near, end_depot=near, name="near")
    for a in places:
        for b in places:
            m.add_edge(a, b, distance=int(abs(a.x - b.x)), duration=int(abs(a.x - b.x)))
    data = m.data()
    # A solution of two routes: the near vehicle serves one client, far-1 the other.
    two = Solution(data, [Route(data, [0], 2), Route(data, [1], 0)])
    assert two.is_feasible()

    smaller, kept = _fleet_without(data, two.routes(), victim=0)
    again = pyvrp_solve(smaller, MaxIterations(200), seed=0, collect_stats=False).best
    assert again.is_feasible()
    assert again.num_clients() == 2
    assert all(kept[r.vehicle_type()] != 2 for r in again.routes())


def test_ortools_search_from_pyvrp_start_is_capped_and_pyvrp_gets_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ortools_after_pyvrp_max_s`` gives PyVRP all the search but those seconds.

    Without it PyVRP gets ``pyvrp_share`` of the time limit; with it, OR-Tools' search from
    PyVRP's start is left only the cap. The run time the solver asks of PyVRP is caught on
    its way in (PyVRP then fails, and OR-Tools plans alone).
    """
    import pyvrp
    from pyvrp import stop as pyvrp_stop

    problem = random_problem(5, n_jobs=30, n_couriers=3)
    asked: list[float] = []
    real_max_runtime = pyvrp_stop.MaxRuntime

    def max_runtime(seconds: float) -> Any:
        asked.append(seconds)
        return real_max_runtime(seconds)

    def fail(data: Any, stop: Any, **kwargs: Any) -> Any:
        raise RuntimeError("caught")

    monkeypatch.setattr(pyvrp_stop, "MaxRuntime", max_runtime)
    monkeypatch.setattr(pyvrp, "solve", fail)
    limit = 3.0
    for cap in (None, 0.15):
        asked.clear()
        params = SolverParams(time_limit_s=limit, pyvrp_share=0.8, ortools_after_pyvrp_max_s=cap)
        plan = solve(problem, *matrices(problem), params=params)
        _assert_complete(problem, plan)
        assert len(asked) == 1, "PyVRP was not asked to warm-start the problem"
        if cap is None:
            assert asked[0] <= 0.8 * limit
        else:
            # the model is built before PyVRP starts: its time comes off PyVRP's
            assert asked[0] > limit - cap - 0.3 > 0.8 * limit


def test_pyvrp_searches_every_client_of_a_full_piece_as_a_neighbour_when_couriers_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a fixed cost per courier, PyVRP considers every client of the biggest piece.

    Its default granular neighbourhood (the 50 nearest) keeps a job's moves among its nearest
    stops, and in a mountain office the search then leaves feasible jobs out on every
    courier's round (see ``routing.solver.PYVRP_NEIGHBOURS``); without a fixed cost the
    default stays. The data and parameters the solver hands PyVRP are caught on their way in
    and PyVRP's own neighbourhood is computed from them.
    """
    import pyvrp
    from pyvrp.search import compute_neighbours

    from routing.planner import MAX_JOBS_PER_PIECE

    problem = random_problem(
        3, n_jobs=MAX_JOBS_PER_PIECE, n_couriers=8, multi_windows=True, breaks=True
    )
    handed: list[tuple[Any, Any]] = []

    def catch(data: Any, stop: Any, **kwargs: Any) -> Any:
        handed.append((data, kwargs.get("params")))
        raise RuntimeError("caught")  # PyVRP's failure path: OR-Tools plans alone

    monkeypatch.setattr(pyvrp, "solve", catch)
    for fixed_cost, everyone in ((1800, True), (0, False)):
        handed.clear()
        params = SolverParams(time_limit_s=0.5, vehicle_fixed_cost=fixed_cost)
        plan = solve(problem, *matrices(problem), params=params)
        _assert_complete(problem, plan)
        assert handed, "PyVRP was not asked to warm-start the piece"
        data, search = handed[0]
        activities = data.num_clients + 2 * data.num_shipments
        assert activities > 1.5 * MAX_JOBS_PER_PIECE  # most jobs have two windows
        if everyone:
            neighbours = compute_neighbours(data, search.neighbourhood)
            assert neighbours
            assert all(len(near) == activities - 1 for near in neighbours.values())
        else:
            assert search is None  # PyVRP's defaults


def _required_per_pyvrp_call(
    monkeypatch: pytest.MonkeyPatch, problem: Problem, params: SolverParams
) -> tuple[Plan, list[tuple[int, int]]]:
    """Solve, catching the data handed to PyVRP: per call, (jobs required, jobs in all).

    PyVRP then solves the data it was handed.
    """
    import pyvrp

    real_solve = pyvrp.solve
    required: list[tuple[int, int]] = []

    def count(data: Any, stop: Any, **kwargs: Any) -> Any:
        grouped = {c for g in data.groups() for c in g.clients}
        alone = [c for i, c in enumerate(data.clients()) if data.num_depots + i not in grouped]
        jobs = len(alone) + data.num_groups + data.num_shipments
        needed = sum(c.required for c in alone) + sum(g.required for g in data.groups())
        needed += sum(s.required for s in data.shipments())
        required.append((needed, jobs))
        return real_solve(data, stop, **kwargs)

    monkeypatch.setattr(pyvrp, "solve", count)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=params)
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)
    assert len(required) >= 2, "PyVRP searched once only"
    assert required[0][0] == 0, "PyVRP's first moments see every job optional"
    return plan, required


def test_jobs_pyvrp_serves_stay_served_and_the_one_left_out_stays_optional(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After PyVRP's first moments, the jobs it serves are required and the others optional.

    Sixty-one one-item jobs, one of them with two windows, for one motorbike of sixty items
    that costs: a later PyVRP call requires some jobs but not all (the one left out can still
    be dropped), and the plan serves sixty.
    """
    rng = np.random.default_rng(11)
    jobs = tuple(
        job(
            f"j{i}",
            float(rng.uniform(-3, 3)),
            float(rng.uniform(-3, 3)),
            windows=((7 * H, 11 * H), (14 * H, 17 * H)) if i == 0 else ((7 * H, 17 * H),),
            service_s=60,
            demand=Load(items=1),
        )
        for i in range(61)
    )
    couriers = (courier("c0", capacity=Load(items=60)),)
    params = SolverParams(time_limit_s=1.5, vehicle_fixed_cost=1800)
    plan, required = _required_per_pyvrp_call(
        monkeypatch, Problem((depot(),), couriers, jobs), params
    )
    assert len(plan.unassigned) == 1
    later = required[1:]
    assert any(needed for needed, _ in later)
    assert all(needed < jobs for needed, jobs in later)


def test_on_a_day_too_full_every_job_stays_optional_for_pyvrp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where jobs compete for the rounds, PyVRP may trade a served job for another all along.

    Twelve jobs with short windows at one place, one of them with two windows, two couriers
    who cost: PyVRP's first moments leave many out, so no later call requires a job, and the
    plan drops what does not fit with its reason.
    """
    morning = ((8 * H, 8 * H + 900),)
    jobs = tuple(
        job(
            f"j{i}",
            5,
            0,
            windows=morning if i else (*morning, (14 * H, 14 * H + 900)),
            service_s=500,
        )
        for i in range(12)
    )
    couriers = tuple(courier(f"c{k}", brk=(11 * H, 13 * H, 3600)) for k in range(2))
    params = SolverParams(time_limit_s=1.5, vehicle_fixed_cost=1800)
    plan, required = _required_per_pyvrp_call(
        monkeypatch, Problem((depot(),), couriers, jobs), params
    )
    assert plan.unassigned, "control: the day is too full"
    assert all(u.reason == "dropped_low_priority" for u in plan.unassigned)
    assert all(needed == 0 for needed, _ in required)


def test_on_a_day_too_full_ortools_searches_from_its_own_start_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where jobs compete for the rounds, PyVRP's start is not the only one searched.

    PyVRP's routes are made to leave out the urgent job (as a PyVRP search that settled on
    the wrong trade). OR-Tools searches from that start and from its own insertion start,
    each in turn, and keeps the cheaper: the urgent job is served, what does not fit is
    dropped with its reason.
    """
    import routing.solver as solver_module

    real = solver_module._pyvrp_routes

    def without_the_urgent_job(problem: Problem, model: Any, *args: Any, **kw: Any) -> Any:
        routes = real(problem, model, *args, **kw)
        urgent = next(p for p, j in enumerate(problem.jobs) if j.job_id == "urgent")
        node = model.job_node[urgent]
        return None if routes is None else [[n for n in r if n != node] for r in routes]

    monkeypatch.setattr(solver_module, "_pyvrp_routes", without_the_urgent_job)
    # PyVRP settles at once on eleven jobs; a short stall keeps that so on a loaded machine.
    monkeypatch.setattr(solver_module, "CROWDED_STALL_ITERATIONS", 200)
    jobs = (
        job("urgent", -6, 0, service_s=1200, priority=5),
        *(job(f"j{i}", 6, 0.2 * i, service_s=1200) for i in range(10)),
    )
    couriers = (courier("c0", shift=(8 * H, 12 * H)),)
    problem = Problem((depot(),), couriers, jobs)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=2.0, vehicle_fixed_cost=1800))
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)
    assert plan.unassigned, "control: the day is too full"
    assert all(u.reason == "dropped_low_priority" for u in plan.unassigned)
    assert "urgent" in plan.assigned_job_ids()
    searched = plan.stats["searched"]
    assert "pyvrp+ortools" in searched
    assert any(name.startswith("ortools(") for name in searched)
    assert plan.stats["engine"] == min(searched, key=searched.__getitem__)


def test_a_slow_recreation_leaves_the_route_less_attempt_its_search_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When recreating a plan without a route overruns PyVRP's time, PyVRP's plan stands.

    The recreation is made to find nothing and to return after the solve's deadline (as on
    a loaded machine): the attempt's own search then has no time, which must not throw
    PyVRP's plan away for OR-Tools alone.
    """
    import routing.solver as solver_module

    deadlines: list[float] = []

    def late(
        data: Any, solution: Any, search: Any, seed: int, deadline: float, neighbours: Any
    ) -> None:
        deadlines.append(deadline)
        time.sleep(max(0.0, deadline - time.monotonic()) + 1.0)

    monkeypatch.setattr(solver_module, "_cheapest_without_a_route", late)
    rng = np.random.default_rng(5)
    jobs = tuple(
        job(f"j{i}", float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)), demand=Load(items=1))
        for i in range(30)
    )
    couriers = tuple(courier(f"c{k}", capacity=Load(items=12)) for k in range(4))
    problem = Problem((depot(),), couriers, jobs)
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=1.0, vehicle_fixed_cost=1800))
    assert deadlines, "no attempt at a route less was made"
    assert plan.stats.get("engine") == "pyvrp+ortools"
    assert check_plan(problem, plan, dur, dist) == []
    _assert_complete(problem, plan)
    assert not plan.unassigned


def _two_far_trips() -> tuple[Any, Any]:
    """PyVRP's data and a plan whose two routes each drive to the same far commune.

    Ten one-item jobs, six in town (1-6 km out) and four in a commune 100 km out, for
    motorbikes of seven items: both routes carry two of the commune's jobs and three of the
    town's, so no single move of a job saves the second trip, and a swap of a commune job for
    a town one saves nothing until a second swap.
    """
    from pyvrp import Model, Route, Solution

    m = Model()
    xs = [0, 1, 2, 3, 4, 5, 6, 100, 101, 102, 103]
    places = [m.add_location(x, 0) for x in xs]
    depot_ = m.add_depot(places[0])
    m.add_vehicle_type(3, capacity=[7], start_depot=depot_, end_depot=depot_, fixed_cost=10)
    clients = [m.add_client(place, delivery=[1]) for place in places[1:]]
    for a in places:
        for b in places:
            m.add_edge(a, b, distance=abs(a.x - b.x), duration=abs(a.x - b.x))
    data = m.data()
    by_x = {int(xs[k + 1]): k for k in range(len(clients))}
    first = [by_x[x] for x in (1, 3, 5, 100, 102)]
    second = [by_x[x] for x in (2, 4, 6, 101, 103)]
    return data, Solution(data, [Route(data, first, 0), Route(data, second, 0)])


def test_the_route_ruin_sends_one_round_to_a_far_commune_where_two_went() -> None:
    """Two routes that both drive to a far commune become plans where one round goes there."""
    from routing.solver import _pyvrp_cost, _pyvrp_search_params, _ruin_routes

    data, twice = _two_far_trips()
    assert twice.is_feasible()

    def far_trips(solution: Any) -> int:
        return sum(
            any(data.location(data.client(a.idx).location).x >= 100 for a in route)
            for route in solution.routes()
        )

    assert far_trips(twice) == 2
    once = _ruin_routes(data, twice, _pyvrp_search_params(), 0, time.monotonic() + 5)
    assert once.is_feasible()
    assert far_trips(once) == 1
    assert _pyvrp_cost(once) < _pyvrp_cost(twice)
    assert once.num_clients() == data.num_clients
    # with no time left the plan comes back as it was
    late = _ruin_routes(data, twice, _pyvrp_search_params(), 0, time.monotonic() - 1)
    assert _pyvrp_cost(late) == _pyvrp_cost(twice)


@pytest.mark.parametrize(
    ("shipments", "clients", "vehicles", "splits"),
    [
        (((1, 2), (3, 5), (4, 6)), (7, 8), 3, True),
        (((1, 2), (3, 5), (4, 6)), (7, 8), 1, False),  # no vehicle of the type left
        (((1, 4), (2, 5), (3, 6)), (), 3, False),  # something on board all along
    ],
)
def test_a_route_split_in_two_keeps_each_shipment_on_one_half(
    shipments: tuple[tuple[int, int], ...], clients: tuple[int, ...], vehicles: int, splits: bool
) -> None:
    """The longest route is cut where nothing is on board, into two routes of its type.

    One route of PyVRP's along a line (pickups and deliveries at the given places, a courier
    dearer than any detour); it is not split when the type has no vehicle left or a shipment
    is on board at every stop but the last.
    """
    from pyvrp import Model, Solution
    from pyvrp import solve as pyvrp_solve
    from pyvrp.stop import MaxIterations

    from routing.solver import _route_split

    m = Model()
    places = [m.add_location(x, 0) for x in range(9)]
    depot_ = m.add_depot(places[0])
    m.add_vehicle_type(vehicles, start_depot=depot_, end_depot=depot_, fixed_cost=100_000)
    for a, b in shipments:
        m.add_shipment(places[a], places[b])
    for x in clients:
        m.add_client(places[x])
    for a in places:
        for b in places:
            m.add_edge(a, b, distance=abs(a.x - b.x), duration=abs(a.x - b.x))
    data = m.data()
    one = pyvrp_solve(data, MaxIterations(50), seed=0, collect_stats=False).best
    assert one.is_feasible()
    assert one.num_routes() == 1
    split = _route_split(data, one)
    if not splits:
        assert split is None
        return
    assert split is not None
    two = Solution(data, split)
    assert two.num_routes() == 2
    assert two.num_clients() == len(clients)
    assert two.num_shipments() == len(shipments)
    for route in two.routes():
        on_board = [a.idx for a in route if a.is_shipment()]
        assert all(on_board.count(s) == 2 for s in on_board), "a shipment cut in two"


@pytest.mark.parametrize("cut", [False, True])
def test_a_courier_whose_round_cannot_end_leaves_the_others_a_plan(cut: bool) -> None:
    """c1 ends at another post office farther than their one-hour shift allows (or cut off).

    No round of theirs can end, not even an empty one: the whole search used to find no
    plan, and every job came back ``time_limit`` though c0 could serve them all.
    """
    from dataclasses import replace

    problem = Problem(
        (depot("D"), depot("F", 60, 0)),
        (courier("c0"), replace(courier("c1", shift=(8 * H, 9 * H)), end_depot_id="F")),
        tuple(job(f"j{k}", k * 0.5, 0.3) for k in range(1, 8)),
    )
    dur, dist = matrices(problem)
    if cut:  # no road between the two post offices
        dur[0, 1] = dur[1, 0] = dist[0, 1] = dist[1, 0] = UNREACHABLE
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=1))
    assert check_plan(problem, plan, dur, dist) == []
    assert not plan.unassigned
    assert [r.courier_id for r in plan.routes if r.stops] == ["c0"]
    why = "no_road" if cut else "ride_outlasts_shift"
    assert plan.stats["stranded"] == {"c1": {"reason": why, "from": "D", "to": "F"}}
