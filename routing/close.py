"""Closing a day: how each job of the published plan ends, and where an unfinished one goes.

Pure rules, shared by the service and its tests. When the dispatcher closes a day, every job
of the published plan ends as ``completed``, ``failed`` or ``not_attempted`` (the courier never
reported a result, or the job was left off every round). A job that is not completed then
either becomes a job of the next working day (with its attempt count, the citizen's first
request time and the last failure reason), is held for the dispatcher, or goes back to the
post office, by rules each office can set (:class:`CarryRules`).

An **attempt** is a visit that ended completed or failed; a job never attempted that day keeps
its count.

A phone without signal may report after the close (:func:`revise`): a late completion takes a
carried job off the next day while that day is not published (else the dispatcher is told),
a late failure updates the attempts and the reason, and the job's fate follows the rules again. A job whose attempts reach ``max_attempts`` without success is returned to the post
office, whatever its reason, and the citizen is told (``ClosedJob.notify``).

A pickup-delivery pair moves as one: while the pickup is not completed, the delivery follows
the pickup's fate (same action, same day). Once the pickup is completed the item is at the post
office, so a delivery carried on alone becomes an ordinary delivery from the office
(:func:`carried_jobs`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from routing.errors import InputError
from routing.model import Job
from routing.vocabulary import CarryAction, CloseOutcome, FailReason, LateResult, StopStatus

#: Weekdays a post office works by default: Monday (0) to Saturday (5).
DEFAULT_WORKDAYS: frozenset[int] = frozenset(range(6))
#: What happens to a failed job by reason, unless an office says otherwise.
DEFAULT_BY_REASON: Mapping[str, CarryAction] = {
    FailReason.NOBODY_HOME: CarryAction.NEXT_DAY,
    FailReason.RESCHEDULED: CarryAction.NEXT_DAY,
    FailReason.ROAD_CLOSED: CarryAction.NEXT_DAY,
    FailReason.OUT_OF_TIME: CarryAction.NEXT_DAY,
    FailReason.PICKUP_FAILED: CarryAction.NEXT_DAY,
    FailReason.WRONG_ADDRESS: CarryAction.HOLD,
    FailReason.ID_MISMATCH: CarryAction.HOLD,
    FailReason.OTHER: CarryAction.HOLD,
    FailReason.REFUSED: CarryAction.RETURN,
}
#: Actions a rule may name (``done`` is only the fate of a completed job).
RULE_ACTIONS: frozenset[str] = frozenset(
    {CarryAction.NEXT_DAY, CarryAction.HOLD, CarryAction.RETURN}
)
MAX_ATTEMPTS_LIMIT = 20


def _bad(column: str, value: object, reason: str) -> InputError:
    return InputError(None, column, value, reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class CarryRules:
    """An office's rules for the jobs a closed day leaves unfinished.

    Parameters
    ----------
    by_reason
        Action per fail reason (:class:`~routing.vocabulary.FailReason` codes); a reason left
        out takes ``default``.
    default
        Action for a failure whose reason has no rule.
    not_attempted
        Action for a job the courier never reported on (or no round took).
    max_attempts
        After this many failed attempts the job goes back to the post office.
    workdays
        Weekdays the office works (Monday 0 .. Sunday 6).
    holidays
        Dates the office is closed.
    """

    by_reason: Mapping[str, CarryAction] = field(default_factory=lambda: dict(DEFAULT_BY_REASON))
    default: CarryAction = CarryAction.NEXT_DAY
    not_attempted: CarryAction = CarryAction.NEXT_DAY
    max_attempts: int = 3
    workdays: frozenset[int] = DEFAULT_WORKDAYS
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        for reason, action in self.by_reason.items():
            if reason not in FailReason.__members__.values():
                raise _bad(f"by_reason.{reason}", reason, "not a fail reason code")
            if action not in RULE_ACTIONS:
                raise _bad(f"by_reason.{reason}", action, f"must be one of {sorted(RULE_ACTIONS)}")
        for name in ("default", "not_attempted"):
            if getattr(self, name) not in RULE_ACTIONS:
                raise _bad(name, getattr(self, name), f"must be one of {sorted(RULE_ACTIONS)}")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise _bad(
                "max_attempts", self.max_attempts, f"must be between 1 and {MAX_ATTEMPTS_LIMIT}"
            )
        if not self.workdays or not self.workdays <= frozenset(range(7)):
            raise _bad("workdays", sorted(self.workdays), "weekdays 0 (Monday) to 6, at least one")

    def action_for(self, reason: str | None) -> CarryAction:
        """Return the action for a failure with ``reason`` (the default when it has no rule)."""
        return CarryAction(self.by_reason.get(reason or FailReason.OTHER, self.default))


DEFAULT_RULES = CarryRules()


def rules_to_json(rules: CarryRules) -> dict[str, Any]:
    """Return rules as stored and served."""
    return {
        "by_reason": {k: str(v) for k, v in sorted(rules.by_reason.items())},
        "default": str(rules.default),
        "not_attempted": str(rules.not_attempted),
        "max_attempts": rules.max_attempts,
        "workdays": sorted(rules.workdays),
        "holidays": sorted(d.isoformat() for d in rules.holidays),
    }


def rules_from_json(x: Mapping[str, Any]) -> CarryRules:
    """Rebuild rules from :func:`rules_to_json`; missing keys take the defaults.

    Raises
    ------
    InputError
        Naming the field that is not acceptable.
    """
    try:
        by_reason = {
            str(k): CarryAction(v) for k, v in dict(x.get("by_reason", DEFAULT_BY_REASON)).items()
        }
        default = CarryAction(x.get("default", CarryAction.NEXT_DAY))
        not_attempted = CarryAction(x.get("not_attempted", CarryAction.NEXT_DAY))
    except ValueError as e:
        raise _bad("by_reason", None, f"unknown action: {e}") from e
    holidays: set[date] = set()
    for value in x.get("holidays", ()):
        try:
            holidays.add(date.fromisoformat(str(value)))
        except ValueError as e:
            raise _bad("holidays", value, "dates as YYYY-MM-DD") from e
    return CarryRules(
        by_reason=by_reason,
        default=default,
        not_attempted=not_attempted,
        max_attempts=int(x.get("max_attempts", 3)),
        workdays=frozenset(int(d) for d in x.get("workdays", DEFAULT_WORKDAYS)),
        holidays=frozenset(holidays),
    )


def next_working_day(day: date, *, rules: CarryRules = DEFAULT_RULES) -> date:
    """Return the first day after ``day`` that is a workday of the office and not a holiday.

    Raises
    ------
    InputError
        If the office has no working day in the next year (every day a holiday).
    """
    for k in range(1, 367):
        candidate = day + timedelta(days=k)
        if candidate.weekday() in rules.workdays and candidate not in rules.holidays:
            return candidate
    raise _bad("holidays", len(rules.holidays), "no working day within a year")


def close_outcome(status: str | None) -> CloseOutcome:
    """Return how a stop ends at close from its status (``None``: on no round)."""
    if status == StopStatus.COMPLETED:
        return CloseOutcome.COMPLETED
    if status == StopStatus.FAILED:
        return CloseOutcome.FAILED
    return CloseOutcome.NOT_ATTEMPTED


@dataclass(frozen=True, slots=True)
class JobHistory:
    """What earlier closed days say of a job: attempts, first request, last failure's reason."""

    attempts: int = 0
    first_requested_at: datetime | None = None
    last_fail_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DayJob:
    """A job of the day being closed, with its stop's status and fail reason (None: no round).

    ``depot_id`` is the post office whose rules apply: its round's office, else the job's own.
    """

    job: Job
    status: str | None
    fail_reason: str | None = None
    depot_id: str | None = None

    @property
    def office(self) -> str | None:
        """Return the post office whose rules apply to the job."""
        return self.depot_id or self.job.depot_id


@dataclass(frozen=True, slots=True)
class ClosedJob:
    """How a job ended at close and where it goes.

    ``attempts`` counts every attempt up to and including this day; ``fail_reason`` is the last
    failure's reason (for a job not attempted this day, that of its last failed attempt, else
    ``out_of_time``); ``carried_to`` is the day the job
    becomes a job of (next-day action only); ``notify`` says the citizen must be told that the
    job went back to the post office.
    """

    job_id: str
    outcome: CloseOutcome
    attempts: int
    fail_reason: str | None
    first_requested_at: datetime | None
    action: CarryAction
    carried_to: date | None

    @property
    def notify(self) -> bool:
        """Whether the citizen is told (the job went back to the post office)."""
        return self.action == CarryAction.RETURN

    @property
    def attempted(self) -> bool:
        """Whether the courier made an attempt this day."""
        return self.outcome != CloseOutcome.NOT_ATTEMPTED


def decide(
    item: DayJob,
    *,
    day: date,
    history: JobHistory = JobHistory(),
    rules: CarryRules = DEFAULT_RULES,
) -> ClosedJob:
    """Return how one job ends at the close of ``day`` and where it goes (pairs aside)."""
    outcome = close_outcome(item.status)
    first = history.first_requested_at or item.job.requested_at
    attempts = history.attempts + (outcome != CloseOutcome.NOT_ATTEMPTED)
    if outcome == CloseOutcome.COMPLETED:
        return ClosedJob(item.job.job_id, outcome, attempts, None, first, CarryAction.DONE, None)
    if outcome == CloseOutcome.FAILED:
        reason = item.fail_reason or FailReason.OTHER
        action = CarryAction.RETURN if attempts >= rules.max_attempts else rules.action_for(reason)
    else:
        # not attempted: the job keeps the reason of its last failed attempt, if any
        reason = history.last_fail_reason or FailReason.OUT_OF_TIME
        action = rules.not_attempted
    carried_to = next_working_day(day, rules=rules) if action == CarryAction.NEXT_DAY else None
    return ClosedJob(item.job.job_id, outcome, attempts, str(reason), first, action, carried_to)


def close_jobs(
    day: date,
    items: Sequence[DayJob],
    *,
    histories: Mapping[str, JobHistory] | None = None,
    rules_for: Mapping[str | None, CarryRules] | None = None,
) -> list[ClosedJob]:
    """Decide the fate of every job of a closing day, keeping pairs together.

    Parameters
    ----------
    day
        The day being closed.
    items
        Every job of the day's published plan (routed or not), with its stop's status.
    histories
        Earlier attempts per job id (none: first attempt).
    rules_for
        Rules per post office id (:attr:`DayJob.office`); a job of an office without rules,
        or of none, takes :data:`DEFAULT_RULES` (or the rules under the key ``None``).

    Returns
    -------
    list of ClosedJob
        In the order of ``items``.
    """
    histories = histories or {}
    rules_for = rules_for or {}
    fallback = rules_for.get(None, DEFAULT_RULES)
    decided = {
        it.job.job_id: decide(
            it,
            day=day,
            history=histories.get(it.job.job_id, JobHistory()),
            rules=rules_for.get(it.office, fallback),
        )
        for it in items
    }
    # A delivery follows its pickup while the pickup is not completed.
    pickups = {
        it.job.pair_id: it.job.job_id for it in items if it.job.pair_id and it.job.kind == "pickup"
    }
    out = []
    for it in items:
        closed = decided[it.job.job_id]
        pair = it.job.pair_id
        pickup_id = pickups.get(pair) if pair is not None and it.job.kind == "delivery" else None
        if pickup_id is not None and closed.outcome != CloseOutcome.COMPLETED:
            pickup = decided[pickup_id]
            if pickup.outcome != CloseOutcome.COMPLETED:
                closed = replace(closed, action=pickup.action, carried_to=pickup.carried_to)
        out.append(closed)
    return out


@dataclass(frozen=True, slots=True)
class Revision:
    """What a result reported after the close changes for one job.

    ``closed`` is the job's outcome to store (``carried_to``: the later day it sits on, if
    any); ``withdraw_from`` a later day, not yet published, the job is taken off; ``carry_to``
    a later day, not yet published, it is now put on; ``flag`` why the dispatcher must look;
    ``notify`` whether the citizen is told the job went back to the post office.
    """

    closed: ClosedJob
    withdraw_from: date | None = None
    carry_to: date | None = None
    flag: LateResult | None = None
    notify: bool = False


def revise(before: ClosedJob, after: ClosedJob, *, published: Container[date]) -> Revision | None:
    """Return what a late result changes for a job of a closed day (None: nothing).

    ``before`` is the stored outcome (its ``carried_to`` is the later day the job sits on: a
    carry-over, or a held job the dispatcher released); ``after`` the close decided again with
    the stop's status now (:func:`close_jobs`). A job that no longer needs a later visit is taken
    off that day while its plan is not published, else stays there, flagged; a job that now
    needs one is put on the next working day, or held (flagged) when that day is published.

    Parameters
    ----------
    before
        The outcome stored at the close (or at an earlier revision).
    after
        The outcome the close gives with the stop's status now.
    published
        The days whose plan is published (their rounds are the couriers').
    """
    if (before.outcome, before.fail_reason, before.attempts) == (
        after.outcome,
        after.fail_reason,
        after.attempts,
    ):
        return None  # an arrival, or a report the close already counted
    placed = before.carried_to
    unreturned = before.action == CarryAction.RETURN and after.action != CarryAction.RETURN
    flag = LateResult.WAS_RETURNED if unreturned else None
    if after.action == CarryAction.NEXT_DAY:
        if placed is not None:  # already on a later day: it stays there
            return Revision(replace(after, carried_to=placed), flag=flag)
        if after.carried_to is not None and after.carried_to in published:
            held = replace(after, action=CarryAction.HOLD, carried_to=None)
            return Revision(held, flag=LateResult.HELD_NOT_CARRIED)
        return Revision(after, carry_to=after.carried_to, flag=flag)
    if placed is not None and placed in published:
        return Revision(replace(after, carried_to=placed), flag=LateResult.ON_PUBLISHED_DAY)
    notify = after.action == CarryAction.RETURN and before.action != CarryAction.RETURN
    return Revision(replace(after, carried_to=None), withdraw_from=placed, flag=flag, notify=notify)


def carried_jobs(items: Sequence[DayJob], decided: Sequence[ClosedJob]) -> list[Job]:
    """Return each job of ``items`` as it becomes a job of a later day.

    The citizen's request time, windows and everything else stay. A half of a pair whose
    other half ended completed leaves its pair: a delivery whose pickup was completed (the
    item waits at the post office, and is loaded there), and a pickup whose delivery the
    phone reported completed first (taps out of order): a later day cannot plan half a pair.
    ``decided`` is :func:`close_jobs`' answer for ``items``.
    """
    completed = {c.job_id for c in decided if c.outcome == CloseOutcome.COMPLETED}
    done_halves: dict[str, set[str]] = {}
    for it in items:
        if it.job.pair_id is not None and it.job.job_id in completed:
            done_halves.setdefault(it.job.pair_id, set()).add(it.job.job_id)
    return [
        replace(it.job, pair_id=None)
        if it.job.pair_id is not None and done_halves.get(it.job.pair_id, set()) - {it.job.job_id}
        else it.job
        for it in items
    ]
