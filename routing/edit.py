"""A dispatcher's hand edits of a plan: move a job, reorder a round, unassign a job.

An edit is applied to the rounds it touches (and to those holding the other half of a moved
pair), each touched round is re-timed by :mod:`routing.schedule` and verified by the
independent checker; the first feasible candidate (the cheapest one when a move lets the
position free) is returned. Jobs the couriers already served, failed or are serving never
move.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from routing.check import Violation, check_plan
from routing.errors import InfeasibleChangeError, InputError, PlanConflictError, UnknownIdError
from routing.model import Problem
from routing.plan import Plan, Route, Unassigned
from routing.schedule import schedule_route
from routing.vocabulary import UnassignedReason

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: Travel times and distances (s, m) between points given by longitude and latitude lists.
MatrixFn = Callable[
    [Sequence[float], Sequence[float]], tuple["NDArray[np.int64]", "NDArray[np.int64]"]
]

EditOp = Literal["move", "reorder", "unassign"]


@dataclass(frozen=True, slots=True)
class Edit:
    """A dispatcher's change: move a job, reorder a route, or unassign a job.

    Parameters
    ----------
    op
        ``move`` (``job_id`` to ``courier_id``, at ``position`` or wherever it fits best),
        ``reorder`` (``courier_id``'s round in the order ``job_ids``) or ``unassign``.
    """

    op: EditOp
    job_id: str | None = None
    courier_id: str | None = None
    position: int | None = None
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EditResult:
    """The rounds an edit changed, timed and checked.

    Parameters
    ----------
    problem
        The sub-problem the touched rounds were timed on (post offices, touched couriers,
        their jobs); stop ``location_idx`` refer to it.
    routes
        New route of every touched courier (possibly without stops), by courier id.
    unassigned
        Job ids unassigned after the edit (the plan's, less a moved one, plus an unassigned one).
    """

    problem: Problem
    routes: dict[str, Route]
    unassigned: frozenset[str]


def _candidates(
    edit: Edit,
    seqs: Mapping[str, Sequence[str]],
    problem: Problem,
    unassigned: Collection[str],
    done: Collection[str],
) -> tuple[list[dict[str, list[str]]], set[str], set[str]]:
    """Return candidate sequence maps (one per insertion position), touched couriers, new unassigned."""
    jobs = problem.job_by_id()
    couriers = problem.courier_by_id()
    if edit.op in ("move", "unassign") and (edit.job_id is None or edit.job_id not in jobs):
        msg = f"job {edit.job_id!r} is not in this plan"
        raise UnknownIdError(msg)
    if edit.op in ("move", "reorder") and (
        edit.courier_id is None or edit.courier_id not in couriers
    ):
        msg = f"courier {edit.courier_id!r} is not in this plan"
        raise UnknownIdError(msg)
    if edit.job_id is not None and edit.job_id in done:
        msg = f"job {edit.job_id} is already served or being served; it cannot move"
        raise PlanConflictError(msg)
    base = {c: list(v) for c, v in seqs.items()}
    touched: set[str] = set()
    new_unassigned = set(unassigned)
    if edit.op == "reorder":
        assert edit.courier_id is not None
        current = base.get(edit.courier_id, [])
        if sorted(edit.job_ids) != sorted(current):
            raise InputError(
                None,
                "job_ids",
                list(edit.job_ids)[:10],
                f"must be a permutation of the route's jobs {current}",
            )
        if any(j in done and edit.job_ids[i] != j for i, j in enumerate(current)):
            msg = "stops already served or being served keep their place in the round"
            raise PlanConflictError(msg)
        base[edit.courier_id] = list(edit.job_ids)
        return [base], {edit.courier_id}, new_unassigned
    assert edit.job_id is not None
    for c, seq in base.items():
        if edit.job_id in seq:
            seq.remove(edit.job_id)
            touched.add(c)
    if edit.op == "unassign":
        if not touched:
            msg = f"job {edit.job_id} is not on any route"
            raise PlanConflictError(msg)
        new_unassigned.add(edit.job_id)
        other = problem.pair_partner().get(edit.job_id)
        if other is not None and other not in done:  # a pair leaves the round whole
            for c, seq in base.items():
                if other in seq:
                    seq.remove(other)
                    touched.add(c)
            new_unassigned.add(other)
        return [base], touched, new_unassigned
    assert edit.courier_id is not None
    new_unassigned.discard(edit.job_id)
    touched.add(edit.courier_id)
    target = base.setdefault(edit.courier_id, [])
    first_free = sum(1 for j in target if j in done)
    if edit.position is not None:
        positions = [min(max(edit.position, first_free), len(target))]
    else:
        positions = list(range(first_free, len(target) + 1))
    candidates = []
    for pos in positions:
        cand = {c: list(v) for c, v in base.items()}
        cand[edit.courier_id].insert(pos, edit.job_id)
        candidates.append(cand)
    return candidates, touched, new_unassigned


def _involved(
    problem: Problem, candidate: Mapping[str, list[str]], touched: set[str], job_id: str | None
) -> tuple[set[str], set[str]]:
    """Return the couriers and jobs to re-time: the touched rounds and any holding a pair partner."""
    partner = problem.pair_partner()
    owner = {j: c for c, seq in candidate.items() for j in seq}
    involved = set(touched)
    while True:
        jobs_in = {j for c in involved for j in candidate.get(c, [])}
        if job_id:
            jobs_in.add(job_id)
        jobs_in |= {partner[j] for j in list(jobs_in) if j in partner}
        extra = {owner[j] for j in jobs_in if j in owner} - involved
        if not extra:
            return involved, jobs_in
        involved |= extra


def apply_edit(
    problem: Problem,
    sequences: Mapping[str, Sequence[str]],
    unassigned: Mapping[str, str],
    edit: Edit,
    matrix: MatrixFn,
    *,
    done: Collection[str] = (),
) -> EditResult:
    """Apply an edit if the rounds it touches stay feasible.

    Parameters
    ----------
    problem
        The plan's problem (all couriers and jobs of the day).
    sequences
        Each courier's round as job ids in order.
    unassigned
        The plan's unassigned jobs and their reason codes.
    edit
        The change.
    matrix
        Travel times and distances between points (the road network of the day).
    done
        Jobs served, failed or being served: they never move.

    Returns
    -------
    EditResult

    Raises
    ------
    UnknownIdError
        If a job or courier is unknown.
    PlanConflictError
        If the job to unassign is on no round, or the edit would move a served stop.
    InputError
        If a reorder is not a permutation of the round.
    InfeasibleChangeError
        Listing the violated rules, if no candidate passes the checker.
    """
    candidates, touched, new_unassigned = _candidates(
        edit, sequences, problem, set(unassigned), set(done)
    )
    involved, jobs_in = _involved(problem, candidates[0], touched, edit.job_id)
    couriers = problem.courier_by_id()
    sub = Problem(
        problem.depots,
        tuple(couriers[c] for c in sorted(involved)),
        tuple(j for j in problem.jobs if j.job_id in jobs_in),
        day=problem.day,
    )
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    durations, distances = matrix(lons, lats)
    pos_of = {j.job_id: i for i, j in enumerate(sub.jobs)}
    sub_unassigned = tuple(
        Unassigned(j, _checker_reason(unassigned.get(j)), "")
        for j in sorted(jobs_in & new_unassigned)
    )
    best: tuple[int, dict[str, Route]] | None = None
    first_violations: list[Violation] = []
    for cand in candidates:
        routes = {
            c: schedule_route(
                sub, couriers[c], [pos_of[j] for j in cand.get(c, [])], durations, distances
            )
            for c in sorted(involved)
        }
        served = [j for c in involved for j in cand.get(c, []) if j in done]
        violations = [
            v
            for v in check_plan(
                sub, Plan(tuple(routes.values()), sub_unassigned, 0), durations, distances
            )
            if not _accepted_in_the_past(v, served)
        ]
        if violations:
            first_violations = first_violations or violations
            continue
        cost = sum(r.driving_s for r in routes.values())
        if best is None or cost < best[0]:
            best = (cost, routes)
    if best is None:
        detail = "; ".join(str(v) for v in first_violations[:3])
        msg = f"edit rejected: {detail}"
        raise InfeasibleChangeError(msg, first_violations)
    return EditResult(sub, best[1], frozenset(new_unassigned))


def _checker_reason(reason: str | None) -> UnassignedReason:
    if reason is None or reason not in set(UnassignedReason):
        return UnassignedReason.DROPPED_LOW_PRIORITY
    return UnassignedReason(reason)


def _accepted_in_the_past(v: Violation, served: list[str]) -> bool:
    """Return whether a violation is about a stop already served: what happened is not refused."""
    return v.job_id is not None and v.job_id in served and v.kind in ("window", "travel_time")
