"""Benchmark the solver on generated province-like days (breaks, two windows, cash, skills, pairs).

Compares the full solver (PyVRP warm start where it applies) with the OR-Tools-only path at
the same time limit; every plan is verified by ``routing.check.check_plan``. Usage::

    PYTHONPATH=. python tests/benchmarks/bench_solver_days.py --time-limit 10 --sizes 100,200,400
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from routing.check import check_plan
from routing.params import SolverParams
from routing.solver import solve
from tests.unit.routing.helpers import matrices, random_problem


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--time-limit", type=float, default=10.0)
    p.add_argument("--sizes", default="100,200,400")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--json", default="")
    args = p.parse_args()
    rows = []
    print(
        f"{'jobs':>5} {'seed':>4} {'method':12s} {'routes':>6} {'unassigned':>10} "
        f"{'driving_h':>9} {'objective':>10} {'feasible':>8} {'engine':22s} {'sec':>5}"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        for seed in range(args.seeds):
            problem = random_problem(
                seed,
                n_jobs=n,
                n_couriers=max(2, n // 20),
                radius_km=15,
                tight_windows=False,
                multi_windows=True,
                breaks=True,
                cash=True,
                skills=True,
                pairs=n // 20,
                cash_cap_vnd=50_000_000,
                skilled_couriers=max(1, n // 40),
            )
            dur, dist = matrices(problem)
            for method, use in (("ours", True), ("ortools_only", False)):
                t0 = time.monotonic()
                plan = solve(
                    problem,
                    dur,
                    dist,
                    params=SolverParams(time_limit_s=args.time_limit, use_pyvrp=use),
                )
                sec = time.monotonic() - t0
                ok = not check_plan(problem, plan, dur, dist)
                row = {
                    "jobs": n,
                    "seed": seed,
                    "method": method,
                    "routes": plan.num_routes,
                    "unassigned": len(plan.unassigned),
                    "driving_s": plan.driving_s,
                    "objective": plan.objective,
                    "feasible": ok,
                    "engine": plan.stats.get("engine"),
                    "seconds": round(sec, 1),
                }
                rows.append(row)
                print(
                    f"{n:5d} {seed:4d} {method:12s} {row['routes']:6d} {row['unassigned']:10d} "
                    f"{plan.driving_s / 3600:9.1f} {plan.objective:10d} {ok!s:>8} "
                    f"{row['engine']!s:22s} {sec:5.1f}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
