"""A dispatcher's hand edits of a plan: move a job, reorder a round, unassign a job.

An edit is applied to the rounds it touches (and to those holding the other half of a moved
pair), each touched round is re-timed by :mod:`routing.schedule` and verified by the
independent checker; the first feasible candidate (the cheapest one when a move lets the
position free) is returned.

Once the day runs (:class:`Running`), each touched round is timed from where its courier
stands: the stops served, failed or being served stay as they were and never move, and the
rest of the round starts from the courier's live start (position, time, what is on board,
the lunch break behind them), the same standing a re-plan starts from
(:func:`routing.replan.standing`, settled on the way to the next stop as
:meth:`routing.replan.Standing.settle` does). An edit's checks and ETAs are then about the rest of the
day; what the day has already broken on a touched round (a stop that will miss its window,
a return after the shift, a failed delivery overloading the motorbike) does not refuse an
edit, what the edit breaks does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from routing.check import Violation, check_plan
from routing.errors import InfeasibleChangeError, InputError, PlanConflictError, UnknownIdError
from routing.model import Courier, Problem
from routing.plan import Plan, Route, Unassigned
from routing.replan import CourierState, DayChanges, Standing, standing, unpair_delivered_first
from routing.schedule import RouteStart, schedule_route
from routing.vocabulary import STARTED_STATUSES, UnassignedReason

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: Travel times and distances (s, m) between points given by longitude and latitude lists.
MatrixFn = Callable[
    [Sequence[float], Sequence[float]], tuple["NDArray[np.int64]", "NDArray[np.int64]"]
]

#: Travel times and distances between a round's points and a few new ones (new ones last):
#: ``fn(lons, lats, new_lons, new_lats)``, the same matrices as a :data:`MatrixFn` over all the
#: points; a provider may keep the round's own matrix between calls.
RoundMatrixFn = Callable[
    [Sequence[float], Sequence[float], Sequence[float], Sequence[float]],
    tuple["NDArray[np.int64]", "NDArray[np.int64]"],
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
class Running:
    """The running day an edit is timed from.

    Parameters
    ----------
    plan
        The rounds in force (their stops' stored times are kept for the stops reached).
    states
        Each courier's live state, as for :func:`routing.replan.replan`.
    now_s
        The time of the edit, seconds since local midnight; ``None`` times each courier from
        their latest news (last stop reached or GPS fix), and a courier with none from the
        morning (a day gone by, or one to come).
    """

    plan: Plan
    states: Mapping[str, CourierState] = field(default_factory=dict)
    now_s: int | None = None

    def done(self) -> set[str]:
        """Return the jobs served, failed or being served: they never move."""
        return {
            p.job_id
            for st in self.states.values()
            for p in st.stops
            if p.status in STARTED_STATUSES
        }

    def now_for(self, courier_id: str) -> int:
        """Return the edit's time for ``courier_id``: ``now_s``, else their latest news."""
        if self.now_s is not None:
            return self.now_s
        state = self.states.get(courier_id)
        seen = [p.at_s for p in state.stops if p.at_s is not None] if state else []
        if state is not None and state.position is not None and state.position_s is not None:
            seen.append(state.position_s)
        return max(seen, default=0)

    def standing(self, problem: Problem, courier: Courier) -> Standing:
        """Return where ``courier`` stands at ``now_s`` (or at their latest news)."""
        cid = courier.courier_id
        route = next((r for r in self.plan.routes if r.courier_id == cid), None)
        return standing(
            problem, courier, route, self.states.get(cid), DayChanges(now_s=self.now_for(cid))
        )


@dataclass(frozen=True, slots=True)
class EditResult:
    """The rounds an edit changed, timed and checked.

    Parameters
    ----------
    problem
        The sub-problem the touched rounds were timed on (post offices, touched couriers,
        their jobs); stop ``location_idx`` refer to it.
    routes
        New route of every touched courier (possibly without stops), by courier id: on a
        running day, the stops already reached (with their stored times) then the rest.
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
    running: Running | None = None,
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
    running
        The day's live state, once it runs: touched rounds are timed from their couriers'
        live starts and the stops reached never move. ``None``: rounds start in the morning.

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
    done = running.done() if running is not None else set()
    candidates, touched, new_unassigned = _candidates(
        edit, sequences, problem, set(unassigned), done
    )
    involved, jobs_in = _involved(problem, candidates[0], touched, edit.job_id)
    couriers = problem.courier_by_id()
    stands = {c: running.standing(problem, couriers[c]) for c in involved if running is not None}
    # where each courier stands or last stood: a fix no road reaches starts them there
    jobs_in |= {j for st in stands.values() for j in (st.location_job, st.came_from) if j}
    if edit.op == "move" and edit.courier_id in stands:
        _check_on_board(problem, edit, stands[edit.courier_id], sequences)
    sub = Problem(
        problem.depots,
        tuple(couriers[c] for c in sorted(involved)),
        unpair_delivered_first([j for j in problem.jobs if j.job_id in jobs_in], done),
        day=problem.day,
    )
    lons = [d.lon for d in sub.depots] + [j.lon for j in sub.jobs]
    lats = [d.lat for d in sub.depots] + [j.lat for j in sub.jobs]
    pos_of = {j.job_id: i for i, j in enumerate(sub.jobs)}
    rows: dict[str, int] = {}  # where each touched courier stands: a row of the matrices
    fixes: dict[str, int] = {}
    for c, st in stands.items():
        if st.left and st.location_job is None:  # a GPS fix: a point after the problem's
            lons.append(st.location[0])
            lats.append(st.location[1])
            fixes[c] = len(lons) - 1
    durations, distances = matrix(lons, lats)
    for c, st in stands.items():
        assert running is not None  # couriers stand somewhere only on a running day
        rows[c] = st.start_in(sub, pos_of, durations, running.now_for(c), fixes.get(c))
    sub_unassigned = tuple(
        Unassigned(j, _checker_reason(unassigned.get(j)), "")
        for j in sorted(jobs_in & new_unassigned)
    )
    sub_done = done & jobs_in

    def timed(
        cand: Mapping[str, Sequence[str]], with_unassigned: tuple[Unassigned, ...]
    ) -> tuple[dict[str, Route], dict[str, RouteStart], list[Violation]]:
        routes: dict[str, Route] = {}
        starts: dict[str, RouteStart] = {}
        for c in sorted(involved):
            rest = [j for j in cand.get(c, []) if j not in done]
            st = stands.get(c)
            if st is not None:
                load = st.load if st.left else sub.start_load(rest)
                starts[c] = RouteStart(rows[c], st.time_s, load, st.break_taken, st.left)
            routes[c] = schedule_route(
                sub,
                couriers[c],
                [pos_of[j] for j in rest],
                durations,
                distances,
                start=starts.get(c),
            )
        found = check_plan(
            sub,
            Plan(tuple(routes.values()), with_unassigned, 0),
            durations,
            distances,
            starts=starts or None,
            done=sub_done,
        )
        return routes, starts, found

    # What the day has already broken on these rounds is not the edit's doing.
    already: set[tuple[str, ...]] = set()
    if running is not None:
        before = {c: list(sequences.get(c, [])) for c in involved}
        on_rounds = {j for seq in before.values() for j in seq}
        base_unassigned = tuple(
            Unassigned(j, _checker_reason(unassigned.get(j)), "")
            for j in sorted(jobs_in - on_rounds - sub_done)
        )
        *_, base = timed(before, base_unassigned)
        already = {_same(v) for v in base if v.kind in _ALREADY}
    best: tuple[int, dict[str, Route]] | None = None
    first_violations: list[Violation] = []
    for cand in candidates:
        routes, starts, found = timed(cand, sub_unassigned)
        violations = [v for v in found if _same(v) not in already]
        if violations:
            first_violations = first_violations or violations
            continue
        cost = sum(r.driving_s for r in routes.values())
        if best is None or cost < best[0]:
            if running is not None:
                routes = {
                    c: _with_stops_reached(
                        sub, running, stands[c], r, starts[c], (durations, distances)
                    )
                    for c, r in routes.items()
                }
            best = (cost, routes)
    if best is None:
        detail = "; ".join(str(v) for v in first_violations[:3])
        msg = f"edit rejected: {detail}"
        raise InfeasibleChangeError(msg, first_violations)
    return EditResult(sub, best[1], frozenset(new_unassigned))


def _check_on_board(
    problem: Problem, edit: Edit, st: Standing, sequences: Mapping[str, Sequence[str]]
) -> None:
    """Refuse moving a delivery loaded at the post office to a courier who left without it."""
    job = problem.job_by_id()[str(edit.job_id)]
    own = edit.job_id in sequences.get(st.courier.courier_id, ())
    if st.left and job.loaded_at_depot and not own:
        msg = (
            f"job {job.job_id} is loaded at the post office and courier "
            f"{st.courier.courier_id} has left without it; a re-plan has it collected there"
        )
        raise PlanConflictError(msg)


#: Violations the running day may already carry on a round: a stop that will miss its window,
#: a return after the shift, an overload (a failed delivery stays on the motorbike).
_ALREADY = frozenset({"window", "shift", "capacity"})


def _same(v: Violation) -> tuple[str, ...]:
    """Return what makes a violation the same one after an edit.

    A stop late already may get later, a late return later still (the edit's own stops are
    checked in their own right); an overload must not grow.
    """
    where = (v.kind, v.courier_id or "", v.job_id or "")
    return (*where, v.detail) if v.kind == "capacity" else where


def _with_stops_reached(
    sub: Problem,
    running: Running,
    st: Standing,
    rest: Route,
    start: RouteStart,
    matrices: tuple[NDArray[np.int64], NDArray[np.int64]],
) -> Route:
    """Return a courier's whole round: the stops reached, as stored, then the rest as timed."""
    old = next((r for r in running.plan.routes if r.courier_id == st.courier.courier_id), None)
    if old is None or not st.left:
        return rest
    durations, distances = matrices
    pos_of = {j.job_id: sub.job_location(k) for k, j in enumerate(sub.jobs)}
    reached = {s.job_id: s for s in old.stops}
    head = tuple(replace(reached[j], location_idx=pos_of[j]) for j in st.frozen if j in reached)
    brk_start, brk_len = rest.break_start_s, rest.break_duration_s
    taken = old.break_start_s
    if brk_start is None and start.break_taken and taken is not None and taken < start.time_s:
        brk_start, brk_len = taken, old.break_duration_s  # taken before now, as planned
    begin = min(old.start_s, rest.start_s)
    stops = (*head, *rest.stops)
    # Totals: from the post office along the stops reached, then the rest from the start.
    legs = [sub.depot_index(st.courier.depot_id), *(s.location_idx for s in head)]
    return replace(
        rest,
        start_s=begin,
        stops=stops,
        distance_m=rest.distance_m + sum(int(distances[a, b]) for a, b in pairwise(legs)),
        driving_s=rest.driving_s + sum(int(durations[a, b]) for a, b in pairwise(legs)),
        working_s=rest.end_s - begin,
        waiting_s=sum(s.waiting_s for s in stops),
        break_start_s=brk_start,
        break_duration_s=brk_len,
    )


def _checker_reason(reason: str | None) -> UnassignedReason:
    if reason is None or reason not in set(UnassignedReason):
        return UnassignedReason.DROPPED_LOW_PRIORITY
    return UnassignedReason(reason)
