"""Benchmark: plan a whole province day end to end on the synthetic Kon Tum province.

The province (about 100k road nodes, 10 post offices) is generated once and cached as a
compact graph; each run then times the pipeline as a dispatcher would run it: load the
graph cache, snap, assign and split, matrices, solve (pieces in parallel), check, draw.
Prints a table and, with ``--json PATH``, writes one object per run with ``jobs``,
``nodes``, ``total_s``, per-stage seconds, ``served``, ``unassigned`` (by reason),
``violations`` and ``peak_rss_mb``.

Usage::

    python tests/benchmarks/bench_province.py --jobs 2000 --couriers 60 --json province.json
    python tests/benchmarks/bench_province.py --jobs 5000 --couriers 150
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geodata.compact import compact_graph, load_compact  # noqa: E402
from geodata.synthetic import make_province  # noqa: E402
from routing.planner import PlanOptions, plan_day  # noqa: E402
from routing.scenario import make_day  # noqa: E402


def rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its (waited-for) worker processes, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def run(args: argparse.Namespace, jobs: int, couriers: int) -> dict[str, object]:
    cache = args.cache_dir / f"province-{args.nodes}-seed{args.seed}.npz"
    if not cache.exists():
        print(f"generating the {args.nodes:,}-node province (once)...", file=sys.stderr)
        cache.parent.mkdir(parents=True, exist_ok=True)
        compact_graph(make_province(args.nodes, seed=args.seed).graph).save(cache)
    # the scenario needs the province's villages and zones: regenerate (seeded, identical)
    province = make_province(args.nodes, seed=args.seed)
    scenario = make_day(province, n_jobs=jobs, n_couriers=couriers, seed=args.seed)

    t0 = time.perf_counter()
    graph = load_compact(cache)
    load_s = time.perf_counter() - t0
    options = PlanOptions(
        time_limit_s=args.wall_limit or PlanOptions().time_limit_s,
        piece_time_limit_s=None if args.wall_limit else args.time_limit,
        workers=args.workers,
        geometry=not args.no_geometry,
    )
    day = plan_day(
        scenario.problem, graph, zones=province.zones, closures=scenario.closures, options=options
    )
    total_s = time.perf_counter() - t0
    own, children = rss_mb()
    t = day.timings
    return {
        "jobs": len(scenario.problem.jobs),
        "couriers": len(scenario.problem.couriers),
        "nodes": graph.n_nodes,
        "pieces": len(day.pieces),
        "time_limit_s": None if args.wall_limit else args.time_limit,
        "wall_limit_s": args.wall_limit,
        "max_jobs_per_piece": args.max_piece,
        "total_s": round(total_s, 2),
        "graph_load_s": round(load_s, 3),
        "snapping_s": round(t["snapping_s"], 3),
        "assign_s": round(t["assign_s"], 3),
        "matrices_s": round(t["matrices_s"], 3),
        "solve_s": round(t["solve_s"], 3),
        "checker_s": round(t["check_s"], 3),
        "geometry_s": round(t.get("geometry_s", 0.0), 3),
        "served": sum(len(r.stops) for r in day.plan.routes),
        "unassigned": dict(Counter(u.reason for u in day.plan.unassigned)),
        "violations": len(day.violations),
        "peak_rss_mb": round(own, 1),
        "peak_rss_workers_mb": round(children, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, nargs="*", default=[2000])
    parser.add_argument(
        "--couriers", type=int, nargs="*", default=[60], help="one per --jobs value"
    )
    parser.add_argument(
        "--time-limit", type=float, default=3.0, help="search seconds of a full piece"
    )
    parser.add_argument(
        "--wall-limit",
        type=float,
        default=None,
        help="wall time of the whole plan instead (as the CLI's and the service's time limit)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--max-piece",
        type=int,
        default=PlanOptions().max_jobs_per_piece,
        help="most jobs in one solved piece",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-geometry", action="store_true", help="skip drawing the legs")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/courier-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if len(args.couriers) != len(args.jobs):
        parser.error("give one --couriers value per --jobs value")
    rows = [run(args, j, c) for j, c in zip(args.jobs, args.couriers, strict=True)]
    cols = ("jobs", "couriers", "pieces", "total_s", "graph_load_s", "snapping_s", "matrices_s", "solve_s",
            "checker_s", "geometry_s", "served", "violations", "peak_rss_mb", "peak_rss_workers_mb")  # fmt: skip
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>12}" for c in cols))
        print(f"{'':>12}   unassigned by reason: {r['unassigned']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    sys.exit(1 if any(r["violations"] for r in rows) else 0)


if __name__ == "__main__":
    main()
