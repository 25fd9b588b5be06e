"""Simulated days: seeded, one terminal outcome per stop, ordered events, reasons and proof."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from routing import simulate as sim_mod
from routing.planner import DayPlan, PlanOptions, plan_day
from routing.reports import EVENT_COLUMNS, MONTH_COLUMNS, events_frame, load_frame
from routing.scenario import make_day
from routing.simulate import (
    RETRY_REASONS,
    SimulatedDay,
    SimulationParams,
    failure_probability,
    simulate_day,
    simulate_month,
    simulate_plan,
    working_days,
)
from routing.vocabulary import FailReason

if TYPE_CHECKING:
    from pathlib import Path

    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince

H = 3600
SEEDS = range(25)


@pytest.fixture(scope="module")
def day_plan(province: SyntheticProvince, province_graph: CompactGraph) -> DayPlan:
    scenario = make_day(province, n_jobs=70, n_couriers=10, seed=5, day=date(2026, 11, 30))
    options = PlanOptions(time_limit_s=1, workers=2, max_jobs_per_piece=40, geometry=False)
    return plan_day(
        scenario.problem,
        province_graph,
        zones=province.zones,
        closures=scenario.closures,
        options=options,
    )


@pytest.fixture(scope="module")
def many_days(day_plan: DayPlan) -> list[SimulatedDay]:
    return [simulate_day(day_plan, seed=s) for s in SEEDS]


def test_same_seed_same_day_other_seed_other_day(day_plan: DayPlan) -> None:
    """The simulation is a function of the plan and the seed; another seed changes the times."""
    a = simulate_day(day_plan, seed=11)
    b = simulate_day(day_plan, seed=11)
    c = simulate_day(day_plan, seed=12)
    assert a == b
    assert [o.finished_s for o in a.outcomes] != [o.finished_s for o in c.outcomes]


def test_every_planned_stop_gets_exactly_one_terminal_outcome(
    day_plan: DayPlan, many_days: list[SimulatedDay]
) -> None:
    """Each routed job has one outcome and one terminal event; unassigned jobs get none."""
    routed = Counter(day_plan.plan.assigned_job_ids())
    assert routed
    for sim in many_days:
        assert Counter(o.job_id for o in sim.outcomes) == routed
        terminal = Counter(e.job_id for e in sim.events if e.event in {"completed", "failed"})
        assert terminal == routed
        arrived = Counter(e.job_id for e in sim.events if e.event == "arrived")
        assert max(arrived.values(), default=0) <= 1
        assert sim.unassigned == day_plan.plan.unassigned


def test_events_are_ordered_and_completion_follows_arrival(
    many_days: list[SimulatedDay],
) -> None:
    """Arrived precedes the terminal event; knock after arrival; times never go back on a route."""
    for sim in many_days:
        by_job: dict[str, list[sim_mod.StopEvent]] = {}
        for e in sim.events:
            by_job.setdefault(e.job_id, []).append(e)
        for events in by_job.values():
            kinds = [e.event for e in events]
            assert kinds in (["arrived", "completed"], ["arrived", "failed"], ["failed"])
            assert events[-1].at_s >= events[0].at_s
        last: dict[str, int] = {}
        for o in sim.outcomes:
            if o.outcome == "completed":
                assert o.arrived_s is not None
                assert o.service_start_s is not None
                assert o.arrived_s <= o.service_start_s <= o.finished_s
            if o.arrived_s is None:
                assert o.outcome == "failed"
                assert o.fail_reason in {"road_closed", "pickup_failed", "out_of_time"}
            assert o.finished_s >= last.get(o.courier_id, 0)
            last[o.courier_id] = o.finished_s


def test_failure_reasons_come_from_the_allowed_set(many_days: list[SimulatedDay]) -> None:
    """Failed stops carry a known reason (and nobody-home is among them); completed ones none."""
    seen: Counter[str] = Counter()
    for sim in many_days:
        for o in sim.outcomes:
            if o.outcome == "failed":
                assert o.fail_reason in set(FailReason)
                seen[str(o.fail_reason)] += 1
            else:
                assert o.outcome == "completed"
                assert o.fail_reason is None
        for e in sim.events:
            assert (e.reason is not None) == (e.event == "failed")
    assert seen["nobody_home"] > 0
    assert set(seen) <= set(FailReason)


def test_proof_is_recorded_exactly_where_required(
    day_plan: DayPlan, many_days: list[SimulatedDay]
) -> None:
    """ID check on completed id_check jobs, cash on completed payouts, a signer on every completion."""
    jobs = day_plan.problem.job_by_id()
    cash_jobs = id_jobs = 0
    for sim in many_days:
        completed_events = {e.job_id: e for e in sim.events if e.event == "completed"}
        for o in sim.outcomes:
            job = jobs[o.job_id]
            done = o.outcome == "completed"
            assert (o.id_checked is True) == (done and job.needs_id_check)
            assert o.id_checked in (True, None)
            if done and job.is_payout:
                assert o.cash_paid_vnd == job.demand.cash_vnd > 0
                cash_jobs += 1
            else:
                assert o.cash_paid_vnd is None
            id_jobs += int(done and job.needs_id_check)
            assert bool(o.recipient_name) == done
            if done:
                e = completed_events[o.job_id]
                assert (e.recipient_name, e.id_checked, e.cash_paid_vnd) == (
                    o.recipient_name,
                    o.id_checked,
                    o.cash_paid_vnd,
                )
    assert cash_jobs > 0
    assert id_jobs > 0


def test_noise_free_simulation_follows_the_plan(day_plan: DayPlan) -> None:
    """Without noise, rain, incidents or closures, couriers arrive exactly as planned until a failure."""
    calm = SimulationParams(
        pace_sigma=0,
        leg_sigma=0,
        rough_leg_sigma=0,
        rough_leg_factor=1,
        incident_prob=0,
        service_sigma=0,
        road_closed_prob_dry=0,
    )
    for piece in day_plan.pieces:
        sim = simulate_plan(
            piece.piece.problem,
            piece.plan,
            seed=1,
            distances=piece.distances,
            rain=False,
            params=calm,
        )
        assert not sim.rain
        failed_before: set[str] = set()
        for o in sim.outcomes:
            if o.arrived_s is not None:
                if o.courier_id in failed_before:
                    assert o.arrived_s <= o.planned_arrival_s
                else:
                    assert o.arrived_s == o.planned_arrival_s
            if o.outcome == "failed":
                failed_before.add(o.courier_id)


def test_straight_line_distances_work_without_matrices(day_plan: DayPlan) -> None:
    """simulate_plan needs only a problem and a plan; the result has one outcome per stop."""
    piece = day_plan.pieces[0]
    sim = simulate_plan(piece.piece.problem, piece.plan, seed=4)
    assert len(sim.outcomes) == sum(len(r.stops) for r in piece.plan.routes)


def test_rain_makes_arrivals_later_on_average(day_plan: DayPlan) -> None:
    """Over several seeds the mean arrival delay is larger on rain days than on dry ones."""

    def mean_delay(rain: bool) -> float:
        delays = [
            o.arrival_delay_s
            for s in range(10)
            for o in simulate_day(day_plan, seed=s, rain=rain).outcomes
            if o.arrival_delay_s is not None
        ]
        return float(np.mean(delays))

    assert mean_delay(True) > mean_delay(False)


def test_delays_spread_along_the_route(many_days: list[SimulatedDay]) -> None:
    """Arrival delays vary more at the end of rounds than at their start (noise accumulates)."""
    early: list[int] = []
    late: list[int] = []
    for sim in many_days:
        length = Counter(o.courier_id for o in sim.outcomes)
        for o in sim.outcomes:
            if o.arrival_delay_s is None or length[o.courier_id] < 4:
                continue
            if o.seq <= length[o.courier_id] // 3:
                early.append(o.arrival_delay_s)
            elif o.seq > 2 * length[o.courier_id] // 3:
                late.append(o.arrival_delay_s)
    assert early
    assert late
    assert np.std(late) > np.std(early)


def test_failed_pickup_cancels_its_delivery(
    day_plan: DayPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the pickup of a pair fails, its delivery fails with pickup_failed and is never reached."""
    monkeypatch.setitem(sim_mod.BASE_FAIL_PROB, "dossier_transfer", 1.0)
    jobs = day_plan.problem.job_by_id()
    pairs = [j for j in day_plan.plan.assigned_job_ids() if jobs[j].pair_id is not None]
    if not pairs:
        pytest.skip("no pair routed in this plan")
    checked = 0
    for s in range(5):
        sim = simulate_day(day_plan, seed=s)
        outcome = {o.job_id: o for o in sim.outcomes}
        for o in sim.outcomes:
            job = jobs[o.job_id]
            if job.pair_id is None or job.kind != "pickup" or o.outcome != "failed":
                continue
            partner = next(
                j
                for j in day_plan.problem.jobs
                if j.pair_id == job.pair_id and j.kind == "delivery"
            )
            other = outcome[partner.job_id]
            assert other.outcome == "failed"
            assert other.fail_reason == "pickup_failed"
            assert other.arrived_s is None
            checked += 1
    assert checked > 0


def test_failure_probability_follows_the_documented_model(day_plan: DayPlan) -> None:
    """Payouts fail less than EMS; lunch, afternoon and rain raise the risk; never above 0.9."""
    jobs = day_plan.problem.jobs
    ems = next(j for j in jobs if j.category == "ems_delivery")
    pension = next(j for j in jobs if j.category == "pension_payout")
    ems = replace(ems, windows=pension.windows)
    morning, lunch, afternoon = 9 * H, 12 * H, 15 * H
    assert failure_probability(pension, morning, rain=False) < failure_probability(
        ems, morning, rain=False
    )
    for job in (ems, pension):
        assert failure_probability(job, lunch, rain=False) > failure_probability(
            job, morning, rain=False
        )
        assert failure_probability(job, morning, rain=True) > failure_probability(
            job, morning, rain=False
        )
    assert failure_probability(ems, afternoon, rain=False) > failure_probability(
        ems, morning, rain=False
    )
    for job in jobs:
        for t in range(6 * H, 19 * H, 1800):
            assert 0.0 <= failure_probability(job, t, rain=True) <= 0.9


def test_events_frame_has_one_row_per_event(day_plan: DayPlan) -> None:
    """events_frame keeps every event, with local datetimes on the plan day."""
    sim = simulate_day(day_plan, seed=2)
    frame = events_frame(sim)
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert len(frame) == len(sim.events)
    assert all(isinstance(t, datetime) and t.date() == sim.day for t in frame["at"])


def test_working_days_skip_sundays() -> None:
    """A month of working days runs Monday to Saturday."""
    days = working_days(date(2026, 11, 1), 26)  # 1 November 2026 is a Sunday
    assert len(days) == 26
    assert all(d.weekday() != 6 for d in days)
    assert days[0] == date(2026, 11, 2)
    assert days == sorted(set(days))


@pytest.fixture(scope="module")
def month(
    province: SyntheticProvince,
    province_graph: CompactGraph,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, Path]:
    cache = tmp_path_factory.mktemp("month") / "month.csv"
    df = simulate_month(
        province,
        days=3,
        jobs_per_day=40,
        seed=2,
        time_limit_s=0.3,
        graph=province_graph,
        cache_path=cache,
    )
    return df, cache


def test_month_table_is_tidy_and_consistent(month: tuple[pd.DataFrame, Path]) -> None:
    """One row per job and day, known outcomes, times in order, derived columns agree."""
    df, _ = month
    assert list(df.columns) == list(MONTH_COLUMNS)
    assert df["day"].nunique() == 3
    assert not df.duplicated(["day", "job_id"]).any()
    assert set(df["outcome"]) <= {"completed", "failed", "unassigned"}
    done = df[df["outcome"] == "completed"]
    assert len(done) > 0
    assert (done["completed_at"] >= done["actual_arrival"]).all()
    assert (done["request_to_completion_h"] > 0).all()
    hours = (done["completed_at"] - done["requested_at"]).dt.total_seconds() / 3600
    assert np.allclose(hours, done["request_to_completion_h"])
    assert (df.loc[df["on_time"], "outcome"] == "completed").all()
    assert df.loc[df["outcome"] != "completed", "request_to_completion_h"].isna().all()
    failed = df[df["outcome"] == "failed"]
    assert failed["fail_reason"].isin(list(FailReason)).all()
    left = df[df["outcome"] == "unassigned"]
    assert left["unassigned_reason"].notna().all()
    assert left["courier_id"].isna().all()
    assert df["depot_id"].notna().all()
    assert (df["window_start"] <= df["window_end"]).all()


def test_month_retries_only_jobs_that_can_be_retried(month: tuple[pd.DataFrame, Path]) -> None:
    """A second attempt follows a retryable failure (or lack of time) on the previous working day."""
    df, _ = month
    days = sorted(df["day"].unique())
    for _, row in df[df["attempt"] > 1].iterrows():
        before = df[(df["job_id"] == row["job_id"]) & (df["attempt"] == row["attempt"] - 1)]
        assert len(before) == 1
        prev = before.iloc[0]
        assert days.index(prev["day"]) == days.index(row["day"]) - 1
        assert prev["fail_reason"] in RETRY_REASONS or prev["unassigned_reason"] in RETRY_REASONS


def test_month_cache_round_trips(
    province: SyntheticProvince, month: tuple[pd.DataFrame, Path]
) -> None:
    """A cached month loads back identical, types included, without planning again."""
    df, cache = month
    assert cache.is_file()
    pd.testing.assert_frame_equal(load_frame(cache), df)
    again = simulate_month(province, days=3, jobs_per_day=40, seed=2, cache_path=cache)
    pd.testing.assert_frame_equal(again, df)
