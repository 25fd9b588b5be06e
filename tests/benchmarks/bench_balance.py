"""Benchmark: working-time balance of a post office's couriers, today's plan against balanced.

Plans the demo day (``courier demo``: the 20,000-node synthetic Kon Tum province, 300 jobs,
30 couriers, 10 s of wall time on 2 workers) twice per search seed in the same run: with
``PlanOptions(balance=False)`` (today's plan, the named baseline) and with the default
``balance=True``; the two alternate so machine load drifts over both. For each plan it
reports, per post office, the longest round over the mean round (``Plan.office_balance``,
the figure the dispatcher's page shows), and for the day the kilometres, jobs served,
checker violations (``routing.check`` through ``plan_day``) and CPU seconds.

Targets (issue 12, section 3): every office at most 1.25, at most 2 % more kilometres, the
same jobs served.

Usage::

    python tests/benchmarks/bench_balance.py --seeds 0 1 2 --json balance_demo.json
    python tests/benchmarks/bench_balance.py --jobs 2000 --nodes 100000 --time-limit 60
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geodata.compact import compact_graph  # noqa: E402
from geodata.synthetic import make_province  # noqa: E402
from routing.planner import PlanOptions, plan_day  # noqa: E402
from routing.scenario import make_day  # noqa: E402

METHODS = {"today": False, "balanced": True}
TARGET_RATIO = 1.25
TARGET_KM = 0.02


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def plan_once(setup: dict[str, Any], args: argparse.Namespace, seed: int, balance: bool) -> dict:
    """Plan the day once and return its figures."""
    scenario, province, graph = setup["scenario"], setup["province"], setup["graph"]
    options = PlanOptions(
        time_limit_s=args.time_limit,
        seed=seed,
        workers=args.workers,
        geometry=False,
        balance=balance,
    )
    c0, t0 = cpu_s(), time.perf_counter()
    day = plan_day(
        scenario.problem, graph, zones=province.zones, closures=scenario.closures, options=options
    )
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    couriers: dict[str, int] = {}
    for c in scenario.problem.couriers:
        couriers[c.depot_id] = couriers.get(c.depot_id, 0) + 1
    pieces: dict[str, int] = {}
    for r in day.pieces:
        pieces[r.piece.depot_id] = pieces.get(r.piece.depot_id, 0) + 1
    offices = {
        d: {**b.to_dict(), "couriers": couriers.get(d, 0), "pieces": pieces.get(d, 0)}
        for d, b in day.plan.office_balance().items()
    }
    ratios = [o["ratio"] for o in offices.values()]
    return {
        "seed": seed,
        "method": "balanced" if balance else "today",
        "jobs": len(scenario.problem.jobs),
        "couriers": len(scenario.problem.couriers),
        "time_limit_s": args.time_limit,
        "workers": args.workers,
        "km": round(day.plan.distance_m / 1000, 1),
        "served": len(day.plan.assigned_job_ids()),
        "unassigned": len(day.plan.unassigned),
        "violations": len(day.violations),
        "rounds": day.plan.num_routes,
        "working_h": round(sum(r.working_s for r in day.plan.routes) / 3600, 2),
        "max_ratio": max(ratios),
        "offices_over": sum(r > TARGET_RATIO for r in ratios),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "offices": offices,
        "pieces": {
            r.piece.piece_id: {k: v for k, v in r.plan.stats.items() if k.startswith("balance")}
            for r in day.pieces
        },
    }


def print_tables(runs: list[dict[str, Any]]) -> None:
    """Print one row per plan, the per-office ratios and the same-run comparison."""
    print(
        f"{'seed':>4} {'method':9} {'km':>8} {'served':>6} {'viol':>4} {'rounds':>6} "
        f"{'work h':>7} {'max r':>6} {'>1.25':>5} {'wall s':>6} {'cpu s':>6}"
    )
    for r in runs:
        print(
            f"{r['seed']:>4} {r['method']:9} {r['km']:>8.1f} {r['served']:>6} "
            f"{r['violations']:>4} {r['rounds']:>6} {r['working_h']:>7.1f} "
            f"{r['max_ratio']:>6.3f} {r['offices_over']:>5} {r['wall_s']:>6.1f} {r['cpu_s']:>6.1f}"
        )
    offices = sorted({d for r in runs for d in r["offices"]})
    print()
    print("max/mean working time per office (today -> balanced, each seed)")
    for d in offices:
        cells = []
        for seed in sorted({r["seed"] for r in runs}):
            pair = {r["method"]: r["offices"].get(d) for r in runs if r["seed"] == seed}
            if pair.get("today") and pair.get("balanced"):
                cells.append(f"{pair['today']['ratio']:.2f}->{pair['balanced']['ratio']:.2f}")
        any_run = next(r["offices"][d] for r in runs if d in r["offices"])
        print(
            f"  {d:14} couriers {any_run['couriers']:>3} pieces {any_run['pieces']:>2}  "
            + "  ".join(cells)
        )
    print()
    km_delta = []
    for seed in sorted({r["seed"] for r in runs}):
        pair = {r["method"]: r for r in runs if r["seed"] == seed}
        if "today" in pair and "balanced" in pair:
            delta = pair["balanced"]["km"] / pair["today"]["km"] - 1
            km_delta.append(delta)
            print(
                f"seed {seed}: km {100 * delta:+.2f} %, served "
                f"{pair['balanced']['served'] - pair['today']['served']:+d}, max ratio "
                f"{pair['today']['max_ratio']:.3f} -> {pair['balanced']['max_ratio']:.3f}"
            )
    if km_delta:
        print(f"mean km change {100 * statistics.mean(km_delta):+.2f} % (target <= +2 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--couriers", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--day-seed", type=int, default=0, help="province and day (demo: 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="search seeds")
    parser.add_argument("--time-limit", type=float, default=10.0, help="wall seconds per plan")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    print(f"generating the {args.nodes:,}-node province and the day...", file=sys.stderr)
    province = make_province(args.nodes, seed=args.day_seed)
    setup = {
        "province": province,
        "graph": compact_graph(province.graph),
        "scenario": make_day(
            province, n_jobs=args.jobs, n_couriers=args.couriers, seed=args.day_seed
        ),
    }
    runs = []
    for k, seed in enumerate(args.seeds):
        order = list(METHODS.items()) if k % 2 == 0 else list(METHODS.items())[::-1]
        for name, balance in order:
            print(f"seed {seed}: {name}...", file=sys.stderr)
            runs.append(plan_once(setup, args, seed, balance))
    runs.sort(key=lambda r: (r["seed"], r["method"] != "today"))
    print_tables(runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
