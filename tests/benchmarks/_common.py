"""Shared machinery of the benchmark scripts: methods, uniform evaluation, tables, JSON.

Every method returns route sequences (location indices, depot excluded); the sequences are
scheduled at earliest times and checked by ``routing.check.check_plan`` so all methods are
judged by the same independent checker.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from routing.check import check_plan
from routing.instances import BenchmarkInstance, instance_params, plan_distances, read_instance
from routing.model import Problem
from routing.plan import Plan, Route, Stop, Unassigned
from routing.solver import solve

Sequences = list[list[int]]


# ----------------------------------------------------------------------------- evaluation


def plan_from_sequences(
    problem: Problem, sequences: Sequences, durations: np.ndarray, distances: np.ndarray
) -> Plan:
    """Schedule each sequence at the earliest times and build a Plan (unrouted -> unassigned)."""
    routes = []
    routed: set[int] = set()
    n_depots = len(problem.depots)
    vehicles = iter(problem.couriers)
    for seq in sequences:
        if not seq:
            continue
        courier = next(vehicles)
        depot = problem.depot_index(courier.depot_id)
        t = max(courier.shift.start_s, problem.depots[depot].opening.start_s)
        start = t
        prev = depot
        jobs = [problem.jobs[loc - n_depots] for loc in seq]
        load = problem.start_load([j.job_id for j in jobs])
        stops = []
        dist = drive = wait = 0
        for loc, job in zip(seq, jobs, strict=True):
            arrival = t + int(durations[prev, loc])
            begin = job.earliest_start_from(arrival)
            if begin is None:
                begin = arrival  # late: the checker will report the window
            load = load.serve(job.kind, job.demand)
            stops.append(
                Stop(job.job_id, loc, arrival, begin, begin + job.service_s, begin - arrival, load)
            )
            dist += int(distances[prev, loc])
            drive += int(durations[prev, loc])
            wait += begin - arrival
            t = begin + job.service_s
            prev = loc
            routed.add(loc)
        dist += int(distances[prev, depot])
        drive += int(durations[prev, depot])
        end = t + int(durations[prev, depot])
        routes.append(
            Route(
                courier.courier_id,
                courier.depot_id,
                start,
                end,
                tuple(stops),
                dist,
                drive,
                end - start,
                wait,
            )
        )
    unassigned = [
        Unassigned(j.job_id, "dropped_low_priority")
        for i, j in enumerate(problem.jobs)
        if n_depots + i not in routed
    ]
    return Plan(tuple(routes), tuple(unassigned), 0)


def evaluate(inst: BenchmarkInstance, plan: Plan | None, seconds: float) -> dict[str, Any]:
    """Return vehicles, distances, feasibility (by the checker) and time of a plan."""
    if plan is None:
        return {
            "vehicles": None,
            "distance_truncated": None,
            "distance_exact": None,
            "feasible": False,
            "seconds": round(seconds, 2),
            "violations": ["no solution"],
        }
    violations = check_plan(inst.problem, plan, inst.durations, inst.distances)
    trunc, exact = plan_distances(inst, plan)
    return {
        "vehicles": plan.num_routes,
        "distance_truncated": round(trunc, 1),
        "distance_exact": round(exact, 4),
        "feasible": not violations and not plan.unassigned,
        "unassigned": len(plan.unassigned),
        "seconds": round(seconds, 2),
        "violations": [str(v) for v in violations[:5]],
    }


# ----------------------------------------------------------------------------- methods


def run_ours(inst: BenchmarkInstance, time_limit_s: float, seed: int) -> Plan | None:
    params = instance_params(inst, time_limit_s=time_limit_s, seed=seed)
    return solve(inst.problem, inst.durations, inst.distances, params=params)


def run_ours_ortools(inst: BenchmarkInstance, time_limit_s: float, seed: int) -> Plan | None:
    """Our solver without the PyVRP warm start (first-solution portfolio + GLS)."""
    params = instance_params(inst, time_limit_s=time_limit_s, seed=seed, use_pyvrp=False)
    return solve(inst.problem, inst.durations, inst.distances, params=params)


def run_ortools_plain(inst: BenchmarkInstance, time_limit_s: float, seed: int) -> Plan | None:
    """OR-Tools as in its samples: Python callbacks, PATH_CHEAPEST_ARC + GLS, all jobs mandatory."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    problem = inst.problem
    n = problem.num_locations
    nv = len(problem.couriers)
    manager = pywrapcp.RoutingIndexManager(n, nv, 0)
    routing = pywrapcp.RoutingModel(manager)
    dist = inst.distances
    dur = inst.durations
    service = [0] + [j.service_s for j in problem.jobs]
    demand = [0] + [
        (j.demand.items if j.kind == "pickup" else -j.demand.items) for j in problem.jobs
    ]
    pdptw = inst.parsed.kind == "pdptw"
    if not pdptw:
        demand = [abs(d) for d in demand]

    def distance_cb(i: int, j: int) -> int:
        return int(dist[manager.IndexToNode(i), manager.IndexToNode(j)])

    def time_cb(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return int(dur[a, b]) + service[a]

    def demand_cb(i: int) -> int:
        return demand[manager.IndexToNode(i)]

    arc = routing.RegisterTransitCallback(distance_cb)
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    params = instance_params(inst, time_limit_s=time_limit_s)
    if params.vehicle_fixed_cost:
        routing.SetFixedCostOfAllVehicles(params.vehicle_fixed_cost)
    horizon = problem.depots[0].opening.end_s
    t = routing.RegisterTransitCallback(time_cb)
    routing.AddDimension(t, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    for k, job in enumerate(problem.jobs, start=1):
        time_dim.CumulVar(manager.NodeToIndex(k)).SetRange(job.first_start_s, job.last_end_s)
    for v in range(nv):
        time_dim.CumulVar(routing.Start(v)).SetRange(0, horizon)
        time_dim.CumulVar(routing.End(v)).SetRange(0, horizon)
    d = routing.RegisterUnaryTransitCallback(demand_cb)
    cap = problem.couriers[0].capacity.items
    routing.AddDimensionWithVehicleCapacity(d, 0, [cap] * nv, True, "load")
    if pdptw:
        solver = routing.solver()
        pos = {j.job_id: k for k, j in enumerate(problem.jobs, start=1)}
        partner = problem.pair_partner()
        for job in problem.jobs:
            if job.kind == "pickup" and job.pair_id:
                pi = manager.NodeToIndex(pos[job.job_id])
                di = manager.NodeToIndex(pos[partner[job.job_id]])
                routing.AddPickupAndDelivery(pi, di)
                solver.Add(routing.VehicleVar(pi) == routing.VehicleVar(di))
                solver.Add(time_dim.CumulVar(pi) <= time_dim.CumulVar(di))
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.FromMilliseconds(int(time_limit_s * 1000))
    sol = routing.SolveWithParameters(search)
    if sol is None:
        return None
    seqs = []
    for v in range(nv):
        i = sol.Value(routing.NextVar(routing.Start(v)))
        seq = []
        while not routing.IsEnd(i):
            seq.append(manager.IndexToNode(i))
            i = sol.Value(routing.NextVar(i))
        seqs.append(seq)
    return plan_from_sequences(problem, seqs, dur, dist)


def run_pyvrp(inst: BenchmarkInstance, time_limit_s: float, seed: int) -> Plan | None:
    """PyVRP alone on the same integer matrices (shipments for PDPTW)."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    problem = inst.problem
    params = instance_params(inst, time_limit_s=time_limit_s)
    m = Model()
    x, y = inst.parsed.coords[:, 0], inst.parsed.coords[:, 1]
    locs = [m.add_location(float(x[i]), float(y[i])) for i in range(problem.num_locations)]
    depot = m.add_depot(
        locs[0], tw_early=problem.depots[0].opening.start_s, tw_late=problem.depots[0].opening.end_s
    )
    m.add_vehicle_type(
        len(problem.couriers),
        capacity=[problem.couriers[0].capacity.items],
        start_depot=depot,
        end_depot=depot,
        fixed_cost=params.vehicle_fixed_cost,
        tw_early=problem.depots[0].opening.start_s,
        tw_late=problem.depots[0].opening.end_s,
    )
    order: list[int] = []  # client number -> location
    if inst.parsed.kind == "vrptw":
        for k, job in enumerate(problem.jobs, start=1):
            m.add_client(
                locs[k],
                delivery=[job.demand.items],
                service_duration=job.service_s,
                tw_early=job.first_start_s,
                tw_late=job.last_end_s,
            )
            order.append(k)
    else:
        pos = {j.job_id: k for k, j in enumerate(problem.jobs, start=1)}
        partner = problem.pair_partner()
        for job in problem.jobs:
            if job.kind != "pickup":
                continue
            dk = pos[partner[job.job_id]]
            djob = problem.jobs[dk - 1]
            m.add_shipment(
                locs[pos[job.job_id]],
                locs[dk],
                pickup_tw_early=job.first_start_s,
                pickup_tw_late=job.last_end_s,
                pickup_service_duration=job.service_s,
                delivery_tw_early=djob.first_start_s,
                delivery_tw_late=djob.last_end_s,
                delivery_service_duration=djob.service_s,
                amount=[job.demand.items],
            )
    for i in range(problem.num_locations):
        for j in range(problem.num_locations):
            m.add_edge(locs[i], locs[j], int(inst.distances[i, j]), int(inst.durations[i, j]))
    res = m.solve(MaxRuntime(time_limit_s), seed=seed, display=False)
    if not res.best.is_feasible():
        return None
    data = m.data()
    seqs = []
    for route in res.best.routes():
        seq = []
        for act in route:
            if act.is_client():
                seq.append(order[act.idx])
            elif act.is_shipment() if hasattr(act, "is_shipment") else False:
                ship = data.shipments()[act.idx] if hasattr(data, "shipments") else None
                if ship is not None:
                    step = ship.pickup if act.is_pickup() else ship.delivery
                    seq.append(int(step.location) if hasattr(step, "location") else int(step))
        seqs.append(seq)
    return plan_from_sequences(problem, seqs, inst.durations, inst.distances)


def run_vroom(inst: BenchmarkInstance, time_limit_s: float, seed: int) -> Plan | None:
    """VROOM (pyvroom), exploration level 5, one thread, on the integer matrices."""
    import vroom

    problem = inst.problem
    v = vroom.Input()
    v.set_durations_matrix(profile="car", matrix_input=inst.durations.astype(np.uint32))
    v.set_costs_matrix(profile="car", matrix_input=inst.distances.astype(np.uint32))
    params = instance_params(inst, time_limit_s=time_limit_s)
    horizon = problem.depots[0].opening
    for k, c in enumerate(problem.couriers, start=1):
        v.add_vehicle(
            vroom.Vehicle(
                k,
                start=0,
                end=0,
                capacity=[c.capacity.items],
                time_window=vroom.TimeWindow(horizon.start_s, horizon.end_s),
                costs=vroom.VehicleCosts(fixed=params.vehicle_fixed_cost, per_hour=3600),
            )
        )
    pos = {j.job_id: k for k, j in enumerate(problem.jobs, start=1)}
    partner = problem.pair_partner()
    for k, job in enumerate(problem.jobs, start=1):
        tws = [vroom.TimeWindow(job.first_start_s, job.last_end_s)]
        if job.pair_id is None:
            v.add_job(
                vroom.Job(
                    k,
                    location=k,
                    default_service=job.service_s,
                    delivery=[job.demand.items],
                    time_windows=tws,
                )
            )
        elif job.kind == "pickup":
            dk = pos[partner[job.job_id]]
            dj = problem.jobs[dk - 1]
            v.add_shipment(
                vroom.ShipmentStep(k, location=k, default_service=job.service_s, time_windows=tws),
                vroom.ShipmentStep(
                    dk,
                    location=dk,
                    default_service=dj.service_s,
                    time_windows=[vroom.TimeWindow(dj.first_start_s, dj.last_end_s)],
                ),
                amount=vroom.Amount([job.demand.items]),
            )
    sol = v.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=time_limit_s))
    df = sol.routes
    seqs = []
    for _, group in df.groupby("vehicle_id", sort=True):
        seq = [
            int(r.location_index)
            for r in group.itertuples()
            if r.type in ("job", "pickup", "delivery")
        ]
        seqs.append(seq)
    return plan_from_sequences(problem, seqs, inst.durations, inst.distances)


METHODS: dict[str, Callable[[BenchmarkInstance, float, int], Plan | None]] = {
    "ours": run_ours,
    "ours_ortools": run_ours_ortools,
    "ortools_plain": run_ortools_plain,
    "pyvrp": run_pyvrp,
    "vroom": run_vroom,
}


def available_methods() -> list[str]:
    out = ["ours", "ortools_plain"]
    try:
        import pyvrp  # noqa: F401

        out.append("pyvrp")
    except ImportError:
        pass
    try:
        import vroom  # noqa: F401

        out.append("vroom")
    except ImportError:
        pass
    return out


# ----------------------------------------------------------------------------- driver


def read_bks(path: Path) -> dict[str, tuple[int, float]]:
    with path.open() as fh:
        return {
            r["instance"]: (int(r["vehicles"]), float(r["distance"])) for r in csv.DictReader(fh)
        }


def parse_args(default_data: str, description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=default_data, help="folder with <name>.txt and bks.csv")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance and method")
    p.add_argument(
        "--instances", default="", help="comma-separated names or prefixes (e.g. R1,C101)"
    )
    p.add_argument(
        "--methods", default="", help="comma-separated subset of ours,ortools_plain,pyvrp,vroom"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write results to this JSON file")
    return p.parse_args()


def run(
    args: argparse.Namespace,
    *,
    class_of: Callable[[str], str],
    metric: str,
) -> list[dict[str, Any]]:
    data = Path(args.data)
    bks = read_bks(data / "bks.csv")
    names = sorted(p.stem for p in data.glob("*.txt"))
    if args.instances:
        wanted = [w.strip() for w in args.instances.split(",") if w.strip()]
        names = [n for n in names if any(n.lower().startswith(w.lower()) for w in wanted)]
    methods = [m for m in (args.methods.split(",") if args.methods else available_methods()) if m]
    rows: list[dict[str, Any]] = []
    for name in names:
        inst = read_instance(data / f"{name}.txt")
        bk_veh, bk_dist = bks.get(name, (None, None))
        for method in methods:
            t0 = time.monotonic()
            try:
                plan = METHODS[method](inst, args.time_limit, args.seed)
                err = ""
            except Exception as e:
                plan, err = None, f"{type(e).__name__}: {e}"
            row = {"instance": name, "class": class_of(name), "method": method}
            row |= evaluate(inst, plan, time.monotonic() - t0)
            if err:
                row["violations"] = [err]
            row["bks_vehicles"], row["bks_distance"] = bk_veh, bk_dist
            dist = row.get(metric)
            row["gap_pct"] = (
                round(100 * (dist - bk_dist) / bk_dist, 3)
                if dist is not None and bk_dist and row["feasible"]
                else None
            )
            row["bks_vehicles_reached"] = (
                row["feasible"] and bk_veh is not None and row["vehicles"] <= bk_veh
            )
            rows.append(row)
            print(
                f"{name:8s} {method:14s} veh {row['vehicles']!s:>4} "
                f"dist {row.get(metric)!s:>10} gap {row['gap_pct']!s:>7}% "
                f"feasible {row['feasible']!s:5} {row['seconds']:6.1f}s {err[:60]}",
                flush=True,
            )
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def summarise(rows: list[dict[str, Any]], classes: list[str]) -> str:
    """Return a plain-text table of per-class and overall means per method."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        f"{'method':14s} {'class':6s} {'n':>3s} {'solved':>6s} {'feas':>5s} {'veh':>6s} "
        f"{'bksveh%':>7s} {'gap%':>7s} {'gap%@bksveh':>11s} {'sec':>5s}"
    ]
    for method in methods:
        for cls in [*classes, "all"]:
            sel = [r for r in rows if r["method"] == method and (cls == "all" or r["class"] == cls)]
            if not sel:
                continue
            feas = [r for r in sel if r["feasible"]]
            gaps = [r["gap_pct"] for r in feas if r["gap_pct"] is not None]
            veh = [r["vehicles"] for r in feas]
            bv = [r for r in sel if r["bks_vehicles_reached"]]
            same = [
                r["gap_pct"]
                for r in feas
                if r["gap_pct"] is not None and r["vehicles"] == r["bks_vehicles"]
            ]
            solved = sum(r["vehicles"] is not None for r in sel)
            lines.append(
                f"{method:14s} {cls:6s} {len(sel):3d} {solved:6d} "
                f"{len(feas):5d} {statistics.mean(veh) if veh else math.nan:6.2f} "
                f"{100 * len(bv) / len(sel):7.1f} "
                f"{statistics.mean(gaps) if gaps else math.nan:7.2f} "
                f"{statistics.mean(same) if same else math.nan:11.2f} "
                f"{statistics.mean(r['seconds'] for r in sel):5.1f}"
            )
    return "\n".join(lines)
