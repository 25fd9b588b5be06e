r"""Benchmark: plan a whole province day end to end on the synthetic Kon Tum province.

The province (about 100k road nodes, 10 post offices) is generated once and cached as a
compact graph; each run then times the pipeline as a dispatcher would run it: load the
graph cache, snap, assign and split, matrices, solve (pieces in parallel), check, draw.
Prints a table and, with ``--json PATH``, writes one object per run with ``jobs``,
``nodes``, ``total_s``, per-stage seconds, CPU seconds (this process and its worker
processes), ``served``, ``km``, ``unassigned`` (by reason), ``violations``, peak RSS and the
load average around the run.

By default the plan gets the planner's default wall time for the day's size (as the CLI and
the service give it); ``--wall-limit`` sets another, ``--time-limit`` the search seconds of a
full 60-job piece instead (how the pipeline was measured before wall-time limits).

``--baseline DIR`` compares against other code in the same run: for every day size and
seed, the code checked out in DIR (a ``git worktree`` of the baseline commit) plans the day
with ``--baseline-options``, then this checkout with the other options given; each run is a
process of its own, so peak memory is per run.

Usage::

    python tests/benchmarks/bench_province.py --jobs 2000 --couriers 60 --json province.json
    python tests/benchmarks/bench_province.py --jobs 5000 10000 --couriers 150 300 \
        --baseline ../province-base --baseline-options="--time-limit 3 --max-piece 60" \
        --json tests/benchmarks/results/province_compare.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _code_root() -> Path:
    """The checkout whose code is measured: ``--code DIR`` if given, else this one."""
    if "--code" in sys.argv:
        return Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    return Path(__file__).resolve().parents[2]


ROOT = _code_root()
sys.path.insert(0, str(ROOT))

from geodata.compact import compact_graph, load_compact  # noqa: E402
from geodata.synthetic import make_province  # noqa: E402
from routing.planner import PlanOptions, plan_day  # noqa: E402
from routing.scenario import make_day  # noqa: E402

COLUMNS = ("code", "jobs", "couriers", "seed", "pieces", "limit_s", "total_s", "cpu_s",
           "snapping_s", "matrices_s", "solve_s", "checker_s", "geometry_s", "served",
           "km", "routes", "violations", "rss_mb", "rss_workers_mb", "load")  # fmt: skip


def rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its (waited-for) worker processes, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and its waited-for worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(args: argparse.Namespace, jobs: int, couriers: int, seed: int) -> dict[str, Any]:
    """Plan one generated day; return its row."""
    cache = args.cache_dir / f"province-{args.nodes}-seed{args.seed}.npz"
    if not cache.exists():
        print(f"generating the {args.nodes:,}-node province (once)...", file=sys.stderr)
        cache.parent.mkdir(parents=True, exist_ok=True)
        compact_graph(make_province(args.nodes, seed=args.seed).graph).save(cache)
    # the scenario needs the province's villages and zones: regenerated (seeded, identical)
    # once per day, then kept next to the graph
    day_cache = args.cache_dir / f"day-{args.nodes}-seed{args.seed}-{jobs}-{couriers}-s{seed}.pkl"
    if day_cache.exists():
        problem, closures, zones = pickle.loads(day_cache.read_bytes())
    else:
        province = make_province(args.nodes, seed=args.seed)
        scenario = make_day(province, n_jobs=jobs, n_couriers=couriers, seed=seed)
        problem, closures, zones = scenario.problem, scenario.closures, province.zones
        day_cache.write_bytes(pickle.dumps((problem, closures, zones)))

    load_before = os.getloadavg()[0]
    cpu0 = cpu_s()
    t0 = time.perf_counter()
    graph = load_compact(cache)
    load_s = time.perf_counter() - t0
    extra: dict[str, Any] = {}
    if args.max_piece is not None:
        extra["max_jobs_per_piece"] = args.max_piece
    if args.wall_limit is not None:  # else the planner's default for the day's size
        extra["time_limit_s"] = args.wall_limit
    options = PlanOptions(
        piece_time_limit_s=args.time_limit,
        workers=args.workers,
        geometry=not args.no_geometry,
        **extra,
    )
    day = plan_day(problem, graph, zones=zones, closures=closures, options=options)
    total_s = time.perf_counter() - t0
    cpu = cpu_s() - cpu0
    own, children = rss_mb()
    t = day.timings
    limit = args.wall_limit
    if limit is None and args.time_limit is None:
        from routing.planner import default_time_limit_s

        limit = default_time_limit_s(len(problem.jobs))
    return {
        "code": args.label,
        "commit": _commit(),
        "jobs": len(problem.jobs),
        "couriers": len(problem.couriers),
        "seed": seed,
        "nodes": graph.n_nodes,
        "pieces": len(day.pieces),
        "piece_jobs_max": max((len(r.piece.problem.jobs) for r in day.pieces), default=0),
        "time_limit_s": args.time_limit,
        "wall_limit_s": None if limit is None else round(limit, 1),
        "limit_s": f"{args.time_limit}/piece" if args.time_limit else round(limit or 0, 1),
        "max_jobs_per_piece": options.max_jobs_per_piece,
        "total_s": round(total_s, 2),
        "cpu_s": round(cpu, 1),
        "graph_load_s": round(load_s, 3),
        "snapping_s": round(t["snapping_s"], 3),
        "assign_s": round(t["assign_s"], 3),
        "matrices_s": round(t["matrices_s"], 3),
        "solve_s": round(t["solve_s"], 3),
        "checker_s": round(t["check_s"], 3),
        "geometry_s": round(t.get("geometry_s", 0.0), 3),
        "served": sum(len(r.stops) for r in day.plan.routes),
        "km": round(sum(r.distance_m for r in day.plan.routes) / 1000, 1),
        "routes": len(day.plan.routes),
        "driving_h": round(sum(r.driving_s for r in day.plan.routes) / 3600, 1),
        "unassigned": {
            str(k): v for k, v in Counter(u.reason for u in day.plan.unassigned).items()
        },
        "violations": len(day.violations),
        "rss_mb": round(own, 1),
        "rss_workers_mb": round(children, 1),
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
    }


def _commit() -> str:
    """The measured checkout's commit (short), with ``+`` when it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+" if dirty else "")


def run_child(code: Path | None, label: str, options: list[str], jobs: int, couriers: int,
              seed: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """Plan one day in a process of its own (``code``: another checkout); return its row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, str(Path(__file__).resolve())]
        if code is not None:
            cmd += ["--code", str(code)]
        cmd += ["--jobs", str(jobs), "--couriers", str(couriers), "--day-seeds", str(seed)]
        cmd += ["--nodes", str(args.nodes), "--seed", str(args.seed), "--label", label]
        cmd += ["--cache-dir", str(args.cache_dir), "--json", str(out), *options]
        print("$", shlex.join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=False)
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        return rows[0]


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the rows as a plain-text table, with the reasons of the unassigned jobs."""
    print(" | ".join(f"{c:>10}" for c in COLUMNS))
    for r in rows:
        print(" | ".join(f"{r.get(c)!s:>10}" for c in COLUMNS))
        print(f"{'':>10}   unassigned by reason: {r['unassigned']}")


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
        "--time-limit",
        type=float,
        default=None,
        help="search seconds of a full piece instead of a wall time for the plan",
    )
    parser.add_argument(
        "--wall-limit",
        type=float,
        default=None,
        help="wall time of the whole plan (default: the planner's default for the day's size)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-piece", type=int, default=None, help="most jobs in one solved piece")
    parser.add_argument("--seed", type=int, default=0, help="seed of the province")
    parser.add_argument(
        "--day-seeds", type=int, nargs="*", default=None, help="seeds of the days (default --seed)"
    )
    parser.add_argument("--no-geometry", action="store_true", help="skip drawing the legs")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/courier-bench"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--code", type=Path, help="measure the code of this checkout instead")
    parser.add_argument("--label", default="this", help="name of the code in the table")
    parser.add_argument("--baseline", type=Path, help="checkout of the baseline code to compare")
    parser.add_argument(
        "--baseline-options",
        default="--time-limit 3 --max-piece 60",
        help="options of the baseline runs (one string)",
    )
    args = parser.parse_args()
    if len(args.couriers) != len(args.jobs):
        parser.error("give one --couriers value per --jobs value")
    seeds = args.day_seeds if args.day_seeds is not None else [args.seed]
    days = [(j, c, s) for j, c in zip(args.jobs, args.couriers, strict=True) for s in seeds]
    rows: list[dict[str, Any]] = []
    if args.baseline is None:
        rows = [run(args, j, c, s) for j, c, s in days]
    else:
        own = _own_options(args)
        base = shlex.split(args.baseline_options)
        for j, c, s in days:
            rows.append(run_child(args.baseline, "baseline", base, j, c, s, args))
            rows.append(run_child(None, "new", own, j, c, s, args))
            if args.json:  # keep what is done if a later run fails
                args.json.write_text(json.dumps(rows, indent=1))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    sys.exit(1 if any(r["violations"] for r in rows) else 0)


def _own_options(args: argparse.Namespace) -> list[str]:
    """The options of this checkout's runs in a comparison (those given on the command line)."""
    out = ["--workers", str(args.workers)]
    if args.time_limit is not None:
        out += ["--time-limit", str(args.time_limit)]
    if args.wall_limit is not None:
        out += ["--wall-limit", str(args.wall_limit)]
    if args.max_piece is not None:
        out += ["--max-piece", str(args.max_piece)]
    if args.no_geometry:
        out.append("--no-geometry")
    return out


if __name__ == "__main__":
    main()
