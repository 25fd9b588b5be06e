"""Working-time balance among a post office's couriers: the option and the figures."""

from __future__ import annotations

import pytest

from routing.check import check_plan
from routing.errors import InputError
from routing.model import Load, Problem
from routing.params import SolverParams
from routing.plan import Plan, office_balance
from routing.planner import PlanOptions
from routing.solver import solve
from tests.unit.routing.helpers import H, courier, depot, job, matrices


def uneven_day() -> Problem:
    """One office, two couriers: ten long visits east fill one courier (10 items), one west.

    Serving the east cluster alone makes one round of about five hours beside one of
    minutes; sharing it costs a second ride east.
    """
    jobs = [
        job(
            f"e{i}", 6.0 + 0.3 * (i % 3), 0.3 * (i // 3), service_s=1800, windows=((7 * H, 17 * H),)
        )
        for i in range(10)
    ]
    jobs.append(job("w", -3.0, 0.0, service_s=300))
    cap = Load(items=10, weight_g=100_000, cash_vnd=0)
    return Problem(
        depots=(depot("D"),),
        couriers=(courier("c0", capacity=cap), courier("c1", capacity=cap)),
        jobs=tuple(jobs),
    )


def spread(plan: Plan) -> float:
    """Return the office's longest round over its mean round."""
    return plan.office_balance()["D"].ratio


def test_balance_evens_the_rounds_and_the_checker_finds_nothing() -> None:
    """With balance the longest round is far nearer the mean; every job still served, no violation."""
    problem = uneven_day()
    dur, dist = matrices(problem)
    base = SolverParams(time_limit_s=1.0, vehicle_fixed_cost=0)
    plain = solve(problem, dur, dist, params=base)
    balanced = solve(
        problem,
        dur,
        dist,
        params=SolverParams(
            time_limit_s=4.0, vehicle_fixed_cost=0, balance=True, balance_max_extra=1.0
        ),
    )
    for plan in (plain, balanced):
        assert check_plan(problem, plan, dur, dist) == []
        assert not plan.unassigned
    assert spread(plain) > 1.5  # the day is uneven as built
    assert spread(balanced) < 1.3
    assert spread(balanced) < spread(plain)
    assert balanced.stats["balance"] == "kept"
    # honest working times: with all-day windows a round never waits (leaves late enough)
    assert all(r.waiting_s == 0 for r in balanced.routes)


def test_an_even_day_is_left_to_the_plain_search() -> None:
    """Rounds already within the tolerance are not rebalanced (no extra cost asked)."""
    problem = uneven_day()
    dur, dist = matrices(problem)
    plan = solve(
        problem,
        dur,
        dist,
        params=SolverParams(time_limit_s=1.0, balance=True, balance_tolerance=10.0),
    )
    assert check_plan(problem, plan, dur, dist) == []
    assert "balance" not in plan.stats
    assert plan.stats["balance_ratio_before"] >= 1.0


def test_office_balance_figures() -> None:
    """Mean, longest and ratio per office; a round against its office's mean as a fraction."""
    figures = office_balance([("A", 4 * H), ("A", 6 * H), ("A", 5 * H), ("B", 2 * H)])
    a, b = figures["A"], figures["B"]
    assert (a.rounds, a.mean_working_s, a.max_working_s) == (3, 5 * H, 6 * H)
    assert a.ratio == pytest.approx(1.2)
    assert a.vs_mean(4 * H) == pytest.approx(-0.2)
    assert b.ratio == 1.0
    assert b.to_dict() == {
        "depot_id": "B",
        "rounds": 1,
        "mean_working_s": 2 * H,
        "max_working_s": 2 * H,
        "ratio": 1.0,
    }
    assert office_balance([]) == {}


def test_balance_is_on_for_post_office_days_only() -> None:
    """plan_day balances by default; the solver's own default (textbook benchmarks) does not."""
    assert PlanOptions().balance is True
    assert SolverParams().balance is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("balance_weight", 0),
        ("balance_tolerance", -0.1),
        ("balance_share", 1.0),
        ("balance_max_extra", -1),
    ],
)
def test_balance_parameters_are_validated(field: str, value: float) -> None:
    """Out-of-range balance parameters are refused, naming the field."""
    with pytest.raises(InputError) as err:
        SolverParams(**{field: value})  # type: ignore[arg-type]
    assert err.value.column == field
