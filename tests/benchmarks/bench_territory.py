"""Benchmark: the same courier in the same communes over a simulated fortnight.

Ten working days on the synthetic Kon Tum province (:func:`routing.simulate.simulate_month`):
fresh jobs every day (plus the failed ones tried again), the same couriers every day (the
roster of the first day), jobs keyed by their commune
(:func:`geodata.synthetic.make_communes`, 41 communes). In the same run:

- ``baseline``: the planner as before (no preference);
- ``territory@C``: each day prefers each commune's usual courier, learned from the plans of
  the days before it (:mod:`routing.territory`), serving a job with another courier costing
  ``C`` seconds of driving (``--costs``).

Reported per mode, over days 2-10 (day 1 has no history): the share of routed jobs served
by their commune's usual courier (learned from the days before each day, among that day's
couriers; for the baseline too), the same share over offices with two couriers or more (an
office with one courier serves its communes with their usual courier by force), total
kilometres of the rounds and their ratio to the
baseline, jobs routed and unassigned, checker violations, CPU seconds. Targets (issue 12
§3): share >= 80 % with <= 3 % more kilometres.

Usage::

    python tests/benchmarks/bench_territory.py --json tests/benchmarks/results/territory.json
    python tests/benchmarks/bench_territory.py --days 5 --costs 600
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geodata.compact import compact_graph, load_compact  # noqa: E402
from geodata.synthetic import make_communes, make_province  # noqa: E402
from routing.scenario import make_day  # noqa: E402
from routing.simulate import MonthDay, simulate_month  # noqa: E402
from routing.territory import served_by, territory_share  # noqa: E402


def cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_mode(
    name: str, cost: int | None, args: argparse.Namespace, ctx: dict[str, Any]
) -> dict[str, Any]:
    """Simulate the fortnight in one mode; return per-day and total figures."""
    days: list[dict[str, Any]] = []
    roster = [c.courier_id for c in ctx["couriers"]]
    staff: dict[str, int] = {}
    for c in ctx["couriers"]:
        staff[c.depot_id] = staff.get(c.depot_id, 0) + 1
    shared = {c.courier_id for c in ctx["couriers"] if staff[c.depot_id] > 1}

    def on_day(md: MonthDay) -> None:
        plan = md.day_plan.plan
        share = territory_share(plan, md.areas, md.territory, couriers=roster)
        # offices with one courier serve every commune with their usual courier by force
        multi = replace(plan, routes=tuple(r for r in plan.routes if r.courier_id in shared))
        share_multi = territory_share(multi, md.areas, md.territory, couriers=roster)
        # preferences: how many the split made impossible, how many the plan honoured
        crew = {
            c.courier_id: r.piece.piece_id
            for r in md.day_plan.pieces
            for c in r.piece.problem.couriers
        }
        piece_of = {
            j.job_id: r.piece.piece_id for r in md.day_plan.pieces for j in r.piece.problem.jobs
        }
        courier_of = served_by(plan)
        in_piece = sum(1 for j, c in md.preferred.items() if crew.get(c) == piece_of.get(j))
        routed_pref = [j for j in md.preferred if j in courier_of]
        honoured = sum(1 for j in routed_pref if courier_of[j] == md.preferred[j])
        days.append(
            {
                "preferred_in_piece": in_piece,
                "preferred_routed": len(routed_pref),
                "preferred_honoured": honoured,
                "day": md.day_plan.problem.day.isoformat() if md.day_plan.problem.day else None,
                "jobs": len(md.day_plan.problem.jobs),
                "routed": share.routed,
                "unassigned": len(plan.unassigned),
                "known": share.known,
                "by_usual": share.by_usual,
                "share": None if share.share is None else round(share.share, 4),
                "known_multi": share_multi.known,
                "by_usual_multi": share_multi.by_usual,
                "preferred": len(md.preferred),
                "km": round(sum(r.distance_m for r in plan.routes) / 1000, 2),
                "routes": len(plan.routes),
                "violations": len(md.day_plan.violations),
            }
        )

    c0, t0 = cpu_s(), time.perf_counter()
    simulate_month(
        ctx["province"],
        days=args.days,
        jobs_per_day=args.jobs,
        seed=args.seed,
        time_limit_s=args.piece_time,
        workers=args.workers,
        graph=ctx["graph"],
        couriers=ctx["couriers"],
        communes=ctx["communes"],
        territory=cost is not None,
        history_days=args.history,
        territory_cost_s=cost,
        on_day=on_day,
    )
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    later = days[1:]  # day 1 has no history
    known = sum(d["known"] for d in later)
    known_multi = sum(d["known_multi"] for d in later)
    return {
        "mode": name,
        "cost_s": cost,
        "share": round(sum(d["by_usual"] for d in later) / known, 4) if known else None,
        "share_multi": (
            round(sum(d["by_usual_multi"] for d in later) / known_multi, 4) if known_multi else None
        ),
        "preferred": sum(d["preferred"] for d in later),
        "preferred_in_piece": sum(d["preferred_in_piece"] for d in later),
        "preferred_routed": sum(d["preferred_routed"] for d in later),
        "preferred_honoured": sum(d["preferred_honoured"] for d in later),
        "km": round(sum(d["km"] for d in later), 1),
        "km_all_days": round(sum(d["km"] for d in days), 1),
        "routed": sum(d["routed"] for d in later),
        "unassigned": sum(d["unassigned"] for d in later),
        "violations": sum(d["violations"] for d in days),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "days": days,
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = [
        "| mode | usual-courier share | same, offices with 2+ couriers | km | km vs baseline | routed | unassigned | violations | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    for r in rows:
        ratio = r["km"] / base["km"] if base["km"] else float("nan")
        lines.append(
            f"| {r['mode']} | {pct(r['share'])} | {pct(r['share_multi'])} | {r['km']:.1f} | {100 * (ratio - 1):+.2f} % | {r['routed']} "
            f"| {r['unassigned']} | {r['violations']} | {r['cpu_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=120, help="new jobs per day")
    ap.add_argument("--couriers", type=int, default=15)
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--piece-time", type=float, default=1.0, help="search seconds per piece")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--history", type=int, default=10, help="days learned from")
    ap.add_argument("--town-wards", type=int, default=7, help="wards of Kon Tum town")
    ap.add_argument("--costs", default="300,600,1200", help="territory costs (s), comma-separated")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    cache = args.cache_dir / f"province-{args.nodes}-seed{args.seed}.npz"
    province = make_province(args.nodes, seed=args.seed)
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        compact_graph(province.graph).save(cache)
    first = make_day(province, n_jobs=args.jobs, n_couriers=args.couriers, seed=args.seed * 1000)
    ctx = {
        "province": province,
        "graph": load_compact(cache),
        "communes": make_communes(province, town_wards=args.town_wards),
        "couriers": first.problem.couriers,
    }
    modes: list[tuple[str, int | None]] = [("baseline", None)]
    modes += [(f"territory@{c}", int(c)) for c in args.costs.split(",") if c.strip()]
    rows = []
    for name, cost in modes:
        rows.append(run_mode(name, cost, args, ctx))
        print(f"{name}: share {rows[-1]['share']}, km {rows[-1]['km']}", file=sys.stderr)
    print(table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "communes": len(ctx["communes"]),
            "couriers_per_office": {
                d: sum(1 for c in ctx["couriers"] if c.depot_id == d)
                for d in sorted({c.depot_id for c in ctx["couriers"]})
            },
            "rows": rows,
        }
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
