"""Plan routes with OR-Tools (the only module importing ortools), optionally warm-started by PyVRP.

The model is built from integer matrices registered with ``RegisterTransitMatrix`` /
``RegisterUnaryTransitVector``: no Python callback runs inside the search (the only Python
callback is ``AddAtSolutionCallback``, once per solution, for progress).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util.optional_boolean_pb2 import BOOL_FALSE, BOOL_TRUE

from routing.errors import InputError, SolverError
from routing.model import LOAD_DIMENSIONS, UNREACHABLE, Courier, Job, Load, Problem, TimeWindow
from routing.params import SolverParams
from routing.plan import Plan, ReasonCode, Route, Unassigned
from routing.progress import NullCallbacks, SolveCallbacks
from routing.schedule import RouteStart, build_route, schedule_route

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

__all__ = ["UNREACHABLE", "SolveGuide", "solve"]


# --------------------------------------------------------------------------------------------
# Pre-checks
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Screen:
    """Outcome of the pre-checks: eligible couriers per kept job, reasons for the others."""

    eligible: dict[int, list[int]] = field(default_factory=dict)
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SolveGuide:
    """What a re-plan keeps from the plan in force: its rounds, couriers and promised times.

    Parameters
    ----------
    initial
        Each courier's current round (job ids in order): the search starts from it; jobs not
        on it (new, orphaned) are inserted by the search.
    preferred
        The courier each job had: serving it with another courier costs ``reassign_cost``.
    reassign_cost
        Cost of giving a job to another courier, in arc-cost units (seconds of driving).
    promised_s
        Service start the citizen may have been told, per job id.
    promise_slack_s
        Moving a promised start by less than this costs nothing; each second beyond costs 1.
    on_board
        What each courier already carries, by courier id (a courier on the road): their round
        starts with it, whichever of its deliveries the search keeps (one left out stays on
        the motorbike); their unpaired deliveries are all on board (none is loaded at a
        depot). Their capacity is at least what they carry.
    """

    initial: dict[str, tuple[str, ...]] = field(default_factory=dict)
    preferred: dict[str, str] = field(default_factory=dict)
    reassign_cost: int = 0
    promised_s: dict[str, int] = field(default_factory=dict)
    promise_slack_s: int = 1800
    on_board: dict[str, Load] = field(default_factory=dict)

    def without(self, couriers: Collection[str]) -> SolveGuide:
        """Return this guide without ``couriers`` (their rounds, preferences and loads)."""
        return replace(
            self,
            initial={c: seq for c, seq in self.initial.items() if c not in couriers},
            preferred={j: c for j, c in self.preferred.items() if c not in couriers},
            on_board={c: load for c, load in self.on_board.items() if c not in couriers},
        )

    def without_promises(self) -> SolveGuide:
        """Return this guide with no promised times (see :func:`_guided_start`)."""
        return replace(self, promised_s={})


def _shift_bounds(problem: Problem, courier: Courier) -> tuple[int, int, int, int]:
    """Return (start depot loc, end depot loc, earliest leave, latest return)."""
    depots = problem.depot_by_id()
    start_depot = depots[courier.depot_id]
    end_depot = depots[courier.end_depot]
    earliest = max(courier.shift.start_s, start_depot.opening.start_s)
    latest = min(courier.shift.end_s, end_depot.opening.end_s)
    return (
        problem.depot_index(courier.depot_id),
        problem.depot_index(courier.end_depot),
        earliest,
        latest,
    )


def _stranded(problem: Problem, durations: NDArray[np.int64]) -> dict[str, dict[str, str]]:
    """Return the couriers who cannot ride from where they start to where they end in their shift.

    An empty round of such a courier breaks their shift, so no plan of the whole problem
    exists (a courier ending at another post office too far for a short shift, offices cut
    apart by closures). Each gets no round, and why: ``{"reason": "no_road" |
    "ride_outlasts_shift", "from": start office, "to": end office}``. A re-plan leaves out
    its own such couriers first (``routing.replan``), to give what they carry its reason.
    """
    out: dict[str, dict[str, str]] = {}
    for c in problem.couriers:
        start, end, earliest, latest = _shift_bounds(problem, c)
        drive = int(durations[start, end])
        if drive >= UNREACHABLE:
            reason = "no_road"
        elif earliest + drive > max(earliest, latest):
            reason = "ride_outlasts_shift"
        else:
            continue
        out[c.courier_id] = {"reason": reason, "from": c.depot_id, "to": c.end_depot}
    return out


def _direct_trip(
    legs: list[tuple[Job, int]],
    start_loc: int,
    end_loc: int,
    earliest: int,
    latest: int,
    durations: NDArray[np.int64],
) -> str | None:
    """Try depot -> legs... -> depot directly; return ``None`` if it fits, else a failure kind.

    Failure kinds: ``"unreachable"``, ``"shift_too_short"`` (does not fit in the shift even
    ignoring windows), ``"no_feasible_window"``.
    """
    locs = [start_loc] + [loc for _, loc in legs] + [end_loc]
    travel = 0
    for a, b in itertools.pairwise(locs):
        if durations[a, b] >= UNREACHABLE:
            return "unreachable"
        travel += int(durations[a, b])
    if travel + sum(job.service_s for job, _ in legs) > latest - earliest:
        return "shift_too_short"
    t = earliest
    prev = start_loc
    for job, loc in legs:
        start = job.earliest_start_from(t + int(durations[prev, loc]))
        if start is None:
            return "no_feasible_window"
        t = start + job.service_s
        prev = loc
    if t + int(durations[prev, end_loc]) > latest:
        return "no_feasible_window"
    return None


_FAILURE_ORDER: tuple[str, ...] = (
    ReasonCode.NO_FEASIBLE_WINDOW,
    ReasonCode.SHIFT_TOO_SHORT,
    ReasonCode.UNREACHABLE,
)


def _screen_jobs(problem: Problem, durations: NDArray[np.int64]) -> _Screen:
    """Decide which jobs can possibly be served, and by whom; give reasons for the others."""
    screen = _Screen()
    partner = problem.pair_partner()
    pos_by_id = {j.job_id: i for i, j in enumerate(problem.jobs)}
    all_skills: set[str] = set().union(*(c.skills for c in problem.couriers))
    bounds = [_shift_bounds(problem, c) for c in problem.couriers]

    for pos, job in enumerate(problem.jobs):
        if not problem.couriers:
            screen.rejected[pos] = ("no_courier", "the problem has no couriers")
            continue
        missing = job.skills - all_skills
        if missing:
            screen.rejected[pos] = ("missing_skill", f"no courier has {sorted(missing)}")
            continue
        skilled = [v for v, c in enumerate(problem.couriers) if job.skills <= c.skills]
        if job.depot_id is not None:
            skilled = [v for v in skilled if problem.couriers[v].depot_id == job.depot_id]
            if not skilled:
                screen.rejected[pos] = (
                    "no_eligible_courier",
                    f"no courier with the skills works at post office {job.depot_id}",
                )
                continue
        fitting = [v for v in skilled if job.demand.fits_in(problem.couriers[v].capacity)]
        if not fitting:
            screen.rejected[pos] = ("over_capacity", f"demand {job.demand} exceeds every capacity")
            continue
        legs: list[tuple[Job, int]] = [(job, problem.job_location(pos))]
        failures: set[str] = set()
        ok: list[int] = []
        tried: dict[tuple[int, int, int, int], str | None] = {}
        for v in fitting:
            if bounds[v] not in tried:  # couriers of one post office usually share a shift
                tried[bounds[v]] = _direct_trip(legs, *bounds[v], durations)
            failure = tried[bounds[v]]
            if failure is None:
                ok.append(v)
            else:
                failures.add(failure)
        if ok:
            screen.eligible[pos] = ok
            continue
        reason = next(r for r in _FAILURE_ORDER if r in failures)
        detail = {
            "unreachable": "no road between the address and any eligible courier's post office",
            "shift_too_short": "the direct round trip is longer than every eligible shift",
            "no_feasible_window": "no eligible courier can arrive within a window and return",
        }[reason]
        screen.rejected[pos] = (reason, detail)

    # Pairs whose halves are each feasible: the whole trip, pickup first, by one courier.
    for pos, job in enumerate(problem.jobs):
        if job.pair_id is None or job.kind != "pickup" or pos not in screen.eligible:
            continue
        other_pos = pos_by_id[partner[job.job_id]]
        if other_pos not in screen.eligible:
            continue
        legs = [
            (job, problem.job_location(pos)),
            (problem.jobs[other_pos], problem.job_location(other_pos)),
        ]
        both = [v for v in screen.eligible[pos] if v in set(screen.eligible[other_pos])]
        failures = set()
        ok = []
        for v in both:
            failure = _direct_trip(legs, *bounds[v], durations)
            if failure is None:
                ok.append(v)
            else:
                failures.add(failure)
        if ok:
            screen.eligible[pos] = screen.eligible[other_pos] = ok
            continue
        reason = next((r for r in _FAILURE_ORDER if r in failures), "pair_incomplete")
        for p in (pos, other_pos):
            screen.eligible.pop(p)
            screen.rejected[p] = (reason, "no courier can do the pickup and then the delivery")

    # The partner of a rejected job is rejected too.
    for pos in list(screen.rejected):
        job = problem.jobs[pos]
        if job.pair_id is None:
            continue
        other_pos = pos_by_id[partner[job.job_id]]
        if other_pos not in screen.rejected:
            screen.rejected[other_pos] = (
                "pair_incomplete",
                f"partner {job.job_id} cannot be served ({screen.rejected[pos][0]})",
            )
            screen.eligible.pop(other_pos, None)
    return screen


# --------------------------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------------------------


def _validate_matrices(
    problem: Problem, durations: NDArray[np.int64], distances: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    n = problem.num_locations
    out = []
    for name, matrix in (("durations", durations), ("distances", distances)):
        arr = np.asarray(matrix)
        if arr.shape != (n, n):
            msg = f"must be {n}x{n} (depots then jobs), got {arr.shape}"
            raise InputError(None, name, arr.shape, msg)
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(None, name, str(arr.dtype), "must hold integers")
        arr = arr.astype(np.int64, copy=False)
        if (arr < 0).any():
            raise InputError(None, name, int(arr.min()), "must be non-negative")
        out.append(arr)
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# The OR-Tools model
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Model:
    manager: Any
    routing: Any
    time_dim: Any
    node_loc: list[int]  # OR-Tools node -> problem location
    node_job: list[int | None]  # OR-Tools node -> job position (None for depots)
    job_node: dict[int, int]  # job position -> OR-Tools node
    breaks: dict[int, Any]  # vehicle -> interval var
    penalties: dict[int, int]  # job position -> drop penalty
    cost: NDArray[np.int64]  # arc cost matrix on OR-Tools nodes
    pair_indices: dict[int, int]  # pickup variable index -> delivery variable index


def _drop_penalty(problem: Problem, cost: NDArray[np.int64], params: SolverParams) -> int:
    if params.drop_penalty is not None:
        return params.drop_penalty
    finite = cost[cost < UNREACHABLE]
    max_arc = int(finite.max()) if finite.size else 0
    return 10 * (2 * max_arc + params.vehicle_fixed_cost + 1)


def _build_model(
    problem: Problem,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    screen: _Screen,
    params: SolverParams,
    guide: SolveGuide | None = None,
    *,
    balance: bool = False,
) -> _Model:
    """Build the OR-Tools model; with ``balance``, one that also evens working time.

    The balancing model pays ``params.balance_weight`` per second of the latest return less
    the earliest departure (a global span cost on the time dimension). To allow weights
    below one, its every cost (arcs, fixed costs, drop penalties, a guide's costs of change)
    is multiplied by :data:`BALANCE_SCALE`; the plan's objective is computed outside.
    """
    couriers = problem.couriers
    scale = BALANCE_SCALE if balance else 1
    kept = sorted(screen.eligible)
    depot_locs = sorted(
        {problem.depot_index(c.depot_id) for c in couriers}
        | {problem.depot_index(c.end_depot) for c in couriers}
    )
    node_loc = depot_locs + [problem.job_location(p) for p in kept]
    node_job: list[int | None] = [None] * len(depot_locs) + list(kept)
    job_node = {p: len(depot_locs) + k for k, p in enumerate(kept)}
    depot_node = {loc: k for k, loc in enumerate(depot_locs)}
    starts = [depot_node[problem.depot_index(c.depot_id)] for c in couriers]
    ends = [depot_node[problem.depot_index(c.end_depot)] for c in couriers]

    manager = pywrapcp.RoutingIndexManager(len(node_loc), len(couriers), starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()

    idx = np.asarray(node_loc, dtype=np.int64)
    sub_dur = durations[np.ix_(idx, idx)]
    sub_cost = (durations if params.objective == "duration" else distances)[np.ix_(idx, idx)]
    forbidden = (sub_dur >= UNREACHABLE) | (sub_cost >= UNREACHABLE)

    horizon = max(_shift_bounds(problem, c)[3] for c in couriers)
    service = np.zeros(len(node_loc), dtype=np.int64)
    for p, node in job_node.items():
        service[node] = problem.jobs[p].service_s

    # Arc cost: forbidden arcs get a large but safe cost (they are infeasible in time anyway).
    finite_cost = sub_cost[~forbidden]
    big_cost = 4 * (int(finite_cost.max()) if finite_cost.size else 1) + 1
    cost = np.where(forbidden, big_cost, sub_cost).astype(np.int64)
    if guide is not None and guide.preferred and guide.reassign_cost > 0:
        # One arc-cost matrix per courier: reaching a job another courier had costs extra.
        owner = _owners(problem, job_node, len(node_loc), guide)
        for v in range(len(couriers)):
            extra = np.where((owner >= 0) & (owner != v), guide.reassign_cost, 0)
            routing.SetArcCostEvaluatorOfVehicle(
                routing.RegisterTransitMatrix((scale * (cost + extra[None, :])).tolist()), v
            )
    else:
        cost_cb = routing.RegisterTransitMatrix((scale * cost).tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    if params.vehicle_fixed_cost:
        routing.SetFixedCostOfAllVehicles(scale * params.vehicle_fixed_cost)

    # Time: travel + service at the origin; a forbidden arc exceeds the horizon.
    time_matrix = np.where(forbidden, horizon + 1, sub_dur + service[:, None]).astype(np.int64)
    time_cb = routing.RegisterTransitMatrix(time_matrix.tolist())
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    for p, node in job_node.items():
        job = problem.jobs[p]
        cumul = time_dim.CumulVar(manager.NodeToIndex(node))
        cumul.SetRange(job.first_start_s, min(job.last_end_s, horizon))
        for before, after in zip(job.windows, job.windows[1:], strict=False):
            cumul.RemoveInterval(before.end_s + 1, after.start_s - 1)
    if guide is not None:
        # Keep the times citizens may have been told: a start moved beyond the slack costs.
        for p, node in job_node.items():
            promised = guide.promised_s.get(problem.jobs[p].job_id)
            if promised is None:
                continue
            index = manager.NodeToIndex(node)
            time_dim.SetCumulVarSoftUpperBound(index, promised + guide.promise_slack_s, scale)
            time_dim.SetCumulVarSoftLowerBound(
                index, max(0, promised - guide.promise_slack_s), scale
            )
    for v, courier in enumerate(couriers):
        _, _, earliest, latest = _shift_bounds(problem, courier)
        start = time_dim.CumulVar(routing.Start(v))
        end = time_dim.CumulVar(routing.End(v))
        start.SetRange(earliest, max(earliest, latest))
        end.SetRange(earliest, max(earliest, latest))
        routing.AddVariableMaximizedByFinalizer(start)
        routing.AddVariableMinimizedByFinalizer(end)
    if balance:
        # The latest return less the earliest departure costs too: the longest round gives
        # work away. (Soft span upper bounds per courier were measured too and left long
        # rounds in place: tests/benchmarks/results/README.md, "Balance".)
        time_dim.SetGlobalSpanCostCoefficient(max(1, round(params.balance_weight * scale)))

    # Breaks: one fixed-length interval inside the break window, outside service times.
    breaks: dict[int, Any] = {}
    if any(c.has_break for c in couriers):
        visit = [0] * routing.Size()
        for index in range(routing.Size()):
            visit[index] = int(service[manager.IndexToNode(index)])
        for v, courier in enumerate(couriers):
            if not courier.has_break or courier.break_window is None:
                continue
            window = courier.break_window
            interval = solver.FixedDurationIntervalVar(
                window.start_s,
                window.end_s - courier.break_duration_s,
                courier.break_duration_s,
                False,
                f"break {courier.courier_id}",
            )
            time_dim.SetBreakIntervalsOfVehicle([interval], v, visit)
            breaks[v] = interval

    # Loads, one group of dimensions per load component that is used.
    for d, dim_name in enumerate(LOAD_DIMENSIONS):
        on_board = guide.on_board if guide is not None else {}
        start_loads = [
            on_board[c.courier_id].as_tuple()[d] if c.courier_id in on_board else None
            for c in couriers
        ]
        _add_load_dimension(problem, routing, manager, job_node, d, dim_name, start_loads)

    # Pickup-and-delivery pairs.
    partner = problem.pair_partner()
    pos_by_id = {j.job_id: i for i, j in enumerate(problem.jobs)}
    pair_indices: dict[int, int] = {}
    for p, node in job_node.items():
        job = problem.jobs[p]
        if job.pair_id is None or job.kind != "pickup":
            continue
        d_node = job_node[pos_by_id[partner[job.job_id]]]
        p_index, d_index = manager.NodeToIndex(node), manager.NodeToIndex(d_node)
        routing.AddPickupAndDelivery(p_index, d_index)
        pair_indices[p_index] = d_index
        # AddPickupAndDelivery already keeps both halves on one route, pickup first, both
        # performed or neither; extra CP constraints (as in the samples) only slow the
        # filtered heuristics down.

    # Eligible couriers (skills, capacity, pre-assigned post office, direct-trip check).
    all_vehicles = list(range(len(couriers)))
    for p, node in job_node.items():
        allowed = screen.eligible[p]
        if allowed != all_vehicles:
            routing.VehicleVar(manager.NodeToIndex(node)).SetValues([-1, *allowed])

    # Optional jobs, priority-weighted.
    base = _drop_penalty(problem, cost, params)
    penalties: dict[int, int] = {}
    had_courier = guide.preferred if guide is not None else {}
    for p, node in job_node.items():
        penalties[p] = base * problem.jobs[p].priority
        if problem.jobs[p].job_id in had_courier:  # off its courier's round: a change too
            penalties[p] += guide.reassign_cost if guide is not None else 0
        routing.AddDisjunction([manager.NodeToIndex(node)], scale * penalties[p])

    return _Model(
        manager,
        routing,
        time_dim,
        node_loc,
        node_job,
        job_node,
        breaks,
        penalties,
        cost,
        pair_indices,
    )


def _owners(
    problem: Problem, job_node: dict[int, int], n_nodes: int, guide: SolveGuide | None
) -> NDArray[np.int64]:
    """Return, per model node, the vehicle the guide prefers for its job (-1: none)."""
    owner = np.full(n_nodes, -1, dtype=np.int64)
    if guide is None or not guide.preferred or guide.reassign_cost <= 0:
        return owner
    vehicle_of = {c.courier_id: v for v, c in enumerate(problem.couriers)}
    for p, node in job_node.items():
        had = guide.preferred.get(problem.jobs[p].job_id)
        if had is not None and had in vehicle_of:
            owner[node] = vehicle_of[had]
    return owner


def _add_load_dimension(
    problem: Problem,
    routing: Any,
    manager: Any,
    job_node: dict[int, int],
    d: int,
    dim_name: str,
    on_board: list[int | None] | None = None,
) -> None:
    """Add the dimension(s) tracking one load component.

    The load on board is ``start_load - delivered_so_far + picked_so_far`` where the start load
    is the sum of the route's unpaired deliveries, or what a courier on the road already
    carries (``on_board`` per vehicle, None for one leaving a depot). Three cases, cheapest
    model first: only unpaired deliveries (count what has been delivered), no unpaired
    deliveries (start empty or on board), or a mix (free start load linked to the route's
    total deliveries, or on board).
    """
    couriers = problem.couriers
    n_nodes = manager.GetNumberOfNodes()
    net = [0] * n_nodes
    delivered = [0] * n_nodes
    any_pickup_like = False
    any_unpaired_delivery = False
    for p, node in job_node.items():
        job = problem.jobs[p]
        amount = job.demand.as_tuple()[d]
        if amount == 0:
            continue
        if job.kind == "pickup":
            net[node] = amount
            any_pickup_like = True
        elif job.pair_id is not None:
            net[node] = -amount
            any_pickup_like = True
        else:
            net[node] = -amount
            delivered[node] = amount
            any_unpaired_delivery = True
    if not any_pickup_like and not any_unpaired_delivery:
        return
    starts = on_board or [None] * len(couriers)
    caps = [
        max(c.capacity.as_tuple()[d], start or 0) for c, start in zip(couriers, starts, strict=True)
    ]
    if not any_pickup_like:
        # Deliveries only: the load falls from the start; what is delivered must have fitted.
        cb = routing.RegisterUnaryTransitVector(delivered)
        routing.AddDimensionWithVehicleCapacity(cb, 0, caps, True, dim_name)
        return
    cb = routing.RegisterUnaryTransitVector(net)
    if not any_unpaired_delivery and not any(starts):
        routing.AddDimensionWithVehicleCapacity(cb, 0, caps, True, dim_name)
        return
    routing.AddDimensionWithVehicleCapacity(cb, 0, caps, False, dim_name)
    load = routing.GetDimensionOrDie(dim_name)
    done = None
    if any_unpaired_delivery:
        cb_del = routing.RegisterUnaryTransitVector(delivered)
        routing.AddDimensionWithVehicleCapacity(cb_del, 0, caps, True, f"{dim_name}_delivered")
        done = routing.GetDimensionOrDie(f"{dim_name}_delivered")
    solver = routing.solver()
    for v, start in enumerate(starts):
        if start is not None:  # on the road: it carries what it carries
            load.CumulVar(routing.Start(v)).SetValue(start)
        elif done is not None:  # leaves a depot loaded with its round's deliveries
            solver.Add(load.CumulVar(routing.Start(v)) == done.CumulVar(routing.End(v)))
        else:
            load.CumulVar(routing.Start(v)).SetValue(0)


# --------------------------------------------------------------------------------------------
# PyVRP warm start
# --------------------------------------------------------------------------------------------

LOOSE_WINDOW_FACTOR = 1.5


def _common_break(problem: Problem) -> tuple[int, int, int] | None:
    """Return ``(window start, window end, length)`` if every courier has that same break."""
    couriers = problem.couriers
    if not couriers or not all(c.has_break and c.break_window for c in couriers):
        return None
    kinds = {
        (c.break_window.start_s, c.break_window.end_s, c.break_duration_s)
        for c in couriers
        if c.break_window is not None
    }
    return kinds.pop() if len(kinds) == 1 else None


def _compressed_windows(
    window: TimeWindow, service_s: int, brk: tuple[int, int, int]
) -> list[tuple[int, int]]:
    """Return the windows of a stop on a clock that leaves the lunch break out.

    Every courier takes the same break ``(bs, be, length)``: a break of ``length`` starting at
    some ``B`` in ``[bs, be - length]``. On the compressed clock the break is an instant ``B``;
    a stop served at compressed ``t`` is served at ``t`` if before the break and at
    ``t + length`` after it. Each returned interval is safe whatever ``B`` the search picks:
    ``[a, bs - service]`` (done before any break can start), ``[a, b - length]`` (in the window
    either way) and ``[max(a, be) - length, b - length]`` (after any break has ended). So a
    route feasible on this clock stays feasible once the break is placed in a gap between
    stops of ``[bs, be - length]``; afternoon windows (after the break window) are exact.
    """
    a, b = window.start_s, window.end_s
    bs, be, length = brk
    parts = [
        (a, min(b, bs - service_s)),
        (a, b - length),
        (max(a, be) - length, b - length),
    ]
    parts = sorted((lo, hi) for lo, hi in parts if lo <= hi and hi >= 0)
    merged: list[tuple[int, int]] = []
    for lo, hi in parts:
        lo = max(0, lo)
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _break_is_exact(problem: Problem, screen: _Screen) -> bool:
    """Return whether PyVRP's clock without the break offers every searched job a window."""
    common = _common_break(problem)
    if common is None:
        return False
    for p in screen.eligible:
        job = problem.jobs[p]
        if not any(_compressed_windows(w, job.service_s, common) for w in job.windows):
            return False
    return True


def _pyvrp_supported(problem: Problem, screen: _Screen | None = None) -> bool:
    """Return whether PyVRP should warm-start the problem.

    PyVRP 0.14 has no skills, multiple windows, pre-assigned depots or breaks; they are
    mapped (see :func:`_pyvrp_routes`): per-courier eligibility becomes routing profiles with
    forbidden arcs, a job's windows a mutually exclusive client group, a break shared by every
    courier a clock without the break (:func:`_compressed_windows`), other breaks a
    conservative relaxation (a pair keeps one window per half, the pickup its longest and the
    delivery its latest, as shipments have one window: a restriction, so the start stays
    feasible). Left out: breaks
    that differ between couriers when some searched job's window is shorter than
    :data:`LOOSE_WINDOW_FACTOR` breaks -- that relaxation then costs more quality than
    OR-Tools alone loses.
    """
    if _common_break(problem) is not None:
        return True
    longest_break = max((c.break_duration_s for c in problem.couriers if c.has_break), default=0)
    limit = LOOSE_WINDOW_FACTOR * longest_break
    jobs = problem.jobs if screen is None else [problem.jobs[p] for p in screen.eligible]
    return not any(w.duration_s < limit for j in jobs for w in j.windows)


MAX_PYVRP_PROFILES = 16

#: Neighbours of each client in PyVRP's granular search when couriers cost (a fixed cost per
#: courier: the planner's pieces, Li & Lim): every client of a piece (a piece has at most a few
#: hundred). With PyVRP's default, its 50 nearest, a job's moves stay among its nearest
#: stops; in a mountain office, where a round drives to a few far communes, the search then
#: cannot gather a commune's jobs on fewer rounds, opens every courier's round and leaves
#: feasible jobs out (``BC-KONRAY#1`` of the 2,000-job day: 157-168 of 177 jobs on all 24
#: rounds in 7 s; with every client a neighbour all 177 on 20-22). Without a fixed cost the
#: default stays: on Solomon's distance the wide search is worse (mean gap 0.40 % against
#: 0.18 %; ``tests/benchmarks/results/README.md``).
PYVRP_NEIGHBOURS = 400


def _pyvrp_search_params() -> Any:
    """Return PyVRP's search parameters when couriers cost: every client a neighbour."""
    from pyvrp import SolveParams
    from pyvrp.search import NeighbourhoodParams

    return SolveParams(neighbourhood=NeighbourhoodParams(num_neighbours=PYVRP_NEIGHBOURS))


def _pyvrp_routes(
    problem: Problem,
    model: _Model,
    durations: NDArray[np.int64],
    params: SolverParams,
    deadline: float,
    screen: _Screen,
    guide: SolveGuide | None = None,
) -> list[list[int]] | None:
    """Solve with PyVRP until ``deadline`` (monotonic); return node sequences per vehicle.

    Couriers that may not serve some jobs (skills, pre-assigned post office, capacity, the
    pre-checks) get a routing profile whose arcs into those jobs are too long to use; with a
    guide's preferred couriers, arcs into a job another courier is preferred for cost
    ``guide.reassign_cost`` more, as in the OR-Tools model. A job
    with several windows becomes one client per window in a mutually exclusive group. A break
    every courier shares is left out of PyVRP's clock (:func:`_compressed_windows`: shifts end
    a break earlier, windows after the break window move a break earlier). Other breaks are
    relaxed conservatively: each shift ends a break earlier, and a window that closes after the
    break window opens closes a break earlier too, so that inserting the break later delays no
    stop past its window. Returns ``None`` without a feasible solution.
    """
    try:
        from pyvrp import Model as PyVRPModel
        from pyvrp import solve as pyvrp_solve
        from pyvrp.stop import MaxRuntime
    except ImportError:  # pragma: no cover - pyvrp is a dependency
        return None
    node_loc = model.node_loc
    n = len(node_loc)
    idx = np.asarray(node_loc, dtype=np.int64)
    sub_dur = durations[np.ix_(idx, idx)]
    horizon = max(_shift_bounds(problem, c)[3] for c in problem.couriers)
    dur = np.where(sub_dur >= UNREACHABLE, horizon + 1, sub_dur)
    cost = model.cost
    num_depots = sum(1 for j in model.node_job if j is None)
    owner = _owners(problem, model.job_node, n, guide)

    def build(required: Collection[int] = ()) -> Any:
        """Return PyVRP's data of the piece, the jobs at nodes ``required`` required.

        The others are optional: leaving one out costs its penalty, as PyVRP's prize.
        """
        client_node.clear()
        shipment_nodes.clear()
        type_vehicles.clear()
        m = PyVRPModel()
        locs = [m.add_location(0.0, 0.0) for _ in range(n)]
        depots = [m.add_depot(locs[k]) for k in range(num_depots)]
        dims = [
            d
            for d in range(len(LOAD_DIMENSIONS))
            if any(j.demand.as_tuple()[d] for j in problem.jobs)
            or any(c.capacity.as_tuple()[d] for c in problem.couriers)
        ]
        # Profiles: one per distinct set of jobs a courier may not serve (and, with preferred
        # couriers, per courier that is preferred for some job).
        signatures: dict[tuple[frozenset[int], int], int] = {}
        vehicle_profile: list[int] = []
        for v in range(len(problem.couriers)):
            forbidden = frozenset(
                node for p, node in model.job_node.items() if v not in screen.eligible[p]
            )
            owns = v if bool((owner == v).any()) else -1
            vehicle_profile.append(signatures.setdefault((forbidden, owns), len(signatures)))
        if len(signatures) > MAX_PYVRP_PROFILES:
            logger.info("PyVRP skipped: %d courier eligibility profiles", len(signatures))
            return None
        profiles = [m.add_profile() for _ in signatures]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for v, courier in enumerate(problem.couriers):
            s, e, earliest, latest = _shift_bounds(problem, courier)
            # PyVRP has no breaks: reserve the break's length by ending the shift earlier.
            latest -= courier.break_duration_s if courier.has_break else 0
            caps = tuple(courier.capacity.as_tuple()[d] for d in dims)
            key = (s, e, earliest, latest, caps, vehicle_profile[v])
            groups.setdefault(key, []).append(v)
        depot_node = {loc: k for k, loc in enumerate(node_loc[:num_depots])}
        for (s, e, earliest, latest, caps, profile), vehicles in groups.items():
            m.add_vehicle_type(
                len(vehicles),
                capacity=list(caps),
                start_depot=depots[depot_node[s]],
                end_depot=depots[depot_node[e]],
                fixed_cost=params.vehicle_fixed_cost,
                tw_early=earliest,
                tw_late=max(earliest, latest),
                profile=profiles[profile],
            )
            type_vehicles.append(vehicles)
        breaks = [c.break_window for c in problem.couriers if c.has_break and c.break_window]
        longest = max((c.break_duration_s for c in problem.couriers if c.has_break), default=0)
        first_break = min((w.start_s for w in breaks), default=0)

        common = _common_break(problem)

        def windows_of(job: Job) -> list[tuple[int, int]]:
            """Return the job's windows on PyVRP's clock (without breaks), merged, in order."""
            if common is None:
                # Breaks differ between couriers: a window closing after the first break window
                # opens closes a break earlier.
                return [
                    (
                        w.start_s,
                        max(w.start_s, w.end_s - longest)
                        if longest and w.end_s > first_break
                        else w.end_s,
                    )
                    for w in job.windows
                ]
            parts = sorted(
                iv for w in job.windows for iv in _compressed_windows(w, job.service_s, common)
            )
            merged: list[tuple[int, int]] = []
            for lo, hi in parts:
                if merged and lo <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
                else:
                    merged.append((lo, hi))
            return merged

        def pickup_window(job: Job) -> tuple[int, int] | None:
            return max(windows_of(job), key=lambda w: w[1] - w[0], default=None)

        def delivery_window(job: Job) -> tuple[int, int] | None:
            # The latest window: a delivery follows its pickup, and an early one would pull the
            # whole trip into the morning.
            return max(windows_of(job), key=lambda w: (w[1], w[1] - w[0]), default=None)

        partner = problem.pair_partner()
        pos_by_id = {j.job_id: i for i, j in enumerate(problem.jobs)}
        for node in range(num_depots, n):
            p = model.node_job[node]
            assert p is not None
            job = problem.jobs[p]
            amounts = [job.demand.as_tuple()[d] for d in dims]
            zero = [0] * len(dims)
            if job.pair_id is not None:
                if job.kind != "pickup":
                    continue
                q = pos_by_id[partner[job.job_id]]
                other = problem.jobs[q]
                d_node = model.job_node[q]
                p_window, d_window = pickup_window(job), delivery_window(other)
                if p_window is None or d_window is None:
                    continue  # no window safe on PyVRP's clock: OR-Tools inserts the pair
                (p_early, p_late), (d_early, d_late) = p_window, d_window
                m.add_shipment(
                    locs[node],
                    locs[d_node],
                    pickup_tw_early=p_early,
                    pickup_tw_late=p_late,
                    pickup_service_duration=job.service_s,
                    delivery_tw_early=d_early,
                    delivery_tw_late=d_late,
                    delivery_service_duration=other.service_s,
                    amount=amounts,
                    prize=model.penalties[p] + model.penalties[q],
                    required=node in required,
                )
                shipment_nodes.append((node, d_node))
                continue
            windows = windows_of(job)
            needed = node in required
            group = m.add_client_group(required=needed) if len(windows) > 1 else None
            for early, late in windows:
                m.add_client(
                    locs[node],
                    delivery=amounts if job.kind == "delivery" else zero,
                    pickup=amounts if job.kind == "pickup" else zero,
                    service_duration=job.service_s,
                    tw_early=early,
                    tw_late=late,
                    prize=model.penalties[p],
                    required=needed and group is None,
                    group=group,
                )
                client_node.append(node)
        cost_matrices, duration_matrices = [], []
        big_cost = 4 * int(cost.max()) + 1
        for forbidden, owns in signatures:
            cols = sorted(forbidden)
            c = np.array(cost, dtype=np.int64, copy=True)
            t = np.array(dur, dtype=np.int64, copy=True)
            others = np.flatnonzero((owner >= 0) & (owner != owns))
            if others.size and guide is not None:
                c[:, others] += guide.reassign_cost
                c[others, others] = 0
            if cols:
                c[:, cols] = big_cost
                t[:, cols] = horizon + 1
                c[cols, cols] = t[cols, cols] = 0  # PyVRP requires zero diagonals
            cost_matrices.append(c)
            duration_matrices.append(t)
        return m.data().replace(
            distance_matrices=cost_matrices, duration_matrices=duration_matrices
        )

    client_node: list[int] = []
    shipment_nodes: list[tuple[int, int]] = []
    type_vehicles: list[list[int]] = []

    def served_required(solution: Any) -> Any:
        """Return PyVRP's data with the jobs ``solution`` serves required."""
        served: set[int] = set()
        for route in solution.routes():
            for activity in route:
                if activity.is_client():
                    served.add(client_node[activity.idx])
                elif activity.is_shipment():
                    served.update(shipment_nodes[activity.idx])
        return build(required=served)

    data = build()
    if data is None:
        return None
    budget = max(0.05, deadline - time.monotonic())
    if params.vehicle_fixed_cost > 0:
        best = _pyvrp_fewer_routes(data, served_required, deadline, budget, params.seed)
    else:
        best = pyvrp_solve(data, MaxRuntime(budget), seed=params.seed, collect_stats=False).best
    if best is None or not best.is_feasible():
        logger.info("PyVRP found no feasible solution in %.1f s", budget)
        return None
    routes: list[list[int]] = [[] for _ in problem.couriers]
    used = [0] * len(type_vehicles)
    for route in best.routes():
        t = route.vehicle_type()
        vehicle = type_vehicles[t][used[t]]
        used[t] += 1
        seq: list[int] = []
        for activity in route:
            if activity.is_client():
                seq.append(client_node[activity.idx])
            elif activity.is_shipment():
                pickup_node, delivery_node = shipment_nodes[activity.idx]
                seq.append(pickup_node if activity.is_pickup() else delivery_node)
        routes[vehicle] = seq
    logger.info("PyVRP: distance %s, %d routes", best.distance(), best.num_routes())
    return routes


#: Share of PyVRP's time spent before trying to empty routes, when couriers cost.
FIRST_PASS_SHARE = 0.5
#: Share of the first pass that searches with every job optional; the rest of PyVRP's search
#: keeps the jobs that pass served required. Optional jobs cost PyVRP's search its removal
#: and insertion moves at every step (half the iterations on a Kon Tum town piece), and the
#: job left out is nearly always one no plan can serve, which the first moments find. On the
#: 2,000-job day, 0.1 / 0.2 / 0.4 / 1 (only the polish required) gave 1.37 / 1.46 / 1.45 /
#: 1.86 % over the best knowns against 1.64 % with every job optional throughout; second runs
#: of 0.1 and of every job optional gave 1.71 and 2.01 % (``tests/benchmarks/results/README.md``).
OPTIONAL_SHARE = 0.1
#: Share of the jobs PyVRP's first moments may leave out for the search to go on with the
#: jobs served required. More left out is a piece too full for its couriers, where jobs
#: compete for the rounds: serving one may mean leaving another, a trade only optional jobs
#: allow (``day300-s2 BC-KONRAY#1``: 22 of 29 jobs on three seeds of four with the served
#: ones required, 23 on every seed with every job optional).
REQUIRED_MAX_LEFT_OUT = 0.02
#: Iterations without a better plan after which PyVRP's polish stops on a piece too full for
#: its couriers (:func:`_crowded`), leaving the time to OR-Tools' search from its own start
#: (:func:`solve`). There PyVRP settles early on which jobs to leave out (``day300-s0
#: BC-KONRAY#1``: last better plan at its 69th iteration of 6,175); a big piece's polish,
#: tens to hundreds of iterations a second, runs its time as elsewhere.
CROWDED_STALL_ITERATIONS = 2000
#: Share of OR-Tools' time left that its insertion starts may take on a piece too full for
#: its couriers; the search from PyVRP's start needs the rest.
CROWDED_PORTFOLIO_SHARE = 0.2
#: Share of the time left that PyVRP searches on with a route less when the first plan it
#: finds without it is dearer: that plan is only the first that serves every job.
STAY_SHARE = 0.5
#: Share of the time left that an attempt to serve every job with a route less may take.
DROP_SHARE = 0.6
#: Share of the time left that PyVRP searches from the first pass's plan with its longest
#: route split in two, when no plan with a route less was found: the first pass may have
#: settled on a poor plan that no round can leave, and a round more opens it up
#: (``BC-KONTUM#1`` of the 2,000-job day, seed 0: 5 rounds 47 % over the best known, which
#: has 5 too; 13.7 % over on 6 after the split).
SPLIT_SHARE = 0.5


#: Share of the time left after PyVRP's first pass that the route ruin may take
#: (:func:`_ruin_routes`).
RUIN_SHARE = 0.6
#: Penalty per unit of time warp or excess load while PyVRP's local search recreates routes:
#: only a feasible plan is kept, and an arc costs its seconds of travel, so a second late
#: must cost far more than a detour.
RUIN_PENALTY = 1000.0


def _crowded(left_out: int, jobs: int) -> bool:
    """Return whether a plan that leaves out ``left_out`` of ``jobs`` shows a piece too full.

    On such a piece jobs compete for the rounds (:data:`REQUIRED_MAX_LEFT_OUT`): plans differ
    in which jobs they leave out, and a search seldom trades one left-out job for another.
    """
    return left_out > REQUIRED_MAX_LEFT_OUT * jobs


def _moved(
    target: Any, routes: list[Any], type_in_target: Sequence[int] | Mapping[int, int]
) -> Any:
    """Return ``routes`` as a solution of PyVRP's data ``target``.

    Each route's vehicle type is mapped by ``type_in_target``; data that differ in their fleet
    or in which jobs are required share their clients and shipments.
    """
    from pyvrp import Route as PyVRPRoute
    from pyvrp import Solution

    return Solution(
        target,
        [
            PyVRPRoute(
                target,
                [a for a in route if a.is_client() or a.is_shipment()],
                type_in_target[route.vehicle_type()],
            )
            for route in routes
        ],
    )


def _recreator(data: Any, search: Any, seed: int, neighbours: Any = None) -> tuple[Any, Any]:
    """Return PyVRP's local search on ``data`` and a cost evaluator that keeps plans feasible.

    The search puts the jobs a plan leaves out back in (each required job), then improves
    the plan until no move pays. ``neighbours`` (PyVRP's granular neighbourhood) is computed
    when not given; data that differ only in their fleet share it.
    """
    from pyvrp import CostEvaluator, RandomNumberGenerator
    from pyvrp.search import LocalSearch, PerturbationManager, compute_neighbours

    ls = LocalSearch(
        data,
        RandomNumberGenerator(seed=seed),
        compute_neighbours(data, search.neighbourhood) if neighbours is None else neighbours,
        PerturbationManager(search.perturbation),
    )
    for op in search.operators:
        if op.supports(data):
            ls.add_operator(op(data))
    return ls, CostEvaluator([RUIN_PENALTY] * data.num_load_dimensions, RUIN_PENALTY, RUIN_PENALTY)


def _ruin_routes(
    data: Any, solution: Any, search: Any, seed: int, deadline: float, neighbours: Any = None
) -> Any:
    """Return ``solution`` improved by ruining whole routes and recreating their jobs.

    PyVRP's moves shift a few stops at a time, so a plan where two rounds each drive to the
    same far commune stays that way: moving one of its stops saves nothing while the other
    stops keep the trip (``BC-KONTUM#1`` of the 2,000-job day, seed 2: five rounds 45 % over
    the best known, two of them driving to the same far commune; 10 s more of PyVRP from that
    plan left it 44 % over). Here one route, then two (the nearest pairs first), lose all
    their jobs and PyVRP's local search puts them back, on the other routes or on new ones;
    the first cheaper feasible plan is taken and the ruin starts over from it, until no route
    or pair of routes gives a cheaper plan or ``deadline`` (monotonic) passes. ``data`` has
    every job ``solution`` serves required, so the local search inserts each ruined job
    again; ``neighbours`` is PyVRP's granular neighbourhood of ``data``, computed when not
    given.
    """
    from pyvrp import Solution

    ls, cost_evaluator = _recreator(data, search, seed, neighbours)
    arcs = np.asarray(data.distance_matrix(0))

    def place(activity: Any) -> int:
        if activity.is_client():
            return int(data.client(activity.idx).location)
        shipment = data.shipment(activity.idx)
        return int((shipment.pickup if activity.is_pickup() else shipment.delivery).location)

    best, tries = solution, 0
    improved = True
    while improved:
        improved = False
        routes = best.routes()
        stops = [[place(a) for a in route if a.is_client() or a.is_shipment()] for route in routes]

        def apart(a: int, b: int, stops: list[list[int]] = stops) -> int:
            return int(arcs[np.ix_(stops[a], stops[b])].min())

        pairs = sorted(itertools.combinations(range(len(routes)), 2), key=lambda p: apart(*p))
        for ruined in [(k,) for k in range(len(routes))] + pairs:
            if time.monotonic() >= deadline:
                break
            tries += 1
            kept = [r for k, r in enumerate(routes) if k not in ruined]
            candidate = ls(Solution(data, kept), cost_evaluator, exhaustive=True)
            if candidate.is_feasible() and _pyvrp_cost(candidate) < _pyvrp_cost(best):
                logger.debug(
                    "PyVRP's routes %s ruined: %d -> %d routes, cost %d -> %d",
                    ruined,
                    best.num_routes(),
                    candidate.num_routes(),
                    _pyvrp_cost(best),
                    _pyvrp_cost(candidate),
                )
                best, improved = candidate, True
                break
    logger.debug("PyVRP's route ruin: %d tries", tries)
    return best


def _pyvrp_cost(solution: Any) -> int:
    """Return a PyVRP solution's cost: arcs, fixed costs and the prizes it leaves."""
    return int(
        solution.distance_cost()
        + solution.duration_cost()
        + solution.fixed_vehicle_cost()
        + solution.uncollected_prizes()
    )


def _route_split(data: Any, solution: Any) -> list[Any] | None:
    """Return ``solution``'s routes with its longest cut in two near its middle stop.

    The cut falls where no shipment is on board, the nearest such place to the middle; both
    halves keep the route's vehicle type (the courier's profile). Returns ``None`` when that
    type has no vehicle left or no such cut leaves a stop on each side.
    """
    from pyvrp import Route as PyVRPRoute

    routes = solution.routes()
    longest = max(range(len(routes)), key=lambda k: (routes[k].duration(), -k))
    kind = routes[longest].vehicle_type()
    used = sum(1 for r in routes if r.vehicle_type() == kind)
    visits = [a for a in routes[longest] if a.is_client() or a.is_shipment()]
    if used >= data.vehicle_type(kind).num_available:
        return None
    on_board: set[int] = set()
    cuts = []
    for k, visit in enumerate(visits[:-1], start=1):
        if visit.is_shipment():
            on_board ^= {visit.idx}
        if not on_board:
            cuts.append(k)
    if not cuts:
        return None
    cut = min(cuts, key=lambda k: (abs(2 * k - len(visits)), k))
    return [
        *(r for k, r in enumerate(routes) if k != longest),
        PyVRPRoute(data, visits[:cut], kind),
        PyVRPRoute(data, visits[cut:], kind),
    ]


def _cheapest_without_a_route(
    data: Any, solution: Any, search: Any, seed: int, deadline: float, neighbours: Any = None
) -> tuple[Any, Any, list[int]] | None:
    """Return the cheapest feasible plan with a route less that recreation finds, if any.

    Each route in turn (fewest jobs first, until ``deadline``, monotonic) is taken out with
    its vehicle and PyVRP's local search puts its jobs on the other routes. Returns that
    plan on the smaller fleet's data, the data and, for each of its vehicle types, its index
    in ``data`` (:func:`_fleet_without`); ``None`` when no route's jobs fit on the others.
    ``neighbours`` is PyVRP's granular neighbourhood of ``data``, computed when not given.
    """
    from pyvrp.search import compute_neighbours

    if neighbours is None:
        neighbours = compute_neighbours(data, search.neighbourhood)
    routes = solution.routes()
    found: tuple[Any, Any, list[int]] | None = None
    for victim in sorted(range(len(routes)), key=lambda k: (routes[k].num_clients(), k)):
        if time.monotonic() >= deadline:
            break
        smaller, kept = _fleet_without(data, routes, victim)
        index = {t: k for k, t in enumerate(kept)}
        start = _moved(smaller, [r for k, r in enumerate(routes) if k != victim], index)
        ls, cost_evaluator = _recreator(smaller, search, seed, neighbours)
        candidate = ls(start, cost_evaluator, exhaustive=True)
        if candidate.is_feasible() and (
            found is None or _pyvrp_cost(candidate) < _pyvrp_cost(found[0])
        ):
            found = (candidate, smaller, kept)
    return found


def _fleet_without(data: Any, routes: list[Any], victim: int) -> tuple[Any, list[int]]:
    """Return PyVRP's data with the fleet of ``routes`` but route ``victim``'s vehicle.

    Vehicle types the smaller fleet has none of are taken out (PyVRP wants at least one
    vehicle of each type it has), so the search cannot bring the route back on them. Also
    returns, for each type of the smaller data, its index in ``data``.
    """
    fleet = [0] * data.num_vehicle_types
    for k, route in enumerate(routes):
        if k != victim:
            fleet[route.vehicle_type()] += 1
    kept = [t for t, n in enumerate(fleet) if n]
    types = data.vehicle_types()
    smaller = data.replace(vehicle_types=[types[t].replace(num_available=fleet[t]) for t in kept])
    return smaller, kept


def _pyvrp_fewer_routes(
    data: Any, served_required: Callable[[Any], Any], deadline: float, budget: float, seed: int
) -> Any:
    """Solve with PyVRP, empty its shortest routes while it pays, then polish.

    The search starts with every job optional (``data``) for :data:`OPTIONAL_SHARE` of the
    first pass, then goes on with the jobs it serves required (``served_required(solution)``
    gives that data; not on a piece too full, :data:`REQUIRED_MAX_LEFT_OUT`): the same plans
    stay open, at twice the iterations a second.
    With a fixed cost per courier, a route less is worth more than the detours of its stops,
    but PyVRP's search rarely empties a route by itself. When a first pass serves every job,
    whole routes are first ruined and recreated (:func:`_ruin_routes`, :data:`RUIN_SHARE` of
    the time left). Then each attempt takes the fleet PyVRP used less one vehicle, starting
    from the cheapest plan the local search recreates without one of the routes
    (:func:`_cheapest_without_a_route`); when no route's jobs fit on the others, it searches
    (every job now required) from the plan without the route of fewest stops until it serves
    every job again or its time is up. The first plan that serves every job is seldom cheaper;
    the search goes on from it with the smaller fleet for :data:`STAY_SHARE` of the time left
    (``BC-DAKGLEI#1`` of the 2,000-job day, seed 4: a first 5-route plan 8,078 s of driving
    dearer than the 6-route one, 17,393 s cheaper after 1.4 s more; 24 % over the best known
    before, 1.3 % after). A cheaper result is kept. The rest of the time improves the best
    solution with the whole fleet again, its jobs required as in the first pass; on a piece
    too full for its couriers (:func:`_crowded`) it stops after
    :data:`CROWDED_STALL_ITERATIONS` without a better plan, and OR-Tools searches the time
    left from its own start too (:func:`solve`).
    Returns the best solution, or ``None`` if nothing feasible was found.
    """
    from pyvrp import solve as pyvrp_solve
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.search import compute_neighbours
    from pyvrp.stop import FirstFeasible, MaxRuntime, MultipleCriteria, NoImprovement

    search = _pyvrp_search_params()
    every_type = range(data.num_vehicle_types)
    grouped = sum(len(g.clients) for g in data.groups())
    jobs = data.num_clients - grouped + data.num_groups + data.num_shipments

    def left_out(solution: Any) -> int:
        return int(jobs - solution.num_clients() - solution.num_shipments())

    def search_data(solution: Any) -> Any:
        """Return the data to search on from ``solution``: the jobs it serves required.

        Every job stays optional when it leaves out more than :data:`REQUIRED_MAX_LEFT_OUT`.
        """
        out = left_out(solution)
        few = not _crowded(out, jobs)
        logger.debug(
            "PyVRP goes on with %d of %d jobs left out, %s",
            out,
            jobs,
            "the others required" if few else "every job optional",
        )
        return served_required(solution) if few else data

    first_pass_end = time.monotonic() + FIRST_PASS_SHARE * budget
    first = pyvrp_solve(
        data,
        MaxRuntime(OPTIONAL_SHARE * FIRST_PASS_SHARE * budget),
        seed=seed,
        collect_stats=False,
        params=search,
    )
    best = first.best
    if not best.is_feasible():
        return None
    served = search_data(best)
    first = pyvrp_solve(
        served,
        MaxRuntime(max(0.0, first_pass_end - time.monotonic())),
        seed=seed,
        collect_stats=False,
        params=search,
        initial_solution=_moved(served, best.routes(), every_type),
    )
    if first.best.is_feasible() and _pyvrp_cost(first.best) <= _pyvrp_cost(best):
        best = _moved(data, first.best.routes(), every_type)
    logger.debug(
        "PyVRP's first pass: %d routes, %d clients, %d shipments, cost %d",
        best.num_routes(),
        best.num_clients(),
        best.num_shipments(),
        _pyvrp_cost(best),
    )
    required = served_required(best) if left_out(best) == 0 else None
    if required is not None:
        # the ruin and every route-less attempt search the same data
        neighbours = compute_neighbours(required, search.neighbourhood)
        ruin_end = time.monotonic() + RUIN_SHARE * (deadline - time.monotonic())
        ruined = _ruin_routes(
            required,
            _moved(required, best.routes(), every_type),
            search,
            seed,
            ruin_end,
            neighbours,
        )
        best = _moved(data, ruined.routes(), every_type)
    attempt = 0
    fewest = False  # whether the first pass's fleet is the smallest PyVRP finds
    # A fleet a courier smaller may have no plan that serves every job: PyVRP then warns
    # that its penalties reached their bound, which here is an expected answer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        while required is not None and best.num_routes() > 1:
            left = deadline - time.monotonic()
            if left < 0.15 * budget:
                break
            routes = best.routes()
            attempt += 1
            recreated = _cheapest_without_a_route(
                required,
                best,
                search,
                seed + attempt,
                time.monotonic() + DROP_SHARE * left,
                neighbours,
            )
            if recreated is not None:
                found, smaller, kept = recreated
            else:
                victim = min(range(len(routes)), key=lambda k: (routes[k].num_clients(), k))
                smaller, kept = _fleet_without(required, routes, victim)
                type_in_smaller = {t: k for k, t in enumerate(kept)}
                found = pyvrp_solve(
                    smaller,
                    MultipleCriteria(
                        [
                            FirstFeasible(),
                            MaxRuntime(max(0.0, DROP_SHARE * (deadline - time.monotonic()))),
                        ]
                    ),
                    seed=seed + attempt,
                    collect_stats=False,
                    params=search,
                    initial_solution=_moved(
                        smaller, [r for k, r in enumerate(routes) if k != victim], type_in_smaller
                    ),
                ).best
            logger.debug(
                "PyVRP without a route (%s): %d -> %d routes, cost %d -> %s",
                "recreated" if recreated is not None else "searched",
                best.num_routes(),
                found.num_routes(),
                _pyvrp_cost(best),
                _pyvrp_cost(found) if found.is_feasible() else "infeasible",
            )
            if found.is_feasible() and _pyvrp_cost(found) >= _pyvrp_cost(best):
                found = pyvrp_solve(
                    smaller,
                    MaxRuntime(max(0.0, STAY_SHARE * (deadline - time.monotonic()))),
                    seed=seed + attempt,
                    collect_stats=False,
                    params=search,
                    initial_solution=found,
                ).best
                logger.debug(
                    "PyVRP on without the route: cost %s",
                    _pyvrp_cost(found) if found.is_feasible() else "infeasible",
                )
            if not found.is_feasible() or _pyvrp_cost(found) >= _pyvrp_cost(best):
                fewest = attempt == 1 and not found.is_feasible()
                break
            best = _moved(data, found.routes(), kept)
    left = deadline - time.monotonic()
    if fewest and left > 0.1 * budget and (split := _route_split(data, best)) is not None:
        # The first pass may have settled on a poor plan that no round can leave: PyVRP's
        # search seldom opens a round by itself, as it seldom empties one.
        served = search_data(best)
        more = pyvrp_solve(
            served,
            MaxRuntime(SPLIT_SHARE * left),
            seed=seed,
            collect_stats=False,
            params=search,
            initial_solution=_moved(served, split, every_type),
        ).best
        logger.debug(
            "PyVRP with a route split: %d -> %d routes, cost %d -> %s",
            best.num_routes(),
            more.num_routes(),
            _pyvrp_cost(best),
            _pyvrp_cost(more) if more.is_feasible() else "infeasible",
        )
        if more.is_feasible() and _pyvrp_cost(more) < _pyvrp_cost(best):
            best = _moved(data, more.routes(), every_type)
    left = deadline - time.monotonic()
    if left > 0.02:
        served = search_data(best)
        stop = MaxRuntime(left)
        if _crowded(left_out(best), jobs):
            stop = MultipleCriteria([stop, NoImprovement(CROWDED_STALL_ITERATIONS)])
        polished = pyvrp_solve(
            served,
            stop,
            seed=seed,
            collect_stats=False,
            params=search,
            initial_solution=_moved(served, best.routes(), every_type),
        ).best
        polished = _moved(data, polished.routes(), every_type)
        logger.debug(
            "PyVRP polished: %d routes, %d clients, %d shipments, cost %d",
            polished.num_routes(),
            polished.num_clients(),
            polished.num_shipments(),
            _pyvrp_cost(polished),
        )
        if polished.is_feasible() and _pyvrp_cost(polished) <= _pyvrp_cost(best):
            best = polished
    return best


#: The moves that insert left-out jobs (alone, in pairs, in place of a cheaper one) without
#: reordering a round: the guided start's descent (:func:`_guided_start`).
INSERTION_OPERATORS = (
    "use_make_active",
    "use_swap_active",
    "use_relocate_and_make_active",
    "use_exchange_and_make_active",
    "use_node_pair_swap_active",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
)


def _guided_start(
    problem: Problem,
    model: _Model,
    guide: SolveGuide,
    screen: _Screen,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    params: SolverParams,
    t0: float,
) -> tuple[_Model, Any]:
    """Return the model to search and the rounds in force, with the jobs they lack, in it.

    Promised times are soft bounds on the time dimension, and with them OR-Tools times every
    changed round by linear programming: reading routes takes the closing time limit and a
    move costs ten times more. So the rounds are loaded, repaired and given the new and
    orphaned jobs in a model without promised times, by insertion moves only (the rounds keep
    their order: the times told stay), and only the result is read into ``model``. If it
    does not load there in the time a read may take (large pieces), the search goes on in
    the model without promised times: the rounds and couriers are still kept, and a plan
    from the rounds in force beats one from a construction heuristic.
    The assignment is None if nothing loads.
    """
    fast = (
        _build_model(problem, durations, distances, screen, params, guide.without_promises())
        if guide.promised_s
        else model
    )
    kept = _guide_sequences(problem, fast, guide, screen, durations, distances)
    fast.routing.CloseModelWithParameters(_search_parameters(params, 1.0))
    initial = _assignment_from_sequences(fast, kept, t0 + 0.3 * params.time_limit_s)
    if initial is not None and _num_unperformed(fast, initial):
        initial = _reinsert(fast, initial, params, t0, 0.2, INSERTION_OPERATORS)
    if initial is None or fast is model:
        return fast, initial
    sequences, _ = _working_times(fast, initial)
    priced = _read_routes(model, sequences, params, t0 + params.time_limit_s)
    if priced is None:
        logger.info("%s: the re-plan searches without promised times", problem.name or "piece")
        return fast, initial
    return model, priced


def _reinsert(
    model: _Model,
    initial: Any,
    params: SolverParams,
    t0: float,
    share: float,
    operators: tuple[str, ...] | None = None,
) -> Any:
    """Insert the jobs a start leaves out by a greedy descent of ``share`` of the time limit.

    ``operators`` (names of OR-Tools' ``use_*`` flags) restricts the descent to those moves;
    None keeps OR-Tools' own. Returns the better assignment, or ``initial``.
    """
    greedy = replace(params, local_search="GREEDY_DESCENT")
    budget = min(share * params.time_limit_s, params.time_limit_s - _elapsed(t0))
    search = _search_parameters(greedy, max(0.05, budget))
    if operators is not None:
        flags = search.local_search_operators
        for name in flags.DESCRIPTOR.fields_by_name:
            if name.startswith("use_"):
                setattr(flags, name, BOOL_TRUE if name in operators else BOOL_FALSE)
    improved = model.routing.SolveFromAssignmentWithParameters(initial, search)
    return improved if improved is not None else initial


def _guide_sequences(
    problem: Problem,
    model: _Model,
    guide: SolveGuide,
    screen: _Screen,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
) -> list[list[int]]:
    """Return the guide's rounds as node sequences per vehicle.

    Jobs screened out, or that this vehicle can no longer serve (its time left, its skills,
    a stop the round can no longer reach in time or carry), are left out, with the other
    half of their pair: the search places them.
    """
    pos_of = {j.job_id: p for p, j in enumerate(problem.jobs)}
    partner = problem.pair_partner()
    out: list[list[int]] = []
    for v, courier in enumerate(problem.couriers):
        seq = [j for j in guide.initial.get(courier.courier_id, ()) if j in pos_of]
        ok = {j for j in seq if pos_of[j] in model.job_node and v in screen.eligible[pos_of[j]]}
        ok = {j for j in ok if j not in partner or partner[j] in ok}
        kept = _feasible_subsequence(
            problem,
            courier,
            [pos_of[j] for j in seq if j in ok],
            durations,
            distances,
            guide.on_board.get(courier.courier_id),
        )
        out.append(kept)
    _insert_unplaced(problem, model, guide, screen, out, durations, distances)
    return [[model.job_node[p] for p in seq] for seq in out]


#: Positions per round tried, cheapest detour first, when a job is inserted into the rounds.
INSERT_TRIES = 3


def _insert_unplaced(
    problem: Problem,
    model: _Model,
    guide: SolveGuide,
    screen: _Screen,
    rounds: list[list[int]],
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
) -> None:
    """Insert the jobs on no round in force (new, orphaned, trimmed) where they fit, in place.

    Highest priority first, each at the position of least detour (plus the cost of a change
    of courier) among the few cheapest of every round that keeps the round feasible (a
    pickup with its delivery right after it): the search then starts from a plan that
    already holds them, as one from scratch would.
    """
    placed = {p for seq in rounds for p in seq}
    partner = problem.pair_partner()
    pos_of = {j.job_id: p for p, j in enumerate(problem.jobs)}
    todo = [
        p
        for p in model.job_node
        if p not in placed
        and (problem.jobs[p].job_id not in partner or problem.jobs[p].kind == "pickup")
    ]
    todo.sort(key=lambda p: -problem.jobs[p].priority)
    vehicle_of = {c.courier_id: v for v, c in enumerate(problem.couriers)}
    preferred = {j: vehicle_of[c] for j, c in guide.preferred.items() if c in vehicle_of}
    ends = [_shift_bounds(problem, c)[:2] for c in problem.couriers]
    for p in todo:
        job = problem.jobs[p]
        other = pos_of.get(partner.get(job.job_id, ""), -1)
        if other >= 0 and other not in model.job_node:
            continue
        ids = [p] if other < 0 else [p, other]
        first, last = problem.job_location(ids[0]), problem.job_location(ids[-1])
        inner = int(durations[first, last]) if len(ids) == 2 else 0
        options: list[tuple[int, int, int]] = []
        for v, seq in enumerate(rounds):
            if any(v not in screen.eligible[q] for q in ids):
                continue
            start_loc, end_loc = ends[v]
            points = [start_loc, *(problem.job_location(q) for q in seq), end_loc]
            detours = sorted(
                (
                    int(durations[a, first])
                    + inner
                    + int(durations[last, b])
                    - int(durations[a, b]),
                    k,
                )
                for k, (a, b) in enumerate(itertools.pairwise(points))
            )
            moved = guide.reassign_cost if preferred.get(job.job_id, v) != v else 0
            options += [(d + moved, v, k) for d, k in detours[:INSERT_TRIES]]
        for _d, v, k in sorted(options):
            courier = problem.couriers[v]
            trial = [*rounds[v][:k], *ids, *rounds[v][k:]]
            if _fits(
                problem,
                courier,
                trial,
                durations,
                distances,
                guide.on_board.get(courier.courier_id),
            ):
                rounds[v] = trial
                break


def _fits(
    problem: Problem,
    courier: Courier,
    positions: list[int],
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    on_board: Load | None,
) -> bool:
    """Return whether a round, timed as early as possible, is timely and within capacity."""
    jobs = problem.jobs
    start_loc, _, earliest, latest = _shift_bounds(problem, courier)
    bw = courier.break_window if courier.has_break else None
    capacity = courier.capacity
    if on_board is not None:
        capacity = Load(*map(max, capacity.as_tuple(), on_board.as_tuple()))
    start = on_board
    if start is None:
        start = problem.start_load([jobs[q].job_id for q in positions])
    route = schedule_route(
        problem,
        courier,
        positions,
        durations,
        distances,
        start=RouteStart(start_loc, earliest, start, left=on_board is not None),
    )
    return (
        route.end_s <= latest
        and start.fits_in(capacity)
        and all(s.load_after.fits_in(capacity) for s in route.stops)
        and all(jobs[q].in_window(s.start_s) for q, s in zip(positions, route.stops, strict=True))
        and (
            bw is None
            or route.break_start_s is None
            or route.break_start_s + courier.break_duration_s <= bw.end_s
        )
    )


def _feasible_subsequence(
    problem: Problem,
    courier: Courier,
    positions: list[int],
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    on_board: Load | None = None,
) -> list[int]:
    """Keep the stops of a round in force, in order, while the round stays feasible.

    A round in force may no longer fit the rest of the day (its courier is late, a failed
    delivery still takes room): each stop, a pickup with its delivery, is kept if the round
    so far with it is still timely (windows, shift, break window) and within capacity, so the
    search starts from the rounds in force instead of repairing them probe by probe.
    """
    partner = problem.pair_partner()
    jobs = problem.jobs
    pos_of = {j.job_id: p for p, j in enumerate(jobs)}
    order = {p: k for k, p in enumerate(positions)}
    chosen: list[int] = []
    for p in positions:
        job = jobs[p]
        other = pos_of.get(partner.get(job.job_id, ""), -1)
        if job.kind == "delivery" and other in order:
            continue  # decided with its pickup
        trial = sorted([*chosen, p, *([other] if other in order else [])], key=order.__getitem__)
        if _fits(problem, courier, trial, durations, distances, on_board):
            chosen = trial
    return chosen


#: The balancing model multiplies every cost by this, so a span weight below one works.
BALANCE_SCALE = 4


def _working_times(model: _Model, assignment: Any) -> tuple[list[list[int]], list[int]]:
    """Return each vehicle's node sequence and the working time of each round (return less start)."""
    routing, manager, time_dim = model.routing, model.manager, model.time_dim
    sequences: list[list[int]] = []
    spans: list[int] = []
    for v in range(routing.vehicles()):
        index = routing.Start(v)
        start = int(assignment.Value(time_dim.CumulVar(index)))
        seq: list[int] = []
        index = assignment.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            seq.append(manager.IndexToNode(index))
            index = assignment.Value(routing.NextVar(index))
        if seq:
            spans.append(int(assignment.Value(time_dim.CumulVar(index))) - start)
        sequences.append(seq)
    return sequences, spans


def _rebalance(
    problem: Problem,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    screen: _Screen,
    params: SolverParams,
    guide: SolveGuide | None,
    model: _Model,
    assignment: Any,
    deadline: float,
) -> tuple[_Model, Any, dict[str, Any]]:
    """Spend the rest of the search evening out working time, if the rounds are uneven.

    ``assignment`` is the plain model's best plan. When its longest round is within
    ``balance_tolerance`` of the mean, the plain search simply goes on. Otherwise the plan
    is loaded into a model that also pays for the latest return less the earliest departure
    and searched until ``deadline`` (monotonic); its rounds are then timed by the plain
    model (latest departure, earliest return: the span cost times only the longest round)
    and kept if they are more even and cost at most ``balance_max_extra`` more (or are as
    even and cheaper).

    Returns the plain model (the one given, or a fresh one that timed the rounds), its
    assignment to extract, and statistics.
    """
    plain = model
    routing = model.routing
    # A copy: restoring routes into the model below may reuse the assignment's storage.
    assignment = routing.solver().Assignment(assignment)
    cost = int(assignment.ObjectiveValue())
    sequences, spans = _working_times(model, assignment)
    ratio = _spread(spans)
    info: dict[str, Any] = {"balance_ratio_before": round(ratio, 3)}

    def go_on() -> Any:
        left = max(0.05, deadline - time.monotonic())
        more = routing.SolveFromAssignmentWithParameters(
            assignment, _search_parameters(params, left)
        )
        return more if more is not None else assignment

    if len(problem.couriers) < 2 or ratio <= 1 + params.balance_tolerance:
        return model, go_on(), info
    balanced = _build_model(problem, durations, distances, screen, params, guide, balance=True)
    start = _read_routes(balanced, sequences, params, deadline)
    if start is None:
        info["balance"] = "not loaded"
        return model, go_on(), info
    # a tenth of what is left is kept for timing the rounds again in the plain model
    left = max(0.05, 0.9 * (deadline - time.monotonic()))
    found = balanced.routing.SolveFromAssignmentWithParameters(
        start, _search_parameters(params, left)
    )
    found_sequences, _ = _working_times(balanced, found if found is not None else start)
    routes = [[model.manager.NodeToIndex(n) for n in seq] for seq in found_sequences]
    timed = routing.ReadAssignmentFromRoutes(routes, True)
    if timed is None:
        # The plain model can refuse to read the rounds once its own search has spent its
        # time limit; a fresh plain model (same costs and constraints) reads them.
        fresh = _build_model(problem, durations, distances, screen, params, guide)
        timed = _read_routes(fresh, found_sequences, params, deadline)
        if timed is not None:
            model = fresh
    if timed is None:
        info["balance"] = "not timed"
        return model, assignment, info
    after = _spread(_working_times(model, timed)[1])
    extra = timed.ObjectiveValue() / max(1, cost) - 1
    info |= {"balance_ratio_after": round(after, 3), "balance_extra_cost": round(extra, 4)}
    if (after < ratio and extra <= params.balance_max_extra) or (after <= ratio and extra < 0):
        info["balance"] = "kept"  # more even and not much dearer, or as even and cheaper
        return model, timed, info
    info["balance"] = "rejected"
    return plain, assignment, info


def _read_routes(
    model: _Model, sequences: list[list[int]], params: SolverParams, deadline: float
) -> Any:
    """Close ``model`` and read node sequences into it; None if they do not load.

    With costs on the time dimension (promised times' soft bounds, the balancing span cost)
    OR-Tools times the rounds it reads by linear programming until the closing parameters'
    time limit, whatever the rounds: a tenth of what is left before ``deadline`` (monotonic
    seconds), at most a second, is what a read may take.
    """
    seconds = min(1.0, max(0.01, 0.1 * (deadline - time.monotonic())))
    model.routing.CloseModelWithParameters(_search_parameters(params, seconds))
    return model.routing.ReadAssignmentFromRoutes(
        [[model.manager.NodeToIndex(n) for n in seq] for seq in sequences], True
    )


def _spread(spans: list[int]) -> float:
    """Return the longest working time over the mean (1.0 without rounds)."""
    total = sum(spans)
    return max(spans) * len(spans) / total if spans and total > 0 else 1.0


def _elapsed(t0: float) -> float:
    """Return seconds since ``t0`` (monotonic clock)."""
    return time.monotonic() - t0


def _num_unperformed(model: _Model, assignment: Any) -> int:
    """Return how many searched jobs the assignment leaves out."""
    routing, manager = model.routing, model.manager
    count = 0
    for node in model.job_node.values():
        index = manager.NodeToIndex(node)
        if assignment.Value(routing.NextVar(index)) == index:
            count += 1
    return count


def _assignment_from_sequences(
    model: _Model, sequences: list[list[int]], deadline: float = math.inf
) -> Any:
    """Load node sequences into the closed model as an assignment, repairing if needed.

    A route infeasible in the full model (PyVRP ignores breaks) is rebuilt greedily: its
    stops are kept in order while the route stays feasible (a pair's halves together); the
    others are left unperformed for the search to reinsert. A repair that runs past
    ``deadline`` (monotonic seconds) keeps the routes settled so far and leaves the rest
    unperformed: on a starved machine a re-plan still starts from most of the rounds in force
    rather than from nothing. Returns ``None`` only if nothing loads.
    """
    routing, manager = model.routing, model.manager
    routes = [[manager.NodeToIndex(n) for n in seq] for seq in sequences]
    whole = routing.ReadAssignmentFromRoutes(routes, True)
    if whole is not None:
        return whole
    delivery_of = model.pair_indices
    pickup_of = {d: p for p, d in delivery_of.items()}
    kept: list[list[int]] = [[] for _ in routes]
    for v, route in enumerate(routes):
        if routing.ReadAssignmentFromRoutes(
            [route if u == v else [] for u in range(len(routes))], True
        ):
            kept[v] = route
            continue
        # Greedy subsequence: keep each stop (a pair's pickup with its delivery) if still feasible.
        if time.monotonic() > deadline:
            logger.info("warm-start repair out of time; route %d starts empty", v)
            continue
        order = {index: k for k, index in enumerate(route)}
        chosen: list[int] = []
        for index in route:
            if time.monotonic() > deadline:
                logger.info("warm-start repair out of time; route %d keeps what was checked", v)
                break
            if index in delivery_of:
                continue  # decided together with its delivery
            trial = [*chosen, index]
            if index in pickup_of:
                trial.append(pickup_of[index])
            trial.sort(key=order.__getitem__)
            probe = [trial if u == v else [] for u in range(len(routes))]
            if routing.ReadAssignmentFromRoutes(probe, True) is not None:
                chosen = trial
        kept[v] = chosen
    logger.debug(
        "repaired warm start: kept %d of %d stops",
        sum(map(len, kept)),
        sum(map(len, routes)),
    )
    return routing.ReadAssignmentFromRoutes(kept, True)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def _extract(
    problem: Problem,
    model: _Model,
    assignment: Any,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
) -> tuple[list[Route], set[int]]:
    """Turn the assignment into plain routes; return them and the routed job positions."""
    manager, routing, time_dim = model.manager, model.routing, model.time_dim
    break_start: dict[int, int] = {}
    intervals = assignment.IntervalVarContainer()
    by_name = {iv.Name(): v for v, iv in model.breaks.items()}
    for k in range(intervals.Size()):
        element = intervals.Element(k)
        var = element.Var()
        v = by_name.get(var.Name())
        if v is not None and element.PerformedValue():
            break_start[v] = int(element.StartValue())

    routes: list[Route] = []
    routed: set[int] = set()
    for v, courier in enumerate(problem.couriers):
        index = routing.Start(v)
        start_s = int(assignment.Value(time_dim.CumulVar(index)))
        nodes: list[int] = []
        service_starts: list[int] = []
        index = assignment.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            service_starts.append(int(assignment.Value(time_dim.CumulVar(index))))
            index = assignment.Value(routing.NextVar(index))
        end_cumul = int(assignment.Value(time_dim.CumulVar(index)))
        if not nodes:
            continue
        positions = [model.node_job[node] for node in nodes]
        job_pos = [p for p in positions if p is not None]
        routed.update(job_pos)
        routes.append(
            build_route(
                problem,
                courier,
                job_pos,
                service_starts,
                start_s=start_s,
                end_s=end_cumul,
                break_start_s=break_start.get(v) if courier.has_break else None,
                durations=durations,
                distances=distances,
            )
        )
    return routes, routed


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


class _ProgressRelay:
    """Forward OR-Tools solutions to ``SolveCallbacks`` (holds the model by weak reference)."""

    def __init__(self, model: _Model, callbacks: SolveCallbacks, t0: float) -> None:
        self._routing = weakref.ref(model.routing)
        self._job_indices = [model.manager.NodeToIndex(n) for n in model.job_node.values()]
        self._callbacks = callbacks
        self._t0 = t0
        self.best: int | None = None
        self.count = 0

    def __call__(self) -> None:
        routing = self._routing()
        if routing is None:  # pragma: no cover
            return
        objective = int(routing.CostVar().Value())
        self.count += 1
        if self.best is not None and objective >= self.best:
            return
        assigned = sum(1 for i in self._job_indices if routing.NextVar(i).Value() != i)
        self.report(objective, assigned)

    def report(self, objective: int, assigned: int) -> None:
        """Forward an improvement found outside the OR-Tools search (the PyVRP start)."""
        if self.best is not None and objective >= self.best:
            return
        self.best = objective
        self._callbacks.on_improvement(time.monotonic() - self._t0, objective, assigned)


def _pyvrp_time_share(params: SolverParams) -> float:
    """Return the share of the time limit PyVRP searches, OR-Tools' search from it capped."""
    after = 1 - params.pyvrp_share
    if params.ortools_after_pyvrp_max_s is not None:
        after = min(after, params.ortools_after_pyvrp_max_s / params.time_limit_s)
    return 1 - after


def _search_parameters(params: SolverParams, time_limit_s: float) -> Any:
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, params.first_solution
    )
    search.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, params.local_search
    )
    whole = max(0.01, time_limit_s)
    search.time_limit.seconds = int(whole)
    search.time_limit.nanos = int((whole - int(whole)) * 1e9)
    search.log_search = params.log_search
    return search


def _first_solution_portfolio(
    model: _Model, params: SolverParams, t0: float, *, started: bool = False
) -> tuple[Any, str]:
    """Build a first solution with each strategy of the portfolio; return the cheapest.

    Insertion heuristics suit tight windows, savings suits loose ones; trying a few costs a
    fraction of the budget (at most ``portfolio_share`` of it once a start exists, here or
    before, ``started``; else the first strategy may take 80 % of what is left) and avoids a
    poor start.
    Returns ``(assignment or None, strategy name)``.
    """
    routing = model.routing
    strategies = list(dict.fromkeys([params.first_solution, *params.first_solution_portfolio]))
    t_start = time.monotonic()
    budget = params.time_limit_s * params.portfolio_share
    best: Any = None
    best_cost: int | None = None
    best_name = params.first_solution
    for k, name in enumerate(strategies):
        now = time.monotonic()
        total_left = params.time_limit_s - (now - t0) - 0.05
        # Until something is found, a strategy may use most of what is left: a large piece
        # with breaks needs seconds for its first solution.
        first = best is None and not started
        left = 0.8 * total_left if first else min(budget - (now - t_start), total_left)
        if left <= 0.01 or (k > 0 and left < 0.05):
            break
        search = _search_parameters(replace(params, first_solution=name), left)
        search.solution_limit = 1
        solution = routing.SolveWithParameters(search)
        if solution is None or _num_unperformed(model, solution) == len(model.job_node):
            continue  # nothing, or cut by the time limit before placing any job
        cost = int(solution.ObjectiveValue())
        logger.debug("first solution %s: cost %d", name, cost)
        if best_cost is None or cost < best_cost:
            best_cost, best_name = cost, name
            best = routing.solver().Assignment(solution)
    return best, best_name


def plan_objective(
    problem: Problem,
    plan_routes: list[Route],
    unassigned_pos: list[int],
    *,
    cost_matrix: NDArray[np.int64],
    penalties: dict[int, int],
    params: SolverParams,
) -> int:
    """Return arc costs + fixed costs + drop penalties of the searched jobs."""
    total = 0
    for route in plan_routes:
        courier = problem.courier_by_id()[route.courier_id]
        locs = [
            problem.depot_index(courier.depot_id),
            *[s.location_idx for s in route.stops],
            problem.depot_index(courier.end_depot),
        ]
        total += sum(int(cost_matrix[a, b]) for a, b in itertools.pairwise(locs))
        total += params.vehicle_fixed_cost
    total += sum(penalties.get(p, 0) for p in unassigned_pos)
    return total


def solve(
    problem: Problem,
    durations: NDArray[np.int64],
    distances: NDArray[np.int64],
    *,
    params: SolverParams | None = None,
    callbacks: SolveCallbacks | None = None,
    guide: SolveGuide | None = None,
) -> Plan:
    """Plan the couriers' rounds of ``problem``.

    Jobs that cannot possibly be served (no road, no reachable window, too big, missing skill,
    a rejected pair partner) are screened out first with their reason. The remaining jobs are
    optional with a priority-weighted drop penalty, so an over-full day still yields the best
    partial plan; jobs the search leaves out get ``dropped_low_priority``.

    Parameters
    ----------
    problem
        Depots, couriers and jobs.
    durations
        L x L travel times in seconds, locations ordered depots first then jobs;
        :data:`UNREACHABLE` marks a pair with no path (treated as forbidden).
    distances
        L x L distances in metres, same order and sentinel.
    params
        Solver options (defaults: 10 s, a PyVRP warm start when it applies or else a
        first-solution portfolio, then guided local search; travel-time cost). When PyVRP's
        start leaves out jobs that compete for the rounds and PyVRP stopped early, settled,
        the portfolio's start is searched too and the cheaper result kept
        (``stats["searched"]``).
    callbacks
        Progress observer.
    guide
        For a re-plan: the rounds in force to start from, and the costs of changing a job's
        courier or its promised time (see :class:`SolveGuide`).

    Returns
    -------
    Plan
        Routes and unassigned jobs; every job appears exactly once.

    Raises
    ------
    InputError
        If the matrices do not match the problem.
    SolverError
        If the OR-Tools model cannot be built. A search that finds nothing in time is not
        an error: the searched jobs come back unassigned with reason ``time_limit``.
    """
    params = params or SolverParams()
    callbacks = callbacks or NullCallbacks()
    t0 = time.monotonic()
    durations, distances = _validate_matrices(problem, durations, distances)
    stranded = _stranded(problem, durations)
    if stranded:
        # An empty round of theirs breaks the shift: the whole search would find nothing.
        logger.warning("%s: couriers without a round: %s", problem.name or "problem", stranded)
        usable = tuple(c for c in problem.couriers if c.courier_id not in stranded)
        plan = solve(
            replace(problem, couriers=usable),
            durations,
            distances,
            params=params,
            callbacks=callbacks,
            guide=None if guide is None else guide.without(stranded),
        )
        return replace(plan, stats=plan.stats | {"stranded": stranded})
    screen = _screen_jobs(problem, durations)
    callbacks.on_start(
        {
            "problem": problem.name,
            "jobs": len(problem.jobs),
            "couriers": len(problem.couriers),
            "screened_out": len(screen.rejected),
            "time_limit_s": params.time_limit_s,
        }
    )
    unassigned = [
        Unassigned(problem.jobs[p].job_id, ReasonCode(reason), detail)
        for p, (reason, detail) in sorted(screen.rejected.items())
    ]
    stats: dict[str, Any] = {"screened_out": len(screen.rejected), "engine": "none"}
    if not screen.eligible or not problem.couriers:
        plan = Plan((), tuple(unassigned), 0, stats | {"seconds": time.monotonic() - t0})
        callbacks.on_end(plan)
        return plan

    try:
        model = _build_model(problem, durations, distances, screen, params, guide)
    except (RuntimeError, SystemError, OverflowError, TypeError) as e:
        msg = f"could not build the OR-Tools model: {e}"
        raise SolverError(msg) from e
    routing = model.routing
    relay = _ProgressRelay(model, callbacks, t0)
    routing.AddAtSolutionCallback(relay)

    # Candidate starts: PyVRP's routes (breaks relaxed) and/or the OR-Tools portfolio.
    engine = "ortools"
    candidates: list[tuple[int, str, Any]] = []
    # Breaks that differ between couriers are relaxed coarsely for PyVRP, and a shared break
    # leaves out a job whose every window is too short to be safe on PyVRP's clock: the
    # construction portfolio then competes with PyVRP's start.
    relaxed = any(c.has_break for c in problem.couriers) and not _break_is_exact(problem, screen)
    settled = False
    crowded = False  # PyVRP's start leaves out jobs that compete for the rounds
    ortools_after_pyvrp_s = 0.0  # OR-Tools' own time after PyVRP's deadline
    if guide is not None and guide.initial:
        model, initial = _guided_start(
            problem, model, guide, screen, durations, distances, params, t0
        )
        if guide.promised_s:
            stats["promises"] = "priced" if model.routing is routing else "not priced"
        if model.routing is not routing:  # searched without promised times (see there)
            routing = model.routing
            relay = _ProgressRelay(model, callbacks, t0)
            routing.AddAtSolutionCallback(relay)
        if initial is not None:
            copy = routing.solver().Assignment(initial)
            candidates.append((int(initial.ObjectiveValue()), "replan+ortools", copy))
            # The rounds in force hold nearly every job: the portfolio only gets its share.
            settled = _num_unperformed(model, initial) <= 0.1 * len(model.job_node)
    elif params.use_pyvrp and _pyvrp_supported(problem, screen):
        share = _pyvrp_time_share(params) * (0.6 if relaxed else 1.0)
        ortools_after_pyvrp_s = params.time_limit_s * (1 - share)
        try:
            seq = _pyvrp_routes(
                problem, model, durations, params, t0 + params.time_limit_s * share, screen, guide
            )
        except (AttributeError, TypeError, ValueError, RuntimeError) as e:
            # An incompatible PyVRP version or data it rejects: OR-Tools alone still plans.
            logger.warning(
                "PyVRP warm start failed (%s: %s); using OR-Tools alone", type(e).__name__, e
            )
            seq = None
        if seq is not None:
            routing.CloseModelWithParameters(_search_parameters(params, 1.0))
            repair_deadline = t0 + params.time_limit_s * (share + 0.15)
            initial = _assignment_from_sequences(model, seq, repair_deadline)
            if initial is not None and (cut := _num_unperformed(model, initial)):
                # Repaired start: reinsert the cut jobs by a short greedy descent.
                initial = _reinsert(model, initial, params, t0, 0.1)
                logger.debug(
                    "PyVRP's start: %d jobs left out by the repair, %d after reinsertion",
                    cut,
                    _num_unperformed(model, initial),
                )
            if initial is None:
                logger.warning("PyVRP routes rejected by the OR-Tools model")
            else:
                copy = routing.solver().Assignment(initial)
                left_out = _num_unperformed(model, initial)
                relay.report(int(initial.ObjectiveValue()), len(model.job_node) - left_out)
                candidates.append((int(initial.ObjectiveValue()), "pyvrp+ortools", copy))
                crowded = _crowded(left_out, len(model.job_node))
    if not candidates or relaxed or guide is not None or crowded:
        # With a guide too: the rounds in force may have fallen behind (a late courier), and
        # an insertion start priced with the same costs of change can keep more jobs. On a
        # piece too full for its couriers, PyVRP's search may settle on leaving out a job of
        # high priority, where an insertion start leaves out the cheapest ones.
        portfolio_params = params
        if crowded:
            left = params.time_limit_s - (time.monotonic() - t0)
            share = max(0.0, CROWDED_PORTFOLIO_SHARE * left / params.time_limit_s)
            portfolio_params = replace(params, portfolio_share=min(params.portfolio_share, share))
        initial, strategy = _first_solution_portfolio(
            model, portfolio_params, t0, started=settled or crowded
        )
        if initial is not None:
            candidates.append((int(initial.ObjectiveValue()), f"ortools({strategy})", initial))
    remaining = max(0.05, params.time_limit_s - (time.monotonic() - t0))
    if candidates:
        _start_cost, engine, initial = min(candidates, key=lambda c: c[0])
        stats["start"] = {name: cost for cost, name, _ in candidates}
        if params.balance:
            # Half the search as usual; the other half evens the rounds if they are uneven.
            remaining = max(0.05, remaining * (1 - params.balance_share))
        usual = ortools_after_pyvrp_s  # what OR-Tools gets when PyVRP runs to its deadline
        if crowded and len(candidates) > 1 and remaining > 2 * usual:
            # Plans of a piece too full for its couriers differ in which jobs they leave
            # out, and a search seldom trades one left-out job for another. Where PyVRP
            # stopped early, settled, OR-Tools searches from its own start for the time
            # PyVRP left, then from PyVRP's for its usual time; the cheaper result is kept.
            searched = []
            end = time.monotonic() + remaining
            last = "pyvrp+ortools"
            for start_cost, name, start in sorted(candidates, key=lambda c: c[1] == last):
                share = end - time.monotonic() - (0 if name == last else usual)
                found = routing.SolveFromAssignmentWithParameters(
                    start, _search_parameters(params, max(0.05, share))
                )
                if found is None:
                    searched.append((start_cost, name, start))
                else:
                    found = routing.solver().Assignment(found)
                    searched.append((int(found.ObjectiveValue()), name, found))
            _cost, engine, assignment = min(searched, key=lambda c: c[0])
            stats["searched"] = {name: cost for cost, name, _ in searched}
        else:
            assignment = routing.SolveFromAssignmentWithParameters(
                initial, _search_parameters(params, remaining)
            )
            if assignment is None:
                assignment = initial
        if params.balance:
            model, assignment, info = _rebalance(
                problem,
                durations,
                distances,
                screen,
                params,
                guide,
                model,
                assignment,
                t0 + params.time_limit_s,
            )
            routing = model.routing
            stats |= info
    else:
        assignment = routing.SolveWithParameters(_search_parameters(params, remaining))
    if assignment is None:
        # No solution at all within the time limit (huge piece, tight windows and breaks):
        # report every searched job instead of failing the whole plan.
        logger.warning(
            "%s: no solution within %.1f s (status %s); all %d jobs left unassigned",
            problem.name or "problem",
            params.time_limit_s,
            routing.status(),
            len(screen.eligible),
        )
        routes: list[Route] = []
        routed: set[int] = set()
        drop_reason = ReasonCode.TIME_LIMIT
        drop_detail = (
            "the solver found no plan within the time limit; split the day or allow more time"
        )
    else:
        routes, routed = _extract(problem, model, assignment, durations, distances)
        drop_reason = ReasonCode.DROPPED_LOW_PRIORITY
        drop_detail = "the search left it out: not enough courier time or capacity for every job"
    dropped = sorted(set(screen.eligible) - routed)
    unassigned += [Unassigned(problem.jobs[p].job_id, drop_reason, drop_detail) for p in dropped]
    order = {j.job_id: i for i, j in enumerate(problem.jobs)}
    unassigned.sort(key=lambda u: order[u.job_id])
    cost_matrix = durations if params.objective == "duration" else distances
    objective = plan_objective(
        problem,
        routes,
        dropped,
        cost_matrix=cost_matrix,
        penalties=model.penalties,
        params=params,
    )
    stats |= {
        "engine": engine,
        "seconds": round(time.monotonic() - t0, 3),
        "solutions": relay.count,
        "ortools_objective": int(assignment.ObjectiveValue()) if assignment is not None else None,
        "status": int(routing.status()),
        "drop_penalty_base": min(model.penalties.values()) if model.penalties else 0,
    }
    plan = Plan(tuple(routes), tuple(unassigned), objective, stats)
    logger.info(
        "%s: %d jobs, %d couriers -> %d routes, %d unassigned, %.1f s (%s)",
        problem.name or "problem",
        len(problem.jobs),
        len(problem.couriers),
        plan.num_routes,
        len(plan.unassigned),
        stats["seconds"],
        engine,
    )
    callbacks.on_end(plan)
    return plan
