from __future__ import annotations

import json
from datetime import date, datetime

from routing.kpi import plan_kpi
from routing.model import Problem
from routing.params import SolverParams
from routing.solver import solve
from tests.unit.routing.helpers import H, courier, depot, job, matrices


def test_kpis_add_up_on_a_solved_plan() -> None:
    """Plan KPIs are sums of route KPIs; a checked plan is fully on time; JSON-ready."""
    jobs = (
        job("a", 1, 0, windows=((8 * H, 9 * H),), requested_at=datetime(2026, 11, 27, 8, 0)),
        job("b", 2, 1, windows=((9 * H, 10 * H),)),
        job("c", -1, 2),
        job("x", 1, 1, windows=((5 * H, 5 * H + 60),)),  # impossible
    )
    problem = Problem((depot(),), (courier("c0"), courier("c1")), jobs, day=date(2026, 11, 28))
    dur, dist = matrices(problem)
    plan = solve(problem, dur, dist, params=SolverParams(time_limit_s=0.3))
    k = plan_kpi(problem, plan)
    assert k.jobs_total == 4
    assert k.jobs_served == 3
    assert k.jobs_unassigned == 1
    assert k.unassigned_by_reason == {"no_feasible_window": 1}
    assert k.distance_m == sum(r.distance_m for r in k.routes) == plan.distance_m
    assert k.on_time_share == 1.0
    assert k.lateness_s == 0
    assert 0 < k.utilisation <= 1
    assert k.mean_request_to_service_s is not None
    assert k.mean_request_to_service_s >= 24 * H  # requested the day before
    json.dumps(k.to_dict())
