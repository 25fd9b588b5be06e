"""Benchmark: re-plan a running day at 11:00 against planning the remaining work from scratch.

For each day (the demo province's 300-job day, and a 2,000-job day), the morning plan is
played until 11:00 (stops left before then are served, one in eight of the unpaired ones failed; the
stop being served at 11:00 is "arrived"; three couriers in four on the way to their next stop
sent a GPS fix, placed on the straight line between the two stops as the plan's times say). Then 20 urgent
jobs arrive (pickups and deliveries near existing jobs, priority 5), 2 couriers stop
working and one road is closed, and in the same run:

- ``replan``: :func:`routing.replan.replan` (starts from the rounds in force, prices changes);
- ``scratch``: the same remaining work planned from scratch (``keep_rounds=False``), the
  baseline.

Reported per day: wall time and CPU (this process and its workers), jobs served after the
re-plan, stability (share of the jobs of couriers the changes did not touch that keep their
courier), checker violations, and the urgent-job suggestion latency (``--suggestions`` calls
of :func:`routing.suggest.suggest_insertions` with the service's matrix function; median and
p95 of the wall time and of the CPU time, the latter being what a call costs on a quiet
machine), with the load average when the suggestions were timed. Targets (issue): <= 10 s (300 jobs), <= 30 s (2,000 jobs) on 2 cores; served >= scratch
- 1 %; stability >= 90 %; suggestion p95 <= 200 ms; 0 violations.

Usage::

    python tests/benchmarks/bench_replan.py --json tests/benchmarks/results/replan.json
    python tests/benchmarks/bench_replan.py --days demo --suggestions 100
    python tests/benchmarks/bench_replan.py --days 2000 --suggestions 50 --suggestions-only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shapely.geometry import Point  # noqa: E402

from api.network import Network  # noqa: E402
from geodata.closures import Closure  # noqa: E402
from geodata.compact import compact_graph, load_compact  # noqa: E402
from geodata.synthetic import make_province  # noqa: E402
from routing.model import Job, Load, TimeWindow  # noqa: E402
from routing.planner import DayPlan, PlanOptions, plan_day  # noqa: E402
from routing.replan import (  # noqa: E402
    CourierState,
    DayChanges,
    Replan,
    ReplanOptions,
    StopProgress,
    replan,
)
from routing.scenario import make_day  # noqa: E402
from routing.suggest import suggest_insertions  # noqa: E402
from routing.vocabulary import StopStatus  # noqa: E402

H = 3600
NOW_S = 11 * H
DAYS = {
    # name: (nodes, jobs, couriers, morning search seconds, re-plan limit seconds)
    "demo": (20_000, 300, 30, 10.0, 8.0),
    "2000": (100_000, 2000, 60, 20.0, 24.0),
}


def cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def live_states(day: DayPlan, now_s: int) -> tuple[dict[str, CourierState], float]:
    """Play the morning plan until ``now_s``; return the states and the share of stops served."""
    states: dict[str, CourierState] = {}
    jobs = day.problem.job_by_id()
    served = total = 0
    for k, route in enumerate(day.plan.routes):
        progress = []
        for n, stop in enumerate(route.stops):
            total += 1
            if stop.departure_s <= now_s:
                served += 1
                paired = jobs[stop.job_id].pair_id is not None
                status = StopStatus.FAILED if n % 8 == 7 and not paired else StopStatus.COMPLETED
                progress.append(StopProgress(stop.job_id, status, stop.departure_s))
            elif stop.arrival_s <= now_s:
                progress.append(StopProgress(stop.job_id, StopStatus.ARRIVED, stop.arrival_s))
        fix = None
        done = [s for s in route.stops if s.departure_s <= now_s]
        ahead = [s for s in route.stops if s.departure_s > now_s and s.arrival_s > now_s]
        if done and ahead and k % 4 != 3:  # three phones in four sent a fix on the way
            last, nxt = jobs[done[-1].job_id], jobs[ahead[0].job_id]
            span = max(1, ahead[0].arrival_s - done[-1].departure_s)
            f = min(1.0, (now_s - done[-1].departure_s) / span)
            fix = (last.lon + f * (nxt.lon - last.lon), last.lat + f * (nxt.lat - last.lat))
        states[route.courier_id] = CourierState(
            route.courier_id, tuple(progress), position=fix, position_s=now_s if fix else None
        )
    return states, served / max(1, total)


def urgent_jobs(day: DayPlan, n: int, now_s: int) -> tuple[Job, ...]:
    """``n`` urgent jobs near jobs of the day, half pickups, half deliveries."""
    out = []
    for k in range(n):
        near = day.problem.jobs[(k * 37) % len(day.problem.jobs)]
        out.append(
            replace(
                near,
                job_id=f"URGENT-{k:02d}",
                kind="pickup" if k % 2 else "delivery",
                lon=near.lon + 0.0015,
                lat=near.lat - 0.001,
                pair_id=None,
                windows=(TimeWindow(now_s, 17 * H),),
                skills=frozenset(),
                priority=5,
                demand=Load(items=1, weight_g=700),
                requested_at=None,
            )
        )
    return tuple(out)


def changes_for(day: DayPlan, states: dict[str, CourierState]) -> tuple[DayChanges, set[str]]:
    """Return the day's changes and the couriers they touch.

    20 urgent jobs, the two busiest remaining rounds stop, one road is closed.
    """
    remaining = {
        r.courier_id: [
            j for j in r.job_ids if all(p.job_id != j for p in states[r.courier_id].stops)
        ]
        for r in day.plan.routes
    }
    out = sorted(remaining, key=lambda c: -len(remaining[c]))[:2]
    # Close the road at a stop still to come on the third busiest round (a landslide).
    third = sorted(remaining, key=lambda c: -len(remaining[c]))[2]
    target = day.problem.job_by_id()[remaining[third][len(remaining[third]) // 2]]
    closure = Closure("bench-landslide", geometry=Point(target.lon, target.lat).buffer(0.003))
    changes = DayChanges(
        now_s=NOW_S,
        new_jobs=urgent_jobs(day, 20, NOW_S),
        unavailable=dict.fromkeys(out, NOW_S),
        closures=(closure,),
    )
    return changes, {*out, third}


#: Reasons that say no courier at all can serve the job any more (its window has passed, its
#: pickup failed): losing it is the day's doing, not the re-plan's.
NOBODY_CAN = frozenset({"no_feasible_window", "pair_incomplete", "unreachable"})


def stability(day: DayPlan, result: Replan, touched: set[str]) -> dict[str, float]:
    """Share of the remaining jobs of untouched couriers that keep their courier.

    ``untouched`` leaves out the couriers the changes hit (stopped, their road closed) and
    those the re-plan gave a new job; ``others`` counts every courier not hit; ``servable``
    is ``untouched`` without the jobs nobody can serve any more (:data:`NOBODY_CAN`).
    """
    diff = {c.job_id: c for c in result.changes}
    frozen = {j for ids in result.frozen.values() for j in ids}
    receivers = {c.after for c in result.changes if c.kind in ("added", "moved")}
    counts = {"untouched": [0, 0], "others": [0, 0], "servable": [0, 0]}
    for r in day.plan.routes:
        if r.courier_id in touched:
            continue
        for j in r.job_ids:
            if j in frozen or j not in diff:
                continue
            keep = int(diff[j].after == r.courier_id)
            counts["others"][0] += keep
            counts["others"][1] += 1
            if r.courier_id in receivers:
                continue
            counts["untouched"][0] += keep
            counts["untouched"][1] += 1
            if diff[j].reason not in NOBODY_CAN:
                counts["servable"][0] += keep
                counts["servable"][1] += 1
    return {k: round(a / max(1, b), 4) for k, (a, b) in counts.items()}


def eta_moves(result: Replan, touched: set[str]) -> dict[str, float]:
    """How far the re-plan moved the times of jobs that keep their untouched courier.

    ``median_min``: median absolute change of the planned start, minutes; ``over_30_min``:
    share moved by more than the default promise slack (30 minutes).
    """
    frozen = {j for ids in result.frozen.values() for j in ids}
    moves = [
        abs(c.eta_after_s - c.eta_before_s)
        for c in result.changes
        if c.kind == "kept"
        and c.before not in touched
        and c.job_id not in frozen
        and c.eta_after_s is not None
        and c.eta_before_s is not None
    ]
    if not moves:
        return {"jobs": 0, "median_min": 0.0, "over_30_min": 0.0}
    return {
        "jobs": len(moves),
        "median_min": round(statistics.median(moves) / 60, 1),
        "over_30_min": round(sum(m > 1800 for m in moves) / len(moves), 4),
    }


def served(result: Replan) -> int:
    """Jobs done or on a remaining round."""
    return sum(len(r.stops) for r in result.remaining.routes) + sum(
        len(v) for v in result.frozen.values()
    )


def run_day(name: str, args: argparse.Namespace) -> dict[str, Any]:
    nodes, n_jobs, n_couriers, morning_s, limit_s = DAYS[name]
    cache = args.cache_dir / f"province-{nodes}-seed{args.seed}.npz"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        compact_graph(make_province(nodes, seed=args.seed).graph).save(cache)
    province = make_province(nodes, seed=args.seed)
    scenario = make_day(province, n_jobs=n_jobs, n_couriers=n_couriers, seed=args.seed)
    graph = load_compact(cache)
    morning = plan_day(
        scenario.problem,
        graph,
        zones=province.zones,
        closures=scenario.closures,
        options=PlanOptions(time_limit_s=morning_s, workers=2, geometry=False),
    )
    states, served_share = live_states(morning, NOW_S)
    changes, touched = changes_for(morning, states)
    rows: dict[str, Any] = {
        "day": name,
        "jobs": n_jobs,
        "couriers": n_couriers,
        "served_by_11": served_share,
    }
    modes = () if args.suggestions_only else (("replan", True), ("scratch", False))
    for mode, keep in modes:
        c0, t0 = cpu_s(), time.perf_counter()
        result = replan(
            morning.problem,
            morning.plan,
            states,
            changes,
            graph,
            closures=scenario.closures,
            options=ReplanOptions(
                time_limit_s=limit_s, workers=2, seed=args.seed, keep_rounds=keep
            ),
        )
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        rows[mode] = {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "served": served(result),
            "unassigned": len(result.remaining.unassigned),
            "stability": stability(morning, result, touched),
            "eta_moves": eta_moves(result, touched),
            "violations": len(result.violations),
            "violation_details": [str(v) for v in result.violations[:20]],
            "diff": result.diff()["counts"],
            "engines": sorted({str(e) for e in result.stats["engines"]}),
        }
    # Urgent-job suggestions with the service's matrix function.
    network = Network(graph)
    network.warm()
    latencies, cpu_used = [], []
    for k in range(args.suggestions):
        (job,) = urgent_jobs(morning, 1, NOW_S)
        near = morning.problem.jobs[(k * 13) % len(morning.problem.jobs)]
        job = replace(
            job,
            job_id=f"ASK-{k}",
            lon=near.lon + 0.001,
            lat=near.lat + 0.0005,
            kind="pickup" if k % 2 else "delivery",
        )
        c0, t0 = cpu_s(), time.perf_counter()
        suggest_insertions(
            morning.problem,
            morning.plan,
            states,
            NOW_S,
            job,
            network.travel_matrix,
            round_matrix=None if args.full_matrix else network.round_matrix,
        )
        latencies.append(time.perf_counter() - t0)
        cpu_used.append(cpu_s() - c0)
    latencies.sort()
    cpu_used.sort()
    rows["suggest_ms"] = {
        "median": round(1000 * statistics.median(latencies), 1),
        "p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        "max": round(1000 * latencies[-1], 1),
        "calls": len(latencies),
        # CPU of the call (one thread): what it costs on a quiet machine
        "cpu_median": round(1000 * statistics.median(cpu_used), 1),
        "cpu_p95": round(1000 * cpu_used[int(0.95 * (len(cpu_used) - 1))], 1),
    }
    rows["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| day | mode | wall s | CPU s | served | unassigned | stability: untouched / servable / all others | kept jobs' start moved: median / > 30 min | violations | served by 11:00 |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        for mode in ("replan", "scratch"):
            if mode not in r:
                continue
            m = r[mode]
            lines.append(
                f"| {r['day']} ({r['jobs']} jobs) | {mode} | {m['wall_s']} | {m['cpu_s']} | {m['served']} | "
                f"{m['unassigned']} | {100 * m['stability']['untouched']:.1f} % / {100 * m['stability']['servable']:.1f} % / {100 * m['stability']['others']:.1f} % | {m['eta_moves']['median_min']} min / {100 * m['eta_moves']['over_30_min']:.1f} % | {m['violations']} | {100 * r['served_by_11']:.0f} % |"
            )
    lines.append("")
    lines.append(
        "| day | suggestion calls | median ms | p95 ms | max ms | CPU median ms | CPU p95 ms |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["suggest_ms"]
        lines.append(
            f"| {r['day']} | {s['calls']} | {s['median']} | {s['p95']} | {s['max']} | "
            f"{s['cpu_median']} | {s['cpu_p95']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", default="demo,2000", help="comma-separated: demo, 2000")
    parser.add_argument("--suggestions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--suggestions-only",
        action="store_true",
        help="skip the re-plan and scratch modes (time only the urgent-job suggestions)",
    )
    parser.add_argument(
        "--full-matrix",
        action="store_true",
        help="suggestions build each round's matrix per call (no pinned rounds), as before",
    )
    args = parser.parse_args()
    rows = [run_day(name, args) for name in args.days.split(",")]
    print(table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
