"""Day close rules: outcomes, carry-over by reason, attempts, return after the limit, pairs, days."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from routing.clock import LOCAL_TZ
from routing.close import (
    DEFAULT_RULES,
    CarryRules,
    DayJob,
    JobHistory,
    carried_jobs,
    close_jobs,
    decide,
    next_working_day,
    revise,
    rules_from_json,
    rules_to_json,
)
from routing.errors import InputError
from routing.model import Job, Load, TimeWindow
from routing.vocabulary import CarryAction, CloseOutcome, LateResult

FRIDAY = date(2026, 11, 27)
SATURDAY = date(2026, 11, 28)
MONDAY = date(2026, 11, 30)
ASKED = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)


def job(job_id: str = "J1", **kw: object) -> Job:
    base = Job(
        job_id=job_id,
        kind="delivery",
        lon=108.0,
        lat=14.35,
        windows=(TimeWindow(7 * 3600, 17 * 3600),),
        service_s=300,
        requested_at=ASKED,
        category="result_return",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_completed_counts_an_attempt_and_stays_done() -> None:
    """A completed stop is an attempt, goes nowhere, and keeps the first request time."""
    out = decide(DayJob(job(), "completed"), day=FRIDAY, history=JobHistory(1, ASKED))
    assert (out.outcome, out.action, out.attempts, out.carried_to) == (
        CloseOutcome.COMPLETED,
        CarryAction.DONE,
        2,
        None,
    )
    assert out.first_requested_at == ASKED


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        ("nobody_home", CarryAction.NEXT_DAY),
        ("wrong_address", CarryAction.HOLD),
        ("refused", CarryAction.RETURN),
    ],
)
def test_failed_job_goes_where_its_reason_says(reason: str, action: CarryAction) -> None:
    """By default nobody_home carries to the next working day, wrong_address is held, refused returns."""
    out = decide(DayJob(job(), "failed", reason), day=FRIDAY)
    assert out.outcome == CloseOutcome.FAILED
    assert out.action == action
    assert out.attempts == 1
    assert out.fail_reason == reason
    assert out.carried_to == (SATURDAY if action == CarryAction.NEXT_DAY else None)
    assert out.notify == (action == CarryAction.RETURN)


def test_not_attempted_keeps_its_count_and_carries() -> None:
    """A stop never reported (planned or only arrived) or a job on no round is not an attempt."""
    for status in ("planned", "arrived", None):
        out = decide(DayJob(job(), status), day=FRIDAY, history=JobHistory(2, ASKED))
        assert out.outcome == CloseOutcome.NOT_ATTEMPTED
        assert out.attempts == 2
        assert out.action == CarryAction.NEXT_DAY
        assert out.fail_reason == "out_of_time"


def test_a_job_not_attempted_keeps_the_reason_of_its_last_failure() -> None:
    """Failed (nobody home) one day, not reached the next: carried with the failure's reason.

    The day's outcome says it was not attempted; the count stays, and the office's rule for
    jobs not attempted, not the old reason's, decides where it goes.
    """
    rules = CarryRules(by_reason={"nobody_home": CarryAction.HOLD})
    first = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY)
    history = JobHistory(first.attempts, first.first_requested_at, first.fail_reason)
    out = decide(DayJob(job(), "planned"), day=FRIDAY, history=history, rules=rules)
    assert out.outcome == CloseOutcome.NOT_ATTEMPTED
    assert out.attempts == 1
    assert out.fail_reason == "nobody_home"
    assert out.action == CarryAction.NEXT_DAY


def test_third_failed_attempt_returns_to_the_office_whatever_the_reason() -> None:
    """After max_attempts failures the job returns (with a notice), even for nobody_home."""
    second = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY, history=JobHistory(1))
    assert (second.attempts, second.action) == (2, CarryAction.NEXT_DAY)
    third = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY, history=JobHistory(2))
    assert (third.attempts, third.action, third.notify) == (3, CarryAction.RETURN, True)
    assert third.carried_to is None
    strict = CarryRules(max_attempts=1)
    assert decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY, rules=strict).action == (
        CarryAction.RETURN
    )


def test_office_rules_override_the_defaults() -> None:
    """An office may hold nobody_home and carry wrong_address; unknown reasons take its default."""
    rules = CarryRules(
        by_reason={"nobody_home": CarryAction.HOLD, "wrong_address": CarryAction.NEXT_DAY},
        default=CarryAction.RETURN,
    )
    assert rules.action_for("nobody_home") == CarryAction.HOLD
    assert rules.action_for("wrong_address") == CarryAction.NEXT_DAY
    assert rules.action_for("road_closed") == CarryAction.RETURN
    items = [
        DayJob(job("A", depot_id="D1"), "failed", "nobody_home"),
        DayJob(job("B"), "failed", "nobody_home"),
    ]
    out = close_jobs(FRIDAY, items, rules_for={"D1": rules})
    assert [o.action for o in out] == [CarryAction.HOLD, CarryAction.NEXT_DAY]


def test_next_working_day_skips_sundays_and_holidays() -> None:
    """Saturday works by default; Sunday does not; a holiday is skipped; workdays are the office's."""
    assert next_working_day(FRIDAY) == SATURDAY
    assert next_working_day(SATURDAY) == MONDAY
    holiday = CarryRules(holidays=frozenset({MONDAY}))
    assert next_working_day(SATURDAY, rules=holiday) == date(2026, 12, 1)
    weekdays = CarryRules(workdays=frozenset(range(5)))
    assert next_working_day(FRIDAY, rules=weekdays) == MONDAY


def test_pair_delivery_follows_its_pickup_until_the_pickup_is_done() -> None:
    """A failed pickup takes its delivery along; after a completed pickup the delivery goes alone."""
    pickup = job("P", kind="pickup", pair_id="X", category="dossier_transfer")
    delivery = job("D", pair_id="X", category="dossier_transfer")
    held = close_jobs(
        FRIDAY,
        [DayJob(pickup, "failed", "wrong_address"), DayJob(delivery, "failed", "pickup_failed")],
    )
    assert [o.action for o in held] == [CarryAction.HOLD, CarryAction.HOLD]
    assert carried_jobs([DayJob(pickup, "failed"), DayJob(delivery, "failed")], held) == [
        pickup,
        delivery,
    ]
    items = [DayJob(pickup, "completed"), DayJob(delivery, "planned")]
    alone = close_jobs(FRIDAY, items)
    assert [o.action for o in alone] == [CarryAction.DONE, CarryAction.NEXT_DAY]
    assert carried_jobs(items, alone)[1] == replace(delivery, pair_id=None)


def test_a_pickup_whose_delivery_was_reported_first_is_carried_on_its_own() -> None:
    """The phone reported the delivery completed and the pickup never: taps out of order.

    The pickup goes to the next day as a plain pickup; with its pair id the next day would
    hold half a pair, which no day can plan.
    """
    pickup = job("P", kind="pickup", pair_id="X", category="dossier_transfer")
    delivery = job("D", pair_id="X", category="dossier_transfer")
    items = [DayJob(pickup, "planned"), DayJob(delivery, "completed")]
    out = close_jobs(FRIDAY, items)
    assert [o.action for o in out] == [CarryAction.NEXT_DAY, CarryAction.DONE]
    later = carried_jobs(items, out)
    assert later[0] == replace(pickup, pair_id=None)
    assert out[1].carried_to is None


def test_rules_round_trip_and_refuse_bad_values() -> None:
    """Stored rules read back equal; an unknown reason, action or limit is refused by name."""
    rules = CarryRules(max_attempts=4, holidays=frozenset({MONDAY}))
    assert rules_from_json(rules_to_json(rules)) == rules
    assert rules_from_json({}) == DEFAULT_RULES
    with pytest.raises(InputError) as e:
        CarryRules(by_reason={"lost_dog": CarryAction.HOLD})
    assert e.value.column == "by_reason.lost_dog"
    with pytest.raises(InputError) as e:
        CarryRules(max_attempts=0)
    assert e.value.column == "max_attempts"
    with pytest.raises(InputError) as e:
        CarryRules(by_reason={"refused": CarryAction.DONE})
    assert e.value.column == "by_reason.refused"
    with pytest.raises(InputError):
        rules_from_json({"default": "somewhere"})


def test_payout_cash_does_not_change_carry_over() -> None:
    """A pension payout carries like any delivery (its cash is the next day's to issue)."""
    payout = job("PAY", category="pension_payout", demand=Load(cash_vnd=1_500_000))
    out = close_jobs(FRIDAY, [DayJob(payout, "failed", "nobody_home")])
    assert out[0].carried_to == SATURDAY
    assert carried_jobs([DayJob(payout, "failed", "nobody_home")], out)[0].payout_vnd == 1_500_000


def test_a_late_completion_takes_the_carried_job_off_an_unpublished_day() -> None:
    """Closed not attempted (carried to Saturday), then completed: done, off Saturday, no flag."""
    before = decide(DayJob(job(), "planned"), day=FRIDAY)
    rev = revise(before, decide(DayJob(job(), "completed"), day=FRIDAY), published=set())
    assert rev is not None
    assert (rev.closed.outcome, rev.closed.action, rev.closed.attempts) == (
        CloseOutcome.COMPLETED,
        CarryAction.DONE,
        1,
    )
    assert (rev.withdraw_from, rev.carry_to, rev.flag, rev.notify) == (SATURDAY, None, None, False)
    assert rev.closed.carried_to is None


def test_a_late_completion_on_a_published_day_stays_there_flagged() -> None:
    """When Saturday's plan is out, the job stays on its round and the dispatcher is told."""
    before = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY)
    rev = revise(before, decide(DayJob(job(), "completed"), day=FRIDAY), published={SATURDAY})
    assert rev is not None
    assert rev.closed.outcome == CloseOutcome.COMPLETED
    assert rev.closed.carried_to == SATURDAY
    assert (rev.withdraw_from, rev.flag) == (None, LateResult.ON_PUBLISHED_DAY)


def test_a_late_failure_updates_the_reason_and_follows_its_rule() -> None:
    """wrong_address (held) then nobody_home: carried on; onto a published day it stays held."""
    before = decide(DayJob(job(), "failed", "wrong_address"), day=FRIDAY)
    after = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY)
    rev = revise(before, after, published=set())
    assert rev is not None
    assert (rev.closed.fail_reason, rev.closed.attempts) == ("nobody_home", 1)
    assert (rev.carry_to, rev.closed.carried_to, rev.flag) == (SATURDAY, SATURDAY, None)
    held = revise(before, after, published={SATURDAY})
    assert held is not None
    assert (held.closed.action, held.closed.carried_to, held.carry_to) == (
        CarryAction.HOLD,
        None,
        None,
    )
    assert held.flag == LateResult.HELD_NOT_CARRIED
    # Carried already (nobody_home), then another reason with the same rule: only the reason.
    moved = revise(
        after, decide(DayJob(job(), "failed", "rescheduled"), day=FRIDAY), published=set()
    )
    assert moved is not None
    assert (moved.closed.fail_reason, moved.carry_to, moved.withdraw_from) == (
        "rescheduled",
        None,
        None,
    )


def test_a_late_last_failure_returns_the_job_and_a_late_success_unreturns_it() -> None:
    """The failure that reaches the limit returns the job (citizen told); a return undone is flagged."""
    before = decide(DayJob(job(), "planned"), day=FRIDAY, history=JobHistory(2))
    failed = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY, history=JobHistory(2))
    rev = revise(before, failed, published=set())
    assert rev is not None
    assert (rev.closed.action, rev.withdraw_from, rev.notify) == (
        CarryAction.RETURN,
        SATURDAY,
        True,
    )
    done = decide(DayJob(job(), "completed"), day=FRIDAY, history=JobHistory(2))
    back = revise(rev.closed, done, published=set())
    assert back is not None
    assert (back.closed.action, back.flag, back.notify) == (
        CarryAction.DONE,
        LateResult.WAS_RETURNED,
        False,
    )


def test_a_result_the_close_already_counted_changes_nothing() -> None:
    """An arrival, or the same failure sent again, after the close: no revision."""
    before = decide(DayJob(job(), "failed", "nobody_home"), day=FRIDAY)
    assert revise(before, before, published=set()) is None
    arrived = decide(DayJob(job(), "planned"), day=FRIDAY)
    assert revise(arrived, decide(DayJob(job(), "arrived"), day=FRIDAY), published=set()) is None
