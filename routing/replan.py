"""Re-plan the rest of a running day from the live state: urgent jobs, couriers dropping out.

What happened stays: stops served, failed or being served are frozen in their order. Each
courier starts again from where they are (the latest GPS fix or the last stop reached) at
"now", with what is on board: deliveries loaded in the morning and not yet handed over
stay with their courier (the items are on that motorbike), a pair whose pickup is done is
delivered by the courier who collected it, collected pickups and unpaid payout cash take
room until the end of the round, and a lunch break behind the courier is not taken again.

The rest (pickups not yet collected, jobs of couriers who stopped working, new and urgent
jobs, jobs the morning plan left out) is planned again per post office by the solver,
starting from the rounds in force. Changing a job's courier and moving a start the citizen
may have been told cost something (:class:`ReplanOptions`), so the rounds of couriers the
changes did not touch stay recognisable. A delivery that is on nobody's motorbike yet (a new
job, or one a courier who stopped working had not loaded) is collected at its post office
first: it becomes a pair whose pickup is at the office.

Every re-plan is checked by :func:`routing.check.check_plan` on the remaining rounds, with
their starts (position, time, load on board, break behind) and the frozen jobs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from geodata.closures import Closure, closed_edges
from geodata.matrix import Router
from geodata.snap import DEFAULT_MAX_SNAP_M, Snapped, Snapper
from routing.check import Violation, check_plan
from routing.errors import InputError
from routing.model import UNREACHABLE, Courier, Depot, Job, Load, Problem, TimeWindow
from routing.params import SolverParams
from routing.plan import Plan, Route, Unassigned
from routing.planner import completeness
from routing.schedule import RouteStart, build_route
from routing.solver import SolveGuide, solve
from routing.vocabulary import STARTED_STATUSES, StopStatus, UnassignedReason

if TYPE_CHECKING:
    import numpy.typing as npt

    from geodata.compact import CompactGraph

logger = logging.getLogger(__name__)

#: Service time of collecting a new delivery's item at the post office, seconds.
OFFICE_PICKUP_S = 120
#: Unassigned reasons worth another try when the day is re-planned.
RETRY_REASONS: frozenset[str] = frozenset(
    {UnassignedReason.DROPPED_LOW_PRIORITY, UnassignedReason.TIME_LIMIT}
)


@dataclass(frozen=True, slots=True)
class StopProgress:
    """Where one stop of a courier's round in force stands.

    Parameters
    ----------
    job_id
        The job.
    status
        ``planned``, ``arrived``, ``completed`` or ``failed``.
    at_s
        When it reached that status, seconds since local midnight (None if unknown).
    """

    job_id: str
    status: StopStatus
    at_s: int | None = None


@dataclass(frozen=True, slots=True)
class CourierState:
    """A courier's live state, as the service knows it.

    Parameters
    ----------
    courier_id
        The courier.
    stops
        Progress of each stop of the round in force (stops not listed are planned).
    position
        Latest GPS fix ``(lon, lat)``, if any.
    position_s
        When the fix was taken, seconds since local midnight.
    break_taken
        Whether the lunch break is behind the courier; None to infer it from the plan and
        the time.
    """

    courier_id: str
    stops: tuple[StopProgress, ...] = ()
    position: tuple[float, float] | None = None
    position_s: int | None = None
    break_taken: bool | None = None


@dataclass(frozen=True, slots=True)
class DayChanges:
    """What changed since the plan in force was made.

    Parameters
    ----------
    now_s
        The time of the re-plan, seconds since local midnight.
    new_jobs
        Jobs to add (urgent ones with a higher priority).
    cancelled
        Jobs to drop (never served).
    unavailable
        Couriers who stop working, with the time they stop (seconds since midnight; at or
        before ``now_s``: at once).
    closures
        Roads closed since the morning (landslides); the morning's closures still apply
        when the caller passes them too.
    """

    now_s: int
    new_jobs: tuple[Job, ...] = ()
    cancelled: frozenset[str] = frozenset()
    unavailable: Mapping[str, int] = field(default_factory=dict)
    closures: tuple[Closure, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplanOptions:
    """Options of :func:`replan`.

    Parameters
    ----------
    time_limit_s
        Wall time of the whole re-plan: the search, shared by the post offices in proportion
        to their jobs, gets what snapping and the travel-time matrices leave of it (at least
        half of it).
    reassign_cost_s
        Cost of giving a job to another courier, in seconds of driving.
    promise_slack_s
        A promised start may move this much for free; each second beyond costs one second.
    workers
        Processes solving post offices in parallel.
    seed
        Random seed of the search.
    max_snap_m
        Addresses farther than this from every road are not routed.
    keep_rounds
        Start from the rounds in force and price changes (the default). False plans the
        remaining work from scratch under the same rules: the baseline of the benchmarks.
    """

    time_limit_s: float = 10.0
    reassign_cost_s: int = 1800
    promise_slack_s: int = 1800
    workers: int = 2
    seed: int = 0
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    keep_rounds: bool = True

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            msg = f"time_limit_s must be positive, got {self.time_limit_s}"
            raise ValueError(msg)
        if self.reassign_cost_s < 0 or self.promise_slack_s < 0 or self.workers < 1:
            msg = "reassign_cost_s and promise_slack_s must be >= 0 and workers >= 1"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class JobChange:
    """One line of a re-plan's difference from the plan in force.

    Parameters
    ----------
    job_id
        The job.
    before, after
        Its courier in the plan in force and in the re-plan (None: not on a round).
    eta_before_s, eta_after_s
        Its planned service start before and after (None when not on a round).
    reason
        Why it is on no round after the re-plan (an unassigned reason), if so.
    """

    job_id: str
    before: str | None
    after: str | None
    eta_before_s: int | None = None
    eta_after_s: int | None = None
    reason: str | None = None

    @property
    def kind(self) -> str:
        """``moved``, ``added``, ``dropped``, ``kept`` or ``unrouted`` (on no round before nor after)."""
        if self.before is None:
            return "added" if self.after is not None else "unrouted"
        if self.after is None:
            return "dropped"
        return "kept" if self.before == self.after else "moved"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "eta_before_s": self.eta_before_s,
            "eta_after_s": self.eta_after_s,
            "eta_change_s": None
            if self.eta_before_s is None or self.eta_after_s is None
            else self.eta_after_s - self.eta_before_s,
            "reason": self.reason,
        }


@dataclass(slots=True)
class Replan:
    """A re-planned day.

    Parameters
    ----------
    problem
        The day's problem after the changes: the jobs in force, the new jobs and the office
        pickups of deliveries that were on nobody's motorbike.
    remaining
        Each courier's remaining round from its start (stops' ``location_idx`` refer to
        ``problem``), and every job neither frozen nor routed, with its reason.
    starts
        Where each courier's remaining round starts.
    frozen
        Each courier's stops already served, failed or being served, in their order.
    changes
        The difference from the plan in force, one line per job.
    violations
        What the independent checker found (empty for a sound re-plan).
    stats
        Timings and counts.
    """

    problem: Problem
    remaining: Plan
    starts: dict[str, RouteStart]
    frozen: dict[str, tuple[str, ...]]
    changes: list[JobChange]
    violations: list[Violation]
    stats: dict[str, Any] = field(default_factory=dict)

    def diff(self) -> dict[str, Any]:
        """Return the difference as JSON: counts, then the lines that changed."""
        lines = [c for c in self.changes if c.kind != "kept" or c.eta_before_s != c.eta_after_s]
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.kind] = counts.get(c.kind, 0) + 1
        return {"counts": counts, "jobs": [c.to_dict() for c in lines]}


# -- the state of each courier at "now" ----------------------------------------------------------


#: A GPS fix that would make the drive from a courier's last stop to their next this much
#: longer (seconds) is taken as off their way: a poor signal in the hills, or a fix snapped
#: to a road the way does not take.
FIX_DETOUR_S = 600


@dataclass(slots=True)
class Standing:
    """A courier's standing at the time of the re-plan.

    ``came_from`` is the last stop reached (None: the post office), ``came_from_s`` when the
    courier is free there, and ``left_at_s`` when they left it (None: still there, or
    unknown); ``leg_break_s`` is the lunch break the round in force takes on the way from
    there to the next stop; ``on_fix`` says that ``location`` is a GPS fix. :meth:`settle`
    uses them to start a courier between stops where they will be.
    """

    courier: Courier
    frozen: list[str]
    remaining: list[str]
    left: bool
    available_until: int | None
    location: tuple[float, float]
    location_job: str | None  # the job the courier stands at (None: a GPS fix or the office)
    time_s: int
    load: Load
    pinned: set[str]
    break_taken: bool
    came_from: str | None = None
    came_from_location: tuple[float, float] | None = None
    came_from_s: int | None = None
    left_at_s: int | None = None
    on_fix: bool = False
    leg_break_s: int = 0
    route: Route | None = None
    state: CourierState | None = None

    @property
    def available(self) -> bool:
        """Whether the courier still works after ``time_s`` (not stopped, shift not over)."""
        end = self.courier.shift.end_s
        if self.available_until is not None:
            end = min(end, self.available_until)
        return end > self.time_s

    @property
    def on_the_way(self) -> bool:
        """Whether the courier is between stops with a next stop (their start may move)."""
        return self.left and bool(self.remaining) and (self.on_fix or self.left_at_s is not None)

    def settle(
        self,
        now_s: int,
        next_location: tuple[float, float],
        *,
        last_to_next_s: int,
        last_to_fix_s: int | None = None,
        fix_to_next_s: int | None = None,
    ) -> None:
        """Start a courier on the way to their next stop where they will be, in place.

        A GPS fix is kept when it lies on the way from the stop the courier left to the next
        (the drive through it at most :data:`FIX_DETOUR_S` longer); a fix off their way is
        not trusted. Without
        a fix, a courier who left their last stop (or the office) at ``left_at_s`` is on
        the way to the next stop of their round: their round starts there, when the drive
        from the last stop brings them (with the lunch break the round in force takes on that
        leg; not before ``now_s``), instead of at the last stop
        at ``now_s`` as if the drive so far had not happened. Travel times are those of the
        re-plan's roads (:data:`UNREACHABLE` when closed); a next stop the roads no longer
        reach from the last stop leaves the courier where they were.
        """
        if not self.on_the_way:
            return
        if self.on_fix:
            legs = (last_to_fix_s, fix_to_next_s, last_to_next_s)
            if any(t is None or t >= UNREACHABLE for t in legs):
                return  # a closure on the way, or no stop left: the fix is what is known
            if last_to_fix_s + fix_to_next_s <= last_to_next_s + FIX_DETOUR_S:  # type: ignore[operator]
                return
            self.start_at_last_stop()
        if self.left_at_s is None or last_to_next_s >= UNREACHABLE:
            return
        self.location, self.location_job = next_location, self.remaining[0]
        self.time_s = max(now_s, self.left_at_s + self.leg_break_s + last_to_next_s)
        self.break_taken = _break_taken(self.courier, self.route, self.state, self.time_s)

    def settle_on(
        self,
        now_s: int,
        next_location: tuple[float, float],
        times: npt.NDArray[np.int64],
        *,
        last: int,
        nxt: int,
        fix: int | None = None,
    ) -> None:
        """Settle (:meth:`settle`) with the legs read off a time matrix.

        ``last``, ``nxt`` and ``fix`` are rows of ``times``: the stop the courier left (or the
        office), the next stop and the GPS fix (None: no fix routed).
        """
        self.settle(
            now_s,
            next_location,
            last_to_next_s=int(times[last, nxt]),
            last_to_fix_s=None if fix is None else int(times[last, fix]),
            fix_to_next_s=None if fix is None else int(times[fix, nxt]),
        )

    def start_at_last_stop(self) -> None:
        """Drop a GPS fix that cannot start the round, in place.

        A fix off the courier's way, or too far from every mapped road: the courier starts
        from the last stop reached (the office when none), when they were free there.
        """
        self.on_fix = False
        self.location = self.came_from_location or self.location
        self.location_job = self.came_from
        if self.came_from_s is not None:
            self.time_s = self.came_from_s

    def start_in(
        self,
        problem: Problem,
        pos_of: Mapping[str, int],
        times: npt.NDArray[np.int64],
        now_s: int,
        fix: int | None,
    ) -> int:
        """Start the courier on ``problem``'s matrices, in place; return the row they start from.

        For the small problems of an edit or a suggestion: ``pos_of`` gives each job's
        position in ``problem``, ``times`` its travel times and ``fix`` the row of the GPS fix
        (None: no fix). A fix no road reaches is dropped (:meth:`start_at_last_stop`); a
        courier between stops starts where the drive brings them (:meth:`settle_on`).
        """
        home = problem.depot_index(self.courier.depot_id)
        if fix is not None and int(times[fix, home]) >= UNREACHABLE:
            self.start_at_last_stop()
            fix = None
        if self.on_the_way and self.remaining[0] in pos_of:
            came = pos_of.get(self.came_from) if self.came_from is not None else None
            nxt = pos_of[self.remaining[0]]
            job = problem.jobs[nxt]
            self.settle_on(
                now_s,
                (job.lon, job.lat),
                times,
                last=home if came is None else problem.job_location(came),
                nxt=problem.job_location(nxt),
                fix=fix if self.on_fix else None,
            )
        if self.left and self.on_fix and fix is not None:
            return fix
        if self.left and self.location_job is not None:
            return problem.job_location(pos_of[self.location_job])
        return home


def _progress(state: CourierState | None) -> dict[str, StopProgress]:
    return {} if state is None else {p.job_id: p for p in state.stops}


def standing(
    problem: Problem,
    courier: Courier,
    route: Route | None,
    state: CourierState | None,
    changes: DayChanges,
    *,
    jobs: Mapping[str, Job] | None = None,
    partner: Mapping[str, str] | None = None,
) -> Standing:
    """Work out where a courier is at ``now``, with what, and which jobs only they can serve.

    ``jobs`` and ``partner`` (the problem's jobs by id and pair partners) may be passed when
    the standings of many couriers are worked out at once.
    """
    jobs = jobs if jobs is not None else problem.job_by_id()
    depot = problem.depot_by_id()[courier.depot_id]
    now = changes.now_s
    progress = _progress(state)
    seq = route.job_ids if route is not None else []
    status = {j: progress[j].status if j in progress else StopStatus.PLANNED for j in seq}
    frozen = [j for j in seq if status[j] in STARTED_STATUSES]
    remaining = [j for j in seq if status[j] not in STARTED_STATUSES]
    has_fix = state is not None and state.position is not None
    left = bool(frozen) or has_fix or (route is not None and now > route.start_s)
    # Where and since when: the latest of the GPS fix and the last stop reached.
    location, location_job, at = (depot.lon, depot.lat), None, now
    # left the office when the round in force said (no stop reached yet)
    left_at = route.start_s if left and route is not None and route.start_s <= now else None
    last_seen = -math.inf
    for j in frozen:
        p = progress[j]
        seen = p.at_s if p.at_s is not None else -1
        if seen >= last_seen:
            last_seen, location, location_job = seen, (jobs[j].lon, jobs[j].lat), j
            if p.status == StopStatus.ARRIVED:  # serving it now: free when the service ends
                at = max(now, (p.at_s if p.at_s is not None else now) + jobs[j].service_s)
                left_at = None
            else:
                at = now
                left_at = p.at_s if p.at_s is not None and p.at_s <= now else None
    came_from, came_from_location, came_from_s = location_job, location, at
    # the lunch break the round in force takes between leaving there and the next stop
    leg_break = 0
    ahead = [s for s in route.stops if s.job_id not in frozen] if route is not None else []
    if (
        left_at is not None
        and ahead
        and route is not None
        and route.break_start_s is not None
        and left_at <= route.break_start_s < ahead[0].arrival_s
    ):
        leg_break = courier.break_duration_s
    on_fix = False
    if state is not None and state.position is not None:
        fix_s = state.position_s if state.position_s is not None else now
        if fix_s >= last_seen:
            location, location_job, at = state.position, None, now
            on_fix = True
    if not left:
        at = max(now, courier.shift.start_s, depot.opening.start_s)
    # What is on board: morning deliveries not handed over, pickups collected, unpaid cash.
    load = Load()
    pinned: set[str] = set()
    partner = partner if partner is not None else problem.pair_partner()
    if left:
        for j in seq:
            job, st = jobs[j], status[j]
            reached = st in (StopStatus.COMPLETED, StopStatus.ARRIVED)
            if job.loaded_at_depot and not reached:
                load = load + job.demand
                if st == StopStatus.PLANNED:
                    pinned.add(j)
            elif job.kind == "pickup" and reached:
                load = load + job.demand
                other = partner.get(j)
                if other is not None and other not in frozen:
                    pinned.add(other)
            elif job.kind == "delivery" and job.pair_id is not None and reached:
                # not below nothing: a delivery marked done after its pickup failed (the
                # citizen brought the dossier to the post office) handed over nothing carried
                load = load.serve("delivery", job.demand)
    else:
        # Not yet left: the deliveries are still to be loaded at the office, by this courier.
        pinned = {j for j in remaining if jobs[j].loaded_at_depot}
    available_until = changes.unavailable.get(courier.courier_id)
    return Standing(
        courier=courier,
        frozen=frozen,
        remaining=[j for j in remaining if j not in changes.cancelled],
        left=left,
        available_until=available_until,
        location=location,
        location_job=location_job,
        time_s=at,
        load=load,
        pinned=pinned,
        break_taken=_break_taken(courier, route, state, at),
        came_from=came_from,
        came_from_location=came_from_location,
        came_from_s=came_from_s,
        left_at_s=left_at,
        on_fix=on_fix,
        leg_break_s=leg_break,
        route=route,
        state=state,
    )


def unpair_delivered_first(jobs: Sequence[Job], done: Collection[str]) -> tuple[Job, ...]:
    """Return the jobs, a pair whose delivery is done before its pickup made two plain jobs.

    The phone may report a pair's delivery done while its pickup is still to make (the
    pickup skipped, or its tap still queued on a phone without signal). The pickup stays a
    stop of its own: the pair's order is behind us, and checking it would refuse every
    re-plan and edit of that round.
    """
    by_id = {j.job_id: j for j in jobs}
    first = {by_id[j].pair_id for j in done if j in by_id and by_id[j].kind == "delivery"} - {
        by_id[j].pair_id for j in done if j in by_id and by_id[j].kind == "pickup"
    }
    first.discard(None)
    return tuple(replace(j, pair_id=None) if j.pair_id in first else j for j in jobs)


def _break_taken(
    courier: Courier, route: Route | None, state: CourierState | None, at_s: int
) -> bool:
    if not courier.has_break or courier.break_window is None:
        return True
    if state is not None and state.break_taken is not None:
        return state.break_taken
    taken_by_plan = route is not None and route.break_start_s is not None
    if taken_by_plan and route.break_start_s + courier.break_duration_s <= at_s:  # type: ignore[union-attr,operator]
        return True
    # too late to take it now: the window has (nearly) passed
    return courier.break_window.end_s - courier.break_duration_s < at_s


# -- the day after the changes -------------------------------------------------------------------


def nearest_depot(problem: Problem, job: Job) -> str:
    """Return the post office nearest a job in a straight line (for jobs naming none)."""

    def d2(dep: Depot) -> float:
        dx = (dep.lon - job.lon) * math.cos(math.radians(job.lat))
        return dx * dx + (dep.lat - job.lat) ** 2

    return min(problem.depots, key=d2).depot_id


def _office_pickup(job: Job, depot: Depot, pair_id: str) -> Job:
    """Return the pickup at the post office of a delivery on nobody's motorbike."""
    return Job(
        job_id=f"{job.job_id}@{depot.depot_id}",
        kind="pickup",
        lon=depot.lon,
        lat=depot.lat,
        windows=(depot.opening,),
        service_s=OFFICE_PICKUP_S,
        demand=job.demand,
        priority=job.priority,
        pair_id=pair_id,
        depot_id=depot.depot_id,
        category="office_pickup",
        address=depot.name,
        note=f"collect {job.job_id}",
    )


def collected_at_office(problem: Problem, job: Job, office: str) -> tuple[Job, Job]:
    """Turn a delivery that nobody carries yet into a pair: collect at ``office``, then deliver."""
    pair_id = f"office:{job.job_id}"
    depot = problem.depot_by_id()[office]
    return _office_pickup(job, depot, pair_id), replace(job, pair_id=pair_id, depot_id=office)


# -- the search, per post office -----------------------------------------------------------------


_WORK: dict[str, Any] = {}


def _solve_office(k: int) -> tuple[int, Plan]:
    problem, durations, distances, params, guide = _WORK["offices"][k]
    plan = solve(problem, durations, distances, params=params, guide=guide)
    if any(u.reason == UnassignedReason.TIME_LIMIT for u in plan.unassigned):
        # nothing found in a small share of the time (a busy machine): once more, longer
        longer = replace(params, time_limit_s=2 * params.time_limit_s)
        plan = solve(problem, durations, distances, params=longer, guide=guide)
    return k, plan


def _solve_all(offices: list[tuple[Any, ...]], workers: int) -> list[Plan]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _WORK["offices"] = offices
    try:
        use_pool = (
            workers > 1 and len(offices) > 1 and "fork" in multiprocessing.get_all_start_methods()
        )
        if not use_pool:
            return [_solve_office(k)[1] for k in range(len(offices))]
        ctx = multiprocessing.get_context("fork")
        order = sorted(range(len(offices)), key=lambda k: -len(offices[k][0].jobs))
        with ProcessPoolExecutor(max_workers=min(workers, len(offices)), mp_context=ctx) as pool:
            done = dict(pool.map(_solve_office, order))
        return [done[k] for k in range(len(offices))]
    finally:
        _WORK.clear()


def replan(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, CourierState],
    changes: DayChanges,
    graph: CompactGraph,
    *,
    closures: Sequence[Closure] = (),
    options: ReplanOptions | None = None,
) -> Replan:
    """Re-plan the rest of a running day.

    Parameters
    ----------
    problem
        The day's problem of the plan in force.
    plan
        The plan in force (its rounds' stop order and planned times are what is kept).
    states
        Each courier's live state (couriers missing here have not started).
    changes
        New jobs, cancelled jobs, couriers stopping, new closures and the time ``now``.
    graph
        The road network of the day.
    closures
        The day's closures already in force (``changes.closures`` are added).
    options
        See :class:`ReplanOptions`.

    Returns
    -------
    Replan
        Every job of the day is frozen, on a remaining round, or unassigned with a reason.

    Raises
    ------
    InputError
        If a new job's id is already taken, or a change names an unknown courier.
    """
    opts = options or ReplanOptions()
    t0 = time.perf_counter()
    now = changes.now_s
    known = problem.job_by_id()
    couriers = problem.courier_by_id()
    partner = problem.pair_partner()
    # Cancelling one half of a pair cancels the other.
    cancelled_ids = set(changes.cancelled) | {partner[j] for j in changes.cancelled if j in partner}
    changes = replace(changes, cancelled=frozenset(cancelled_ids))
    for job in changes.new_jobs:
        if job.job_id in known:
            raise InputError(None, "job_id", job.job_id, "a job with this id is already planned")
    for cid in changes.unavailable:
        if cid not in couriers:
            raise InputError(None, "courier_id", cid, "not a courier of this plan")

    route_of = {r.courier_id: r for r in plan.routes}
    stand = {
        c.courier_id: standing(
            problem, c, route_of.get(c.courier_id), states.get(c.courier_id), changes
        )
        for c in problem.couriers
    }
    owner_before = {j: r.courier_id for r in plan.routes for j in r.job_ids}
    start_before = {s.job_id: s.start_s for r in plan.routes for s in r.stops}
    done = {j for st in stand.values() for j in st.frozen}

    # The jobs to place, each with its post office; deliveries nobody carries get an office pickup.
    office_of: dict[str, str] = {}
    extra_jobs: list[Job] = []
    orphaned: set[str] = set()  # jobs of couriers who stopped working
    dropped: list[Unassigned] = []
    for st in stand.values():  # nothing to deliver when the pickup failed
        progress = _progress(states.get(st.courier.courier_id))
        failed = {j for j in st.frozen if progress[j].status == StopStatus.FAILED}
        for j in list(st.remaining):
            other = partner.get(j)
            if other in failed and known[j].kind == "delivery":
                st.remaining.remove(j)
                st.pinned.discard(j)
                dropped.append(
                    Unassigned(j, UnassignedReason.PAIR_INCOMPLETE, f"its pickup {other} failed")
                )
    for st in stand.values():
        cid, office = st.courier.courier_id, st.courier.depot_id
        if st.available:
            for j in st.remaining:
                office_of[j] = office
            continue
        for j in st.remaining:
            if j in st.pinned and st.left:
                dropped.append(
                    Unassigned(
                        j,
                        UnassignedReason.COURIER_UNAVAILABLE,
                        f"on board courier {cid}, who stopped working",
                    )
                )
            else:
                office_of[j] = office
                orphaned.add(j)
    retry = [
        u.job_id
        for u in plan.unassigned
        if u.reason in RETRY_REASONS and u.job_id not in changes.cancelled
    ]
    fresh = [known[j] for j in retry] + list(changes.new_jobs)
    unloaded_deliveries: dict[str, str] = {}  # delivery -> office, for jobs on nobody's bike
    fresh_by_id = {j.job_id: j for j in fresh}
    for job in fresh:
        office = job.depot_id or nearest_depot(problem, job)
        if job.pair_id is not None and job.kind == "delivery" and partner.get(job.job_id):
            pickup = fresh_by_id.get(partner[job.job_id])
            if pickup is not None:  # a pair goes with its pickup's office
                office = pickup.depot_id or nearest_depot(problem, pickup)
        office_of[job.job_id] = office
        if job.loaded_at_depot:
            unloaded_deliveries[job.job_id] = office
    for j in orphaned:
        if known[j].loaded_at_depot:
            unloaded_deliveries[j] = office_of[j]
    day_jobs: list[Job] = []
    for job in [*problem.jobs, *changes.new_jobs]:
        if job.job_id in unloaded_deliveries and any(
            s.left for s in stand.values() if s.courier.depot_id == office_of[job.job_id]
        ):
            pickup, delivery = collected_at_office(problem, job, unloaded_deliveries[job.job_id])
            day_jobs.append(delivery)
            extra_jobs.append(pickup)
            office_of[pickup.job_id] = office_of[job.job_id]
        else:
            day_jobs.append(job)
    day = Problem(problem.depots, problem.couriers, (*day_jobs, *extra_jobs), day=problem.day)
    cancelled = [
        Unassigned(j, UnassignedReason.CANCELLED, "cancelled")
        for j in sorted(changes.cancelled)
        if j in known and j not in done
    ]
    kept_unassigned = [
        u
        for u in plan.unassigned
        if u.job_id not in office_of and u.job_id not in changes.cancelled
    ]

    # Snap every point once; the day's closures and the new ones are removed from the roads.
    snapper = Snapper(graph)
    positions = {
        cid: st.location
        for cid, st in stand.items()
        if st.available and st.left and st.location_job is None
    }
    if positions:
        # A fix far from every road (a track the map lacks, a poor GPS signal) cannot start a
        # round on the roads: the courier starts from the last stop they reached instead.
        ids = sorted(positions)
        fixes = snapper.snap(
            [positions[c][0] for c in ids],
            [positions[c][1] for c in ids],
            max_distance_m=opts.max_snap_m,
            warn_far=False,
        )
        for c, far in zip(ids, fixes.far, strict=True):
            if far:
                stand[c].start_at_last_stop()
                del positions[c]
    pos_ids = sorted(positions)
    lon = (
        [d.lon for d in day.depots] + [j.lon for j in day.jobs] + [positions[c][0] for c in pos_ids]
    )
    lat = (
        [d.lat for d in day.depots] + [j.lat for j in day.jobs] + [positions[c][1] for c in pos_ids]
    )
    snapped = snapper.snap(lon, lat, max_distance_m=opts.max_snap_m)
    closed = closed_edges(graph, [*closures, *changes.closures], day=problem.day, snapper=snapper)
    # Pieces are small (a few hundred points): their matrices cost less in this process than
    # in forked workers (a fork of a process holding the road hierarchy costs more than it saves).
    router = Router(graph, closed=closed, workers=1)
    nd, nj = len(day.depots), len(day.jobs)
    day_pos = {j.job_id: p for p, j in enumerate(day.jobs)}
    pos_row = {c: nd + nj + k for k, c in enumerate(pos_ids)}
    _settle_on_the_way(day, stand, now, router, snapped, day_pos, pos_row)
    for st in stand.values():
        # Settled on the way, a courier may reach their next stop only after they stop
        # working: what is on board stays with them, the rest goes to the others.
        if st.available or not st.left:
            continue
        cid = st.courier.courier_id
        for j in st.remaining:
            if j not in office_of:
                continue
            if j in st.pinned:
                del office_of[j]
                dropped.append(
                    Unassigned(
                        j,
                        UnassignedReason.COURIER_UNAVAILABLE,
                        f"on board courier {cid}, who stops working before reaching it",
                    )
                )
            else:
                orphaned.add(j)
    t_snap = time.perf_counter()

    offices = sorted(set(office_of.values()))
    work: list[tuple[Any, ...]] = []
    contexts: list[dict[str, Any]] = []
    total_jobs = max(1, len(office_of))
    pieces: list[tuple[str, list[Standing], list[str]]] = []
    for office in offices:
        members = [st for st in stand.values() if st.courier.depot_id == office]
        placed = [j for j, o in office_of.items() if o == office and j in day_pos]
        placed += [j.job_id for j in extra_jobs if office_of[j.job_id] == office]
        placed = sorted(set(placed), key=day_pos.__getitem__)
        pieces += [(office, m, p) for m, p in _split_office(day, office, members, placed)]
    cut_off: list[Unassigned] = []
    for office, members, placed in pieces:
        office_done = [j for st in members for j in st.frozen]
        ctx = _office_problem(day, office, members, placed, office_done, pos_row, day_pos)
        m = router.matrix(snapped.subset(ctx["rows"]))
        cut = _cannot_get_back(ctx, m.time_s)
        if cut:
            # A courier the day's closures cut off from their post office, or who stops working
            # before the drive back could end, gets no round (no round of theirs could end: the
            # office's whole search would find nothing). What is on board waits with them, the
            # rest goes to the others of the piece, solved without them.
            lost = {j for st, _ in cut for j in st.pinned}
            cut_off += [
                Unassigned(j, reason, f"on board courier {st.courier.courier_id}, {why}")
                for st, (reason, why) in cut
                for j in placed
                if j in st.pinned
            ]
            orphaned |= {
                j
                for st, (reason, _) in cut
                if reason == UnassignedReason.COURIER_UNAVAILABLE
                for j in st.remaining
                if j not in st.pinned
            }
            cut_couriers = [st for st, _ in cut]
            members = [st for st in members if st not in cut_couriers]
            placed = [j for j in placed if j not in lost]
            office_done = [j for st in members for j in st.frozen]
            ctx = _office_problem(day, office, members, placed, office_done, pos_row, day_pos)
            m = router.matrix(snapped.subset(ctx["rows"]))
        ctx["durations"], ctx["distances"] = m.time_s, m.distance_m
        solver_problem, s_dur, s_dist, on_board = _solver_view(ctx)
        guide = SolveGuide(
            initial={
                st.courier.courier_id: tuple(j for j in st.remaining if j in set(placed))
                for st in members
                if st.available
            },
            preferred={
                j: st.courier.courier_id for st in members if st.available for j in st.remaining
            },
            reassign_cost=opts.reassign_cost_s,
            promised_s={j: start_before[j] for j in placed if j in start_before},
            promise_slack_s=opts.promise_slack_s,
            on_board=on_board,
        )
        if not opts.keep_rounds:  # from scratch: only what is on board is a given
            guide = SolveGuide(on_board=on_board)
        work.append((solver_problem, s_dur, s_dist, len(placed), guide))
        contexts.append(ctx)
    t_matrix = time.perf_counter()
    # The limit is the wall time of the whole re-plan: the search gets what snapping and the
    # matrices left of it (at least half), shared by the pieces in proportion to their jobs;
    # they solve in parallel on ``workers`` processes. A piece gets at least a second (a tenth
    # of the search on a short re-plan: a floor of a second each made a 1 s re-plan of nine
    # post offices on one process take 9 s).
    search_s = max(0.5 * opts.time_limit_s, opts.time_limit_s - (t_matrix - t0))
    floor_s = min(PIECE_MIN_S, 0.1 * search_s)
    work = [
        (
            solver_problem,
            s_dur,
            s_dist,
            SolverParams(
                time_limit_s=max(
                    floor_s,
                    0.85 * min(search_s, search_s * opts.workers * max(1, n) / total_jobs),
                ),
                seed=opts.seed,
                objective="duration",
                use_pyvrp=False,
            ),
            guide,
        )
        for solver_problem, s_dur, s_dist, n, guide in work
    ]
    plans = _solve_all(work, opts.workers)
    t_solve = time.perf_counter()

    # Back to the day: re-time each round from its start, check it, stitch.
    routes: list[Route] = []
    unassigned: list[Unassigned] = [*dropped, *cancelled, *kept_unassigned, *cut_off]
    starts: dict[str, RouteStart] = {}
    violations: list[Violation] = []
    for ctx, solved in zip(contexts, plans, strict=True):
        office_routes, office_starts = _day_routes(ctx, solved)
        office_unassigned = [_why_left_out(u, ctx["members"], orphaned) for u in solved.unassigned]
        violations += check_plan(
            ctx["problem"],
            Plan(tuple(office_routes), tuple(office_unassigned), 0),
            ctx["durations"],
            ctx["distances"],
            starts=office_starts,
            done=ctx["done"],
        )
        routes += [_to_day_locations(r, nd, day_pos) for r in office_routes]
        unassigned += office_unassigned
        starts.update(office_starts)
    # Couriers of offices with nothing left to place keep no remaining round.
    order = {j.job_id: i for i, j in enumerate(day.jobs)}
    unassigned.sort(key=lambda u: order.get(u.job_id, -1))
    remaining = Plan(tuple(routes), tuple(unassigned), int(sum(p.objective for p in plans)))
    violations += completeness(day, remaining, done=done)
    frozen = {cid: tuple(st.frozen) for cid, st in stand.items() if st.frozen}
    owner_after = {j: cid for cid, js in frozen.items() for j in js}
    owner_after |= {s.job_id: r.courier_id for r in routes for s in r.stops}
    start_after = {s.job_id: s.start_s for r in routes for s in r.stops}
    start_after |= {j: start_before[j] for j in done if j in start_before}
    reason_after = {u.job_id: str(u.reason) for u in unassigned}
    job_changes = [
        JobChange(
            j.job_id,
            owner_before.get(j.job_id),
            owner_after.get(j.job_id),
            start_before.get(j.job_id),
            start_after.get(j.job_id),
            reason_after.get(j.job_id),
        )
        for j in day.jobs
    ]
    t_end = time.perf_counter()
    stats = {
        "now_s": now,
        "offices": len(offices),
        "pieces": len(pieces),
        "jobs_to_place": len(office_of),
        "frozen": len(done),
        "routed": sum(len(r.stops) for r in routes),
        "unassigned": len(unassigned),
        "violations": len(violations),
        "engines": [p.stats.get("engine") for p in plans],
        "timings": {
            "snap_s": round(t_snap - t0, 3),
            "matrices_s": round(t_matrix - t_snap, 3),
            "solve_s": round(t_solve - t_matrix, 3),
            "check_s": round(t_end - t_solve, 3),
            "total_s": round(t_end - t0, 3),
        },
    }
    logger.info(
        "re-planned at %s: %d jobs to place, %d routed, %d unassigned, %d violations, %.1f s",
        now,
        len(office_of),
        stats["routed"],
        len(unassigned),
        len(violations),
        t_end - t0,
    )
    return Replan(day, remaining, starts, frozen, job_changes, violations, stats)


def _why_left_out(u: Unassigned, members: list[Standing], orphaned: set[str]) -> Unassigned:
    """Say in the running day's words why the search left a job out.

    The search sees a courier who stops early as a short shift: a parcel on their motorbike
    they cannot reach before they stop, or a job of a courier who stopped that nobody else
    can take, is left out because a courier stops, not because a shift is too short.
    """
    if u.job_id in orphaned:
        why = "its courier stopped working and no other courier can take it"
        return Unassigned(u.job_id, UnassignedReason.COURIER_UNAVAILABLE, why)
    for st in members:
        if u.job_id in st.pinned and _shift_end(st) < st.courier.shift.end_s:
            cid = st.courier.courier_id
            why = f"on board courier {cid}, who stops working before they could serve it"
            return Unassigned(u.job_id, UnassignedReason.COURIER_UNAVAILABLE, why)
    return u


def _settle_on_the_way(
    day: Problem,
    stand: Mapping[str, Standing],
    now_s: int,
    router: Router,
    snapped: Snapped,
    day_pos: Mapping[str, int],
    pos_row: Mapping[str, int],
) -> None:
    """Start each courier between stops where they will be (:meth:`Standing.settle`), in place.

    One time matrix over the points involved (the last stop reached or the office, the next
    stop, the GPS fix) on the day's roads, closures removed.
    """
    way = sorted(
        cid
        for cid, st in stand.items()
        if st.available and st.on_the_way and st.remaining[0] in day_pos
    )
    if not way:
        return
    nd = len(day.depots)
    rows: list[int] = []
    where: dict[int, int] = {}

    def local(row: int) -> int:
        if row not in where:
            where[row] = len(rows)
            rows.append(row)
        return where[row]

    ends: dict[str, tuple[int, int, int | None]] = {}
    for cid in way:
        st = stand[cid]
        last = (
            nd + day_pos[st.came_from]
            if st.came_from is not None and st.came_from in day_pos
            else day.depot_index(st.courier.depot_id)
        )
        fix = local(pos_row[cid]) if st.on_fix and cid in pos_row else None
        ends[cid] = (local(last), local(nd + day_pos[st.remaining[0]]), fix)
    times = router.matrix(snapped.subset(rows), distances=False).time_s
    jobs = day.job_by_id()
    for cid in way:
        last, nxt, fix = ends[cid]
        st = stand[cid]
        if st.on_fix and fix is None:
            continue  # the fix was not routed (far from every road): handled before
        job = jobs[st.remaining[0]]
        st.settle_on(now_s, (job.lon, job.lat), times, last=last, nxt=nxt, fix=fix)


#: The search time of a piece of a re-plan of at least 10 s is never below this.
PIECE_MIN_S = 1.0

#: A post office with more jobs to place than this is re-planned in pieces: groups of its
#: couriers (by direction from the office) with their own jobs and the nearest new ones.
MAX_PIECE_JOBS = 90


def _split_office(
    day: Problem, office: str, members: list[Standing], placed: list[str]
) -> list[tuple[list[Standing], list[str]]]:
    """Cut a big office's re-plan into pieces of nearby couriers; small offices stay whole.

    Each courier's own remaining jobs stay in their piece; the other jobs (new ones, those of
    couriers who stopped, the morning's left-overs) go to the piece whose couriers work
    nearest; a pair, and a delivery's office pickup, go together.
    """
    working = [st for st in members if st.available]
    n = min(len(working), math.ceil(len(placed) / MAX_PIECE_JOBS))
    if n <= 1:
        return [(members, placed)]
    jobs = day.job_by_id()
    depot = day.depot_by_id()[office]
    here = set(placed)

    def centre(st: Standing) -> tuple[float, float]:
        own = [jobs[j] for j in st.remaining if j in here]
        if not own:
            return st.location
        return (sum(j.lon for j in own) / len(own), sum(j.lat for j in own) / len(own))

    centres = {st.courier.courier_id: centre(st) for st in working}
    order = sorted(
        working,
        key=lambda st: math.atan2(
            centres[st.courier.courier_id][1] - depot.lat,
            centres[st.courier.courier_id][0] - depot.lon,
        ),
    )
    groups = [order[k * len(order) // n : (k + 1) * len(order) // n] for k in range(n)]
    group_of: dict[str, int] = {}
    for g, group in enumerate(groups):
        for st in group:
            for j in st.remaining:
                if j in here:
                    group_of[j] = g
    partner = day.pair_partner()
    for j in placed:
        if j in group_of:
            continue
        # a pair is placed by its citizen's half (an office pickup by its delivery)
        office_pickup = jobs[j].category == "office_pickup"
        anchor = jobs[partner[j]] if j in partner and office_pickup else jobs[j]
        if anchor.job_id in group_of:
            group_of[j] = group_of[anchor.job_id]
            continue
        group_of[j] = min(
            range(n),
            key=lambda g: min(
                (centres[st.courier.courier_id][0] - anchor.lon) ** 2
                + (centres[st.courier.courier_id][1] - anchor.lat) ** 2
                for st in groups[g]
            ),
        )
    for j in placed:  # the other half of a pair joins its piece
        other = partner.get(j)
        if other is None or other not in group_of or jobs[j].kind != "pickup":
            continue
        if jobs[j].category == "office_pickup":
            group_of[j] = group_of[other]
        else:
            group_of[other] = group_of[j]
    return [(groups[g], [j for j in placed if group_of[j] == g]) for g in range(n)]


def _office_problem(
    day: Problem,
    office: str,
    members: list[Standing],
    placed: list[str],
    office_done: list[str],
    pos_row: dict[str, int],
    day_pos: dict[str, int],
) -> dict[str, Any]:
    """Return one post office's part of the day: its checked problem, rows and couriers."""
    nd = len(day.depots)
    jobs = day.job_by_id()
    available = [st for st in members if st.available and st.time_s < _shift_end(st)]
    partner = day.pair_partner()
    whole = set(placed) | set(office_done)
    # A served half stays in the problem only with its other half (a dropped delivery of a
    # collected pair is unassigned elsewhere; its served pickup has nothing to check here).
    job_ids = placed + [j for j in office_done if j not in placed and partner.get(j, j) in whole]
    office_jobs = unpair_delivered_first(
        [jobs[j] for j in sorted(job_ids, key=day_pos.__getitem__)], office_done
    )
    checked_couriers = tuple(_clipped(st) for st in available)
    problem = Problem(day.depots, checked_couriers, office_jobs, day=day.day)
    rows = list(range(nd)) + [nd + day_pos[j.job_id] for j in office_jobs]
    local_of_job = {j.job_id: nd + k for k, j in enumerate(office_jobs)}
    start_row: dict[str, int] = {}
    for st in available:
        cid = st.courier.courier_id
        if st.location_job is not None:
            start_row[cid] = local_of_job.get(st.location_job, -1)
            if start_row[cid] < 0:  # standing at a stop of another office's problem
                rows.append(nd + day_pos[st.location_job])
                start_row[cid] = len(rows) - 1
        elif cid in pos_row:
            rows.append(pos_row[cid])
            start_row[cid] = len(rows) - 1
        else:
            start_row[cid] = day.depot_index(st.courier.depot_id)
    return {
        "office": office,
        "problem": problem,
        "members": available,
        "placed": placed,
        "done": set(office_done),
        "rows": rows,
        "start_row": start_row,
    }


def _cannot_get_back(
    ctx: dict[str, Any], durations: npt.NDArray[np.int64]
) -> list[tuple[Standing, tuple[UnassignedReason, str]]]:
    """Return the couriers of a piece whose round cannot end, each with why.

    Cut off from their post office by closures (``unreachable``), or standing farther from it
    than the time they still work (``courier_unavailable``): a courier who stops at 15:08
    twenty minutes out serves nothing more today.
    """
    problem: Problem = ctx["problem"]
    late: list[tuple[Standing, tuple[UnassignedReason, str]]] = []
    for st in ctx["members"]:
        home = problem.depot_index(st.courier.end_depot)
        drive = int(durations[ctx["start_row"][st.courier.courier_id], home])
        if drive >= UNREACHABLE:
            late.append((st, (UnassignedReason.UNREACHABLE, "cut off from the post office")))
        elif st.time_s + drive > _shift_end(st):
            why = "who stops working before they could get back to the post office"
            late.append((st, (UnassignedReason.COURIER_UNAVAILABLE, why)))
    return late


def _shift_end(st: Standing) -> int:
    end = st.courier.shift.end_s
    if st.available_until is not None:
        end = min(end, st.available_until)
    return end


def _clipped(st: Standing) -> Courier:
    """Return the courier as the rest of the day sees them: shift from now, break if still due."""
    c = st.courier
    end = _shift_end(st)
    bw, brk = c.break_window, c.break_duration_s
    if st.break_taken or bw is None:
        bw, brk = None, 0
    elif bw.start_s < st.time_s:  # still due: from now to the end of its window
        bw = TimeWindow(st.time_s, max(st.time_s, bw.end_s))
    return replace(
        c, shift=TimeWindow(min(st.time_s, end), end), break_window=bw, break_duration_s=brk
    )


def _solver_view(
    ctx: dict[str, Any],
) -> tuple[Problem, npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, Load]]:
    """Return the office's problem as the solver sees it, and what each courier carries.

    Each courier starts at a depot of their own (where they stand, at their time) and ends
    at their post office; jobs only one courier can serve (on board, or to be loaded by them)
    name that courier's start; a pair whose pickup is done becomes a plain delivery on board.
    A courier on the road starts with what they carry (:attr:`SolveGuide.on_board`, returned
    by courier id): a delivery handed over frees its room, one the search leaves out stays on
    the motorbike, collected pickups and unpaid cash stay until the end of the round.
    """
    problem: Problem = ctx["problem"]
    members: list[Standing] = ctx["members"]
    done: set[str] = ctx["done"]
    nd = len(problem.depots)
    durations: npt.NDArray[np.int64] = ctx["durations"]
    distances: npt.NDArray[np.int64] = ctx["distances"]
    jobs = problem.job_by_id()
    partner = problem.pair_partner()
    starts_of = {st.courier.courier_id: f"@{st.courier.courier_id}" for st in members}
    checked = problem.courier_by_id()
    start_depots: list[Depot] = []
    start_rows: list[int] = []
    couriers: list[Courier] = []
    pin: dict[str, str] = {}
    on_board: dict[str, Load] = {}
    for st in members:
        cid = st.courier.courier_id
        row = ctx["start_row"][cid]
        lon, lat = st.location
        start_depots.append(Depot(starts_of[cid], cid, lon, lat, TimeWindow(0, 2 * 86400)))
        start_rows.append(row)
        for j in st.pinned:
            if j in jobs and j not in done:
                pin[j] = starts_of[cid]
        if st.left:
            on_board[cid] = st.load
        home = checked[cid].end_depot
        couriers.append(replace(checked[cid], depot_id=starts_of[cid], end_depot_id=home))
    solver_jobs: list[Job] = []
    rows: list[int] = []
    for k, job in enumerate(problem.jobs):
        if job.job_id in done:
            continue
        new = replace(job, depot_id=pin.get(job.job_id))
        other = partner.get(job.job_id)
        if job.kind == "delivery" and other is not None and other in done:
            new = replace(new, pair_id=None)  # collected already: on board its courier
        solver_jobs.append(new)
        rows.append(nd + k)
    solver = Problem(
        (*problem.depots, *start_depots), tuple(couriers), tuple(solver_jobs), day=problem.day
    )
    idx = np.asarray(list(range(nd)) + start_rows + rows, dtype=np.int64)
    return solver, durations[np.ix_(idx, idx)], distances[np.ix_(idx, idx)], on_board


def _day_routes(ctx: dict[str, Any], solved: Plan) -> tuple[list[Route], dict[str, RouteStart]]:
    """Re-time the solver's rounds on the office's problem from each courier's start."""
    problem: Problem = ctx["problem"]
    members = {st.courier.courier_id: st for st in ctx["members"]}
    couriers = problem.courier_by_id()
    pos_of = {j.job_id: p for p, j in enumerate(problem.jobs)}
    routes: list[Route] = []
    starts: dict[str, RouteStart] = {}
    for cid, st in members.items():
        on_board = st.load if st.left else Load()
        starts[cid] = RouteStart(
            ctx["start_row"][cid], st.time_s, on_board, st.break_taken, st.left
        )
    for route in solved.routes:
        st = members[route.courier_id]
        positions = [pos_of[s.job_id] for s in route.stops]
        begin = starts[route.courier_id]
        if not st.left:  # loads the round's deliveries at the office
            begin = replace(begin, load=problem.start_load([s.job_id for s in route.stops]))
            starts[route.courier_id] = begin
        routes.append(
            build_route(
                problem,
                couriers[route.courier_id],
                positions,
                [s.start_s for s in route.stops],
                start_s=max(route.start_s, begin.time_s),
                end_s=route.end_s,
                break_start_s=route.break_start_s,
                durations=ctx["durations"],
                distances=ctx["distances"],
                start=begin,
            )
        )
    return routes, starts


def _to_day_locations(route: Route, nd: int, day_pos: dict[str, int]) -> Route:
    """Return a route whose stops' location indices are the day's (depots, then jobs)."""
    stops = tuple(replace(s, location_idx=nd + day_pos[s.job_id]) for s in route.stops)
    return replace(route, stops=stops)
