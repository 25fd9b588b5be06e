"""Simulate how a planned day actually goes: arrivals, completions and failed attempts.

Managers measure delivery times on what *happened*, not on what was planned. Until the
service records real stop events, this module produces realistic ones from a plan, seeded
and deterministic: the same plan and seed always give the same events.

The model, stop by stop along each round
----------------------------------------
**Travel.** Each leg takes its planned travel time times

- the courier's pace that day (log-normal, sigma ``pace_sigma``: some ride faster),
- leg noise (log-normal, sigma ``leg_sigma``; ``rough_leg_sigma`` on rough legs),
- ``rough_leg_factor`` on rough legs: the stop lies more than ``rough_distance_m``
  (straight line) from the courier's post office, or the leg's planned speed is below
  ``rough_speed_kph`` -- villages reached on mountain roads and unpaved tracks,
- on a rain day ``rain_factor`` (``rain_rough_factor`` on rough legs). Rain days come with
  probability ``rain_prob_wet`` in the rainy season (May-November) and ``rain_prob_dry``
  otherwise,

capped at ``max_leg_factor`` times the planned time, plus, with probability
``incident_prob``, an incident (puncture, waiting at a ford, a herd on the road) of
``incident_min`` minutes. The planned lunch break is taken on the leg the
plan puts it on. Delays carry over to every later stop, so the spread of arrival times grows
along the route.

**At the stop.** A courier who arrives before a window opens waits for it (an appointment,
or the end of the lunch gap); one who arrives after the last window knocks anyway (late).
Service takes the planned time times log-normal noise (``service_sigma``).

**Failure.** A stop fails with probability :func:`failure_probability`: a base rate per
category (:data:`BASE_FAIL_PROB`; pension payouts are awaited at home and rarely fail, the
one-stop centre almost never), times 1.6 for an afternoon attempt at a home, 2.5 over the
lunch hours (11:30-13:30, homes are empty), 1.5 outside the promised windows and 1.2 in
rain. The reason is drawn from :data:`REASON_WEIGHTS` (mostly ``nobody_home``). Before that,
a rough leg may be cut (``road_closed``: landslide, flood; ``road_closed_prob_rain`` or
``road_closed_prob_dry``): the courier turns back and never arrives. The delivery half of a
pickup-delivery pair fails with ``pickup_failed`` when its pickup failed. Stops the courier
would reach after ``cutoff_s`` (18:30) are not attempted (``out_of_time``).

**Proof.** A completed stop records who signed (``recipient_name``: the recipient, or
sometimes a relative with authorisation), ``id_checked=True`` exactly when the job needs
``id_check`` and ``cash_paid_vnd`` exactly when it is a cash payout; a failed stop records
none of them. No GPS positions are produced.

Times are integer seconds since local midnight (Asia/Ho_Chi_Minh), as in :mod:`routing.plan`.
:func:`simulate_month` plans and simulates a month of working days and returns one tidy
:class:`pandas.DataFrame` row per attempt (see :data:`routing.reports.MONTH_COLUMNS`); with
``territory=True`` each day prefers the usual courier of each commune, learned from the days
before it (:mod:`routing.territory`), and ``on_day`` sees every planned day.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from routing.eta import haversine_m
from routing.reports import day_rows, load_frame, month_frame, save_frame
from routing.vocabulary import FailReason

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy.typing as npt
    import pandas as pd

    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince
    from routing.model import Courier, Job, Problem
    from routing.plan import Plan, Route, Stop, Unassigned
    from routing.planner import DayPlan
    from routing.territory import Territory

logger = logging.getLogger(__name__)

EventKind = Literal["arrived", "completed", "failed"]
Outcome = Literal["completed", "failed"]

#: Base failure probability of an attempt, per job category (before time/rain factors).
BASE_FAIL_PROB: dict[str, float] = {
    "dossier_pickup": 0.05,
    "result_return": 0.07,
    "licence_return": 0.07,
    "pension_payout": 0.02,
    "ems_delivery": 0.08,
    "parcel_pickup": 0.04,
    "dossier_transfer": 0.05,
}
DEFAULT_FAIL_PROB = 0.06
#: Failure probability at the one-stop administrative centre (an office, always staffed).
OFFICE_FAIL_PROB = 0.003

#: Weights of the failure reasons given a failure at the door (road closures are separate).
REASON_WEIGHTS: dict[str, dict[str, float]] = {
    "default": {"nobody_home": 0.70, "wrong_address": 0.15, "refused": 0.15},
    "pension_payout": {"nobody_home": 0.85, "wrong_address": 0.10, "refused": 0.05},
    "pickup": {"nobody_home": 0.80, "wrong_address": 0.10, "refused": 0.10},
    "office": {"refused": 1.0},
}

LUNCH_START_S = 11 * 3600 + 1800
LUNCH_END_S = 13 * 3600 + 1800
AFTERNOON_S = 13 * 3600


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """Knobs of the simulation; the defaults are the documented model (module docstring).

    Parameters
    ----------
    pace_sigma
        Spread of a courier's daily pace (log-normal sigma).
    leg_sigma, rough_leg_sigma
        Spread of one leg's travel time, ordinary and rough legs.
    rough_leg_factor
        Extra travel time on rough legs (mountain roads, tracks).
    rough_distance_m
        A stop farther than this (straight line) from the post office is reached on rough legs.
    rough_speed_kph
        A leg planned slower than this on average is rough.
    rain_factor, rain_rough_factor
        Travel-time factor on a rain day, ordinary and rough legs.
    rain_prob_wet, rain_prob_dry
        Probability of a rain day in the rainy season (May-November) and otherwise.
    max_leg_factor
        Cap on the product of the factors above (a leg takes at most this many times its
        planned time, before incidents).
    incident_prob
        Probability of an incident on a leg.
    incident_min
        Range of an incident's delay, minutes.
    service_sigma
        Spread of the time spent at a stop.
    road_closed_prob_rain, road_closed_prob_dry
        Probability that a rough leg is cut, on a rain day and otherwise.
    relative_prob
        Probability that a relative (with authorisation) signs instead of the recipient.
    cutoff_s
        Stops not reached by this time (seconds since midnight) are not attempted.
    """

    pace_sigma: float = 0.08
    leg_sigma: float = 0.12
    rough_leg_sigma: float = 0.2
    rough_leg_factor: float = 1.15
    rough_distance_m: float = 5000.0
    rough_speed_kph: float = 22.0
    rain_factor: float = 1.1
    rain_rough_factor: float = 1.3
    rain_prob_wet: float = 0.3
    rain_prob_dry: float = 0.08
    max_leg_factor: float = 2.0
    incident_prob: float = 0.02
    incident_min: tuple[int, int] = (10, 40)
    service_sigma: float = 0.3
    road_closed_prob_rain: float = 0.04
    road_closed_prob_dry: float = 0.003
    relative_prob: float = 0.15
    cutoff_s: int = 18 * 3600 + 1800

    def __post_init__(self) -> None:
        for name in ("rain_prob_wet", "rain_prob_dry", "incident_prob", "relative_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                msg = f"{name} must be a probability, got {value}"
                raise ValueError(msg)
        if self.incident_min[0] > self.incident_min[1] or self.incident_min[0] < 0:
            msg = f"incident_min must be an increasing non-negative range, got {self.incident_min}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class StopEvent:
    """One event of a stop, as a courier's phone would report it (without GPS).

    Parameters
    ----------
    courier_id, job_id
        Who and what.
    seq
        Position of the stop on the route (1-based).
    event
        ``arrived``, then ``completed`` or ``failed`` (a stop never reached has only ``failed``).
    at_s
        When, seconds since local midnight.
    reason
        Failure reason (:class:`~routing.vocabulary.FailReason`) of a ``failed`` event.
    recipient_name, id_checked, cash_paid_vnd
        Proof of a ``completed`` event (see :class:`StopOutcome`).
    """

    courier_id: str
    job_id: str
    seq: int
    event: EventKind
    at_s: int
    reason: FailReason | None = None
    recipient_name: str | None = None
    id_checked: bool | None = None
    cash_paid_vnd: int | None = None


@dataclass(frozen=True, slots=True)
class StopOutcome:
    """How one planned stop went.

    Parameters
    ----------
    job_id, courier_id, depot_id
        The job, its courier and the courier's post office.
    seq
        Position on the route (1-based).
    planned_arrival_s, planned_start_s
        From the plan.
    arrived_s
        Actual arrival; ``None`` when the courier never got there.
    service_start_s
        When the courier knocked (after waiting for an early window); ``None`` if not arrived.
    finished_s
        When the stop ended: service end, or the moment the attempt was given up.
    outcome
        ``completed`` or ``failed``.
    fail_reason
        One of :class:`~routing.vocabulary.FailReason` for a failed stop, else ``None``.
    recipient_name
        Who signed (completed only).
    id_checked
        ``True`` for a completed stop of a job needing ``id_check``, else ``None``.
    cash_paid_vnd
        Cash paid at the door for a completed payout, else ``None``.
    rough_leg
        Whether the leg to the stop was rough (mountain road or track).
    on_time
        Completed with service starting inside one of the job's windows.
    """

    job_id: str
    courier_id: str
    depot_id: str
    seq: int
    planned_arrival_s: int
    planned_start_s: int
    arrived_s: int | None
    service_start_s: int | None
    finished_s: int
    outcome: Outcome
    fail_reason: FailReason | None
    recipient_name: str | None
    id_checked: bool | None
    cash_paid_vnd: int | None
    rough_leg: bool
    on_time: bool

    @property
    def arrival_delay_s(self) -> int | None:
        """Actual minus planned arrival (negative when early); ``None`` if never arrived."""
        return None if self.arrived_s is None else self.arrived_s - self.planned_arrival_s


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    """A simulated day: one outcome per planned stop, the events, and the unplanned jobs.

    Parameters
    ----------
    day
        The plan day, if known.
    rain
        Whether it rained.
    outcomes
        One per stop of the plan, in route order.
    events
        The stop events, in route order (per stop: ``arrived`` then a terminal event).
    unassigned
        The plan's unassigned jobs (never attempted).
    """

    day: date | None
    rain: bool
    outcomes: tuple[StopOutcome, ...]
    events: tuple[StopEvent, ...]
    unassigned: tuple[Unassigned, ...] = field(default=())


def failure_probability(job: Job, begin_s: int, *, rain: bool) -> float:
    """Return the probability that an attempt at ``begin_s`` fails at the door.

    Base rate per category (:data:`BASE_FAIL_PROB`), times 1.6 for an afternoon delivery to
    a home (not for pickups, which the citizen asked for, nor payouts, which are awaited),
    2.5 over lunch (11:30-13:30), 1.5 outside the job's windows and 1.2 in rain; capped at
    0.9. The one-stop centre fails with :data:`OFFICE_FAIL_PROB`.

    Parameters
    ----------
    job
        The job.
    begin_s
        When the courier knocks, seconds since local midnight.
    rain
        Whether it rains that day.

    Returns
    -------
    float
        A probability in [0, 0.9].
    """
    if job.is_office_stop:
        return OFFICE_FAIL_PROB
    p = BASE_FAIL_PROB.get(job.category, DEFAULT_FAIL_PROB)
    home_delivery = job.kind == "delivery" and job.category != "pension_payout"
    if home_delivery and begin_s >= AFTERNOON_S:
        p *= 1.6
    if LUNCH_START_S <= begin_s < LUNCH_END_S:
        p *= 2.5
    if not job.in_window(begin_s):
        p *= 1.5
    if rain:
        p *= 1.2
    return min(p, 0.9)


def _reason_weights(job: Job) -> dict[str, float]:
    if job.is_office_stop:
        return REASON_WEIGHTS["office"]
    if job.category == "pension_payout":
        return REASON_WEIGHTS["pension_payout"]
    if job.kind == "pickup":
        return REASON_WEIGHTS["pickup"]
    return REASON_WEIGHTS["default"]


def _lognormal(rng: np.random.Generator, sigma: float) -> float:
    """Return a log-normal factor with median 1 (mean slightly above 1)."""
    return float(math.exp(rng.normal(0.0, sigma))) if sigma > 0 else 1.0


def is_rain_day(day: date | None, rng: np.random.Generator, params: SimulationParams) -> bool:
    """Draw whether it rains on ``day`` (rainy season May-November)."""
    wet = day is not None and 5 <= day.month <= 11
    return bool(rng.random() < (params.rain_prob_wet if wet else params.rain_prob_dry))


def _simulate_route(
    problem: Problem,
    route: Route,
    *,
    rng: np.random.Generator,
    rain: bool,
    leg_distance_m: Callable[[int, int], float],
    params: SimulationParams,
) -> tuple[list[StopOutcome], list[StopEvent]]:
    """Simulate one round; locations are indices into ``problem`` (depots first)."""
    jobs = problem.job_by_id()
    depot = problem.depot_by_id()[route.depot_id]
    prev_loc = problem.depot_index(route.depot_id)
    pace = _lognormal(rng, params.pace_sigma)
    brk = route.break_duration_s if route.break_start_s is not None else 0
    t = float(route.start_s)  # actual clock
    planned_prev_dep = route.start_s
    failed_pairs: set[str] = set()
    outcomes: list[StopOutcome] = []
    events: list[StopEvent] = []
    for seq, stop in enumerate(route.stops, start=1):
        job = jobs[stop.job_id]
        # the plan puts the lunch break either on the way here (it ends before the arrival)
        # or at this stop while waiting for the window (it starts at or after the arrival)
        on_break_leg = (
            route.break_start_s is not None
            and planned_prev_dep <= route.break_start_s
            and route.break_start_s + brk <= stop.arrival_s
        )
        break_at_stop = (
            route.break_start_s is not None
            and not on_break_leg
            and stop.arrival_s <= route.break_start_s < stop.start_s
        )
        travel_planned = max(0, stop.arrival_s - planned_prev_dep - (brk if on_break_leg else 0))
        planned_prev_dep = stop.departure_s
        dist = leg_distance_m(prev_loc, stop.location_idx)
        from_office = haversine_m(depot.lon, depot.lat, job.lon, job.lat)
        speed_kph = dist / travel_planned * 3.6 if travel_planned > 0 else 99.0
        rough = from_office > params.rough_distance_m or (
            dist > 500 and speed_kph < params.rough_speed_kph
        )
        # draw every random number of the stop in a fixed order, used or not, so that one
        # stop's outcome does not shift the draws of the next ones
        u_leg = rng.normal(0.0, 1.0)
        u_incident, incident_min = rng.random(), rng.uniform(*params.incident_min)
        u_closed, u_fail, u_reason, u_relative = rng.random(4)
        u_service = rng.normal(0.0, 1.0)
        sigma = params.rough_leg_sigma if rough else params.leg_sigma
        factor = pace * math.exp(sigma * u_leg)
        if rough:
            factor *= params.rough_leg_factor
        if rain:
            factor *= params.rain_rough_factor if rough else params.rain_factor
        travel = travel_planned * min(factor, params.max_leg_factor)
        if u_incident < params.incident_prob:
            travel += incident_min * 60
        if on_break_leg:
            t += brk
        prev_loc = stop.location_idx

        def fail(
            at_s: int,
            reason: FailReason,
            arrived: int | None = None,
            begin: int | None = None,
            *,
            job: Job = job,
            seq: int = seq,
            stop: Stop = stop,
            rough: bool = rough,
        ) -> StopOutcome:
            events.append(
                StopEvent(route.courier_id, job.job_id, seq, "failed", at_s, reason=reason)
            )
            if job.pair_id is not None and job.kind == "pickup":
                failed_pairs.add(job.pair_id)
            return StopOutcome(
                job_id=job.job_id,
                courier_id=route.courier_id,
                depot_id=route.depot_id,
                seq=seq,
                planned_arrival_s=stop.arrival_s,
                planned_start_s=stop.start_s,
                arrived_s=arrived,
                service_start_s=begin,
                finished_s=at_s,
                outcome="failed",
                fail_reason=reason,
                recipient_name=None,
                id_checked=None,
                cash_paid_vnd=None,
                rough_leg=rough,
                on_time=False,
            )

        if job.pair_id is not None and job.kind == "delivery" and job.pair_id in failed_pairs:
            outcomes.append(fail(round(t), FailReason.PICKUP_FAILED))
            continue
        if t + travel > params.cutoff_s:
            outcomes.append(fail(round(t), FailReason.OUT_OF_TIME))
            continue
        closed_p = params.road_closed_prob_rain if rain else params.road_closed_prob_dry
        if rough and u_closed < closed_p:
            # rode up to the cut and back: about the leg's travel time, and no arrival
            t += travel
            outcomes.append(fail(round(t), FailReason.ROAD_CLOSED))
            continue
        t += travel
        arrived = round(t)
        events.append(StopEvent(route.courier_id, job.job_id, seq, "arrived", arrived))
        # early for a window (an appointment, or the afternoon opening): wait for it
        ready = arrived + brk if break_at_stop else arrived
        opening = job.earliest_start_from(ready)
        begin = ready if opening is None else opening
        p_fail = failure_probability(job, begin, rain=rain)
        if u_fail < p_fail:
            weights = _reason_weights(job)
            codes = list(weights)
            cum = np.cumsum([weights[c] for c in codes])
            reason = FailReason(codes[int(np.searchsorted(cum / cum[-1], u_reason))])
            # a failed attempt still takes a couple of minutes (knocking, calling, a note)
            t = begin + min(job.service_s, 180)
            outcomes.append(fail(round(t), reason, arrived, begin))
            continue
        service = job.service_s * math.exp(params.service_sigma * u_service)
        t = begin + service
        done = round(t)
        signer = job.recipient or "Người nhận"
        if not job.is_office_stop and u_relative < params.relative_prob and job.recipient:
            signer = f"Người nhà của {job.recipient} (ủy quyền)"
        id_checked = True if job.needs_id_check else None
        cash = job.payout_vnd if job.is_payout else None
        events.append(
            StopEvent(
                route.courier_id,
                job.job_id,
                seq,
                "completed",
                done,
                recipient_name=signer,
                id_checked=id_checked,
                cash_paid_vnd=cash,
            )
        )
        outcomes.append(
            StopOutcome(
                job_id=job.job_id,
                courier_id=route.courier_id,
                depot_id=route.depot_id,
                seq=seq,
                planned_arrival_s=stop.arrival_s,
                planned_start_s=stop.start_s,
                arrived_s=arrived,
                service_start_s=begin,
                finished_s=done,
                outcome="completed",
                fail_reason=None,
                recipient_name=signer,
                id_checked=id_checked,
                cash_paid_vnd=cash,
                rough_leg=rough,
                on_time=job.in_window(begin),
            )
        )
    return outcomes, events


def _straight_distance(problem: Problem) -> Callable[[int, int], float]:
    """Leg distance from coordinates: straight line times a detour factor of 1.3."""
    points = [(d.lon, d.lat) for d in problem.depots] + [(j.lon, j.lat) for j in problem.jobs]

    def distance(a: int, b: int) -> float:
        return 1.3 * haversine_m(*points[a], *points[b])

    return distance


def simulate_plan(
    problem: Problem,
    plan: Plan,
    *,
    seed: int,
    distances: npt.NDArray[np.int64] | None = None,
    rain: bool | None = None,
    params: SimulationParams | None = None,
) -> SimulatedDay:
    """Simulate how a plan of ``problem`` goes.

    Parameters
    ----------
    problem
        The problem the plan solves; its location order indexes ``distances``.
    plan
        The plan (routes and unassigned jobs).
    seed
        Random seed; the same plan and seed give the same day.
    distances
        Road distances (m) between locations, to spot slow legs; straight lines times 1.3
        when ``None``.
    rain
        Force a rain day (or a dry one); drawn from the season when ``None``.
    params
        Model knobs, :class:`SimulationParams` by default.

    Returns
    -------
    SimulatedDay
        One outcome per planned stop, the stop events and the plan's unassigned jobs.
    """
    prm = params or SimulationParams()
    day_rng = np.random.default_rng([seed, 0])
    is_rain = is_rain_day(problem.day, day_rng, prm) if rain is None else rain
    courier_pos = {c.courier_id: i for i, c in enumerate(problem.couriers)}
    leg: Callable[[int, int], float] = _straight_distance(problem)
    if distances is not None:
        dist_matrix = distances

        def leg(a: int, b: int) -> float:
            return float(dist_matrix[a, b])

    outcomes: list[StopOutcome] = []
    events: list[StopEvent] = []
    for route in plan.routes:
        rng = np.random.default_rng([seed, 1, courier_pos.get(route.courier_id, 0)])
        o, e = _simulate_route(
            problem, route, rng=rng, rain=is_rain, leg_distance_m=leg, params=prm
        )
        outcomes += o
        events += e
    return SimulatedDay(problem.day, is_rain, tuple(outcomes), tuple(events), plan.unassigned)


def simulate_day(
    day_plan: DayPlan,
    *,
    seed: int,
    rain: bool | None = None,
    params: SimulationParams | None = None,
) -> SimulatedDay:
    """Simulate a day planned by :func:`routing.planner.plan_day`.

    Each piece is simulated on the road distances it was solved with; couriers draw from
    their own seeded streams (keyed by their position in the day's problem), so the result
    does not depend on how the day was split.

    Parameters
    ----------
    day_plan
        The planned day.
    seed
        Random seed.
    rain
        Force a rain day (or a dry one); drawn from the season when ``None``.
    params
        Model knobs.

    Returns
    -------
    SimulatedDay
        Outcomes in the order of ``day_plan.plan.routes``.
    """
    prm = params or SimulationParams()
    problem = day_plan.problem
    day_rng = np.random.default_rng([seed, 0])
    is_rain = is_rain_day(problem.day, day_rng, prm) if rain is None else rain
    courier_pos = {c.courier_id: i for i, c in enumerate(problem.couriers)}
    by_courier: dict[str, tuple[list[StopOutcome], list[StopEvent]]] = {}
    for result in day_plan.pieces:
        sub = result.piece.problem
        matrix = result.distances

        def leg(a: int, b: int, m: npt.NDArray[np.int64] = matrix) -> float:
            return float(m[a, b])

        for route in result.plan.routes:
            rng = np.random.default_rng([seed, 1, courier_pos.get(route.courier_id, 0)])
            by_courier[route.courier_id] = _simulate_route(
                sub, route, rng=rng, rain=is_rain, leg_distance_m=leg, params=prm
            )
    outcomes: list[StopOutcome] = []
    events: list[StopEvent] = []
    for route in day_plan.plan.routes:
        o, e = by_courier.get(route.courier_id, ([], []))
        outcomes += o
        events += e
    logger.debug(
        "simulated %s: %d stops, %d failed, rain=%s",
        problem.day,
        len(outcomes),
        sum(1 for o in outcomes if o.outcome == "failed"),
        is_rain,
    )
    return SimulatedDay(
        problem.day, is_rain, tuple(outcomes), tuple(events), day_plan.plan.unassigned
    )


def _before_planning(requested: datetime | None, day: date) -> datetime | None:
    """Move a request made on the plan day (or later) to the day before, same clock time.

    A day is planned in the morning, so only requests received before it can be on it.
    """
    if requested is None or requested.date() < day:
        return requested
    return requested - timedelta(days=(requested.date() - day).days + 1)


def working_days(start: date, count: int) -> list[date]:
    """Return ``count`` working days (Monday to Saturday) from ``start`` on."""
    out: list[date] = []
    d = start
    while len(out) < count:
        if d.weekday() != 6:
            out.append(d)
        d += timedelta(days=1)
    return out


#: Largest piece of a simulated day: small pieces find good plans in a short search.
MONTH_PIECE_JOBS = 40

#: Failures and unassigned reasons after which a job is tried again the next working day.
RETRY_REASONS: frozenset[str] = frozenset(
    {"nobody_home", "road_closed", "out_of_time", "dropped_low_priority", "no_courier"}
)


@dataclass(frozen=True, slots=True)
class MonthDay:
    """One planned and simulated day of :func:`simulate_month`, for ``on_day`` observers.

    Parameters
    ----------
    day_plan
        The planned day (its problem holds the day's jobs, retries included).
    sim
        Its simulation.
    areas
        Area (commune or zone) of each job id, pairs following their pickup.
    territory
        Usual couriers learned from the days before this one (empty on the first day).
    preferred
        Preferred courier per job id given to the planner (empty without ``territory``).
    """

    day_plan: DayPlan
    sim: SimulatedDay
    areas: dict[str, str | None]
    territory: Territory
    preferred: dict[str, str]


def simulate_month(
    province: SyntheticProvince,
    *,
    days: int = 26,
    jobs_per_day: int = 120,
    seed: int = 0,
    time_limit_s: float = 0.5,
    start: date = date(2026, 11, 2),
    couriers_per_day: int | None = None,
    max_attempts: int = 3,
    workers: int = 2,
    graph: CompactGraph | None = None,
    params: SimulationParams | None = None,
    cache_path: Path | str | None = None,
    couriers: Sequence[Courier] | None = None,
    communes: gpd.GeoDataFrame | None = None,
    territory: bool = False,
    history_days: int = 10,
    territory_cost_s: int | None = None,
    on_day: Callable[[MonthDay], None] | None = None,
) -> pd.DataFrame:
    """Plan and simulate a month of working days on a synthetic province.

    Each working day (Monday to Saturday) gets fresh jobs from
    :func:`routing.scenario.make_day`, plus the jobs to try again: unpaired jobs that failed
    for a reason in :data:`RETRY_REASONS` or were left unplanned for lack of couriers come back
    the next working day with a higher priority, up to ``max_attempts`` days. The day is
    planned with :func:`routing.planner.plan_day` (short time limit, no road geometry) and
    simulated with :func:`simulate_day`.

    The simulation is deterministic for a plan and seed; the plans themselves come from a
    time-limited search, so a rerun on a busier machine may plan (and so simulate) slightly
    differently. Use ``cache_path`` to keep one month.

    Parameters
    ----------
    province
        From :func:`geodata.synthetic.make_province`.
    days
        Number of working days.
    jobs_per_day
        New jobs per day (a pickup-delivery pair counts as two).
    seed
        Random seed of the jobs, the searches and the simulation.
    time_limit_s
        Search time per piece of a day (:class:`routing.planner.PlanOptions`).
    start
        First day; Sundays are skipped.
    couriers_per_day
        Couriers over all post offices; one per eight new jobs by default (retries add work).
    max_attempts
        Days a job is tried before it is given up.
    workers
        Processes for solving.
    graph
        The province's compact graph (built from ``province.graph`` when ``None``).
    params
        Simulation knobs.
    cache_path
        A ``.csv`` or ``.parquet`` file: loaded when it exists, else written after the run.
    couriers
        The same couriers every day (a fixed roster); drawn with each day's jobs when None.
    communes
        Commune polygons with ``zone_id`` and ``depot_id``
        (:func:`geodata.synthetic.make_communes`): jobs' ``zone_id`` is their commune
        instead of their office's zone.
    territory
        Prefer each commune's usual courier (:mod:`routing.territory`), learned from the
        plans of the last ``history_days`` days before each day.
    history_days
        Days the usual couriers are learned from.
    territory_cost_s
        Cost of serving a job with another courier than its usual one
        (:attr:`routing.planner.PlanOptions.territory_cost_s` when None).
    on_day
        Called with each planned and simulated day (:class:`MonthDay`).

    Returns
    -------
    pandas.DataFrame
        One row per job and attempt day, columns :data:`routing.reports.MONTH_COLUMNS`; the job id is prefixed
        with the day it was first requested for (``1102-J0007``).
    """
    if cache_path is not None and Path(cache_path).is_file():
        df = load_frame(cache_path)
        logger.info("loaded %d rows from %s", len(df), cache_path)
        return df
    from geodata.compact import compact_graph
    from geodata.zones import assign_zones
    from routing.errors import SolverError
    from routing.model import Problem
    from routing.planner import PlanOptions, plan_day
    from routing.scenario import make_day
    from routing.territory import job_areas, learn_territory, preferred_couriers, served_by

    g = graph if graph is not None else compact_graph(province.graph)
    areas_gdf = communes if communes is not None else province.zones
    depot_of_zone = dict(zip(areas_gdf["zone_id"], areas_gdf["depot_id"].astype(str), strict=True))
    history: list[tuple[dict[str, str], dict[str, str | None]]] = []
    carried: list[Job] = []
    attempts: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    n_couriers = couriers_per_day or max(len(province.depots), round(jobs_per_day / 8))
    for k, day in enumerate(working_days(start, days)):
        scenario = make_day(
            province,
            n_jobs=jobs_per_day,
            n_couriers=n_couriers,
            seed=seed * 1000 + k,
            day=day,
            impossible=False,
        )
        prefix = f"{day:%m%d}-"
        fresh = [
            replace(
                j,
                job_id=prefix + j.job_id,
                pair_id=prefix + j.pair_id if j.pair_id else None,
                requested_at=_before_planning(j.requested_at, day),
            )
            for j in scenario.problem.jobs
        ]
        for j in fresh:
            attempts[j.job_id] = 1
        todays = carried + fresh
        zones = assign_zones(areas_gdf, [j.lon for j in todays], [j.lat for j in todays])
        todays = [replace(j, zone_id=z) for j, z in zip(todays, zones.zone_id, strict=True)]
        roster = tuple(couriers) if couriers is not None else scenario.problem.couriers
        areas = job_areas(todays)
        learned = learn_territory(history[-history_days:] if history_days > 0 else [])
        preferred = (
            preferred_couriers(learned, areas, [c.courier_id for c in roster]) if territory else {}
        )
        problem = Problem(
            depots=scenario.problem.depots,
            couriers=roster,
            jobs=tuple(todays),
            day=day,
            name=f"Kon Tum {day.isoformat()}",
        )
        options = PlanOptions(
            piece_time_limit_s=time_limit_s,
            seed=seed + k,
            workers=workers,
            max_jobs_per_piece=MONTH_PIECE_JOBS,
            geometry=False,
        )
        if territory_cost_s is not None:
            options = replace(options, territory_cost_s=territory_cost_s)
        try:
            plan = plan_day(
                problem,
                g,
                zones=province.zones,
                closures=scenario.closures,
                options=options,
                preferred=preferred,
            )
        except SolverError:
            # a too short search found no first solution: give this day more time
            longer = max(2.0, 4 * time_limit_s)
            logger.warning(
                "day %s: no solution in %.1f s, retrying with %.1f s", day, time_limit_s, longer
            )
            plan = plan_day(
                problem,
                g,
                zones=province.zones,
                closures=scenario.closures,
                options=replace(options, piece_time_limit_s=longer),
                preferred=preferred,
            )
        sim = simulate_day(plan, seed=seed * 1000 + k, params=params)
        history.append((served_by(plan.plan), areas))
        if on_day is not None:
            on_day(MonthDay(plan, sim, areas, learned, preferred))
        zone_of = {j.job_id: j.zone_id for j in todays}
        rows += day_rows(
            problem, sim, zone_of=zone_of, depot_of_zone=depot_of_zone, attempts=attempts
        )
        # what comes back tomorrow
        retry = {o.job_id for o in sim.outcomes if o.fail_reason in RETRY_REASONS}
        retry |= {u.job_id for u in sim.unassigned if u.reason in RETRY_REASONS}
        carried = []
        for job in todays:
            if job.job_id in retry and job.pair_id is None and attempts[job.job_id] < max_attempts:
                attempts[job.job_id] += 1
                carried.append(replace(job, priority=min(5, job.priority + 1)))
        logger.info(
            "day %s: %d jobs (%d retried), %d stops, %d failed, %d unassigned, rain=%s",
            day,
            len(todays),
            len(todays) - len(fresh),
            len(sim.outcomes),
            sum(1 for o in sim.outcomes if o.outcome == "failed"),
            len(sim.unassigned),
            sim.rain,
        )
    df = month_frame(rows)
    logger.info("simulated %d days, %d rows in %.1f s", days, len(df), time.perf_counter() - t0)
    if cache_path is not None:
        save_frame(df, cache_path)
    return df
