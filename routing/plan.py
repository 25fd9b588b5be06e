"""Solver output: plans, routes, stops and unassigned jobs with reasons; plain and JSON-ready.

Every job of the problem is either on exactly one route or in ``Plan.unassigned`` with a
:data:`ReasonCode`. Times are integer seconds since local midnight of the plan day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from routing.errors import InputError
from routing.model import Load
from routing.vocabulary import Lang, UnassignedReason, reason_message

#: Why a job is unassigned (one vocabulary for the whole product: :mod:`routing.vocabulary`).
ReasonCode = UnassignedReason
REASON_CODES: frozenset[str] = frozenset(UnassignedReason)


def _load_dict(load: Load) -> dict[str, int]:
    return {"items": load.items, "weight_g": load.weight_g, "cash_vnd": load.cash_vnd}


@dataclass(frozen=True, slots=True)
class Stop:
    """A visit of a job on a route.

    Parameters
    ----------
    job_id
        The job served.
    location_idx
        Location index (depots first, then jobs).
    arrival_s
        Arrival time at the address.
    start_s
        Service start, after waiting for the window to open.
    departure_s
        ``start_s`` plus the service time.
    waiting_s
        Idle time before service: ``start_s - arrival_s``, minus the break when the break is
        taken while waiting here.
    load_after
        What the courier carries when leaving the stop.
    """

    job_id: str
    location_idx: int
    arrival_s: int
    start_s: int
    departure_s: int
    waiting_s: int
    load_after: Load

    def __post_init__(self) -> None:
        if not self.arrival_s <= self.start_s <= self.departure_s:
            raise InputError(None, "start_s", self.start_s, "need arrival <= start <= departure")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "job_id": self.job_id,
            "location_idx": self.location_idx,
            "arrival_s": self.arrival_s,
            "start_s": self.start_s,
            "departure_s": self.departure_s,
            "waiting_s": self.waiting_s,
            "load_after": _load_dict(self.load_after),
        }


@dataclass(frozen=True, slots=True)
class Route:
    """One courier's round: leave the depot, serve the stops in order, return.

    Parameters
    ----------
    courier_id
        The courier.
    depot_id
        Start depot.
    start_s
        Departure from the start depot.
    end_s
        Arrival at the end depot.
    stops
        Ordered visits.
    distance_m
        Total distance driven.
    driving_s
        Total driving time.
    working_s
        ``end_s - start_s``.
    waiting_s
        Total idle time (excluding the break).
    break_start_s
        Start of the lunch break, or ``None`` if no break is planned.
    end_depot_id
        End depot (defaults to ``depot_id``).
    break_duration_s
        Length of the planned break.
    """

    courier_id: str
    depot_id: str
    start_s: int
    end_s: int
    stops: tuple[Stop, ...]
    distance_m: int
    driving_s: int
    working_s: int
    waiting_s: int
    break_start_s: int | None = None
    end_depot_id: str | None = None
    break_duration_s: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.stops, tuple):
            object.__setattr__(self, "stops", tuple(self.stops))
        if self.end_s < self.start_s:
            raise InputError(None, "end_s", self.end_s, "route ends before it starts")

    @property
    def job_ids(self) -> list[str]:
        """Job ids in visiting order."""
        return [s.job_id for s in self.stops]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "courier_id": self.courier_id,
            "depot_id": self.depot_id,
            "end_depot_id": self.end_depot_id or self.depot_id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "distance_m": self.distance_m,
            "driving_s": self.driving_s,
            "working_s": self.working_s,
            "waiting_s": self.waiting_s,
            "break_start_s": self.break_start_s,
            "break_duration_s": self.break_duration_s,
            "stops": [s.to_dict() for s in self.stops],
        }


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A job left out of the plan, with the reason.

    Parameters
    ----------
    job_id
        The job.
    reason
        A :data:`ReasonCode`.
    detail
        Extra explanation (numbers, the courier checked).
    """

    job_id: str
    reason: UnassignedReason
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASON_CODES:
            raise InputError(None, "reason", self.reason, "unknown reason code")
        object.__setattr__(self, "reason", UnassignedReason(self.reason))

    def message(self, lang: Lang = "en") -> str:
        """Return the human-readable reason in English or Vietnamese."""
        return reason_message(self.reason, lang=lang)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, with the messages in both languages."""
        return {
            "job_id": self.job_id,
            "reason": self.reason,
            "detail": self.detail,
            "message_en": self.message("en"),
            "message_vi": self.message("vi"),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The solver's answer: routes of the used couriers and the unassigned jobs.

    Parameters
    ----------
    routes
        Non-empty routes only (a courier without stops has no route).
    unassigned
        Jobs not served, each with a reason.
    objective
        Objective value of the search (same units as the arc costs plus penalties).
    stats
        Free-form, JSON-ready statistics (time, strategy, solutions found).
    """

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    objective: int
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.routes, tuple):
            object.__setattr__(self, "routes", tuple(self.routes))
        if not isinstance(self.unassigned, tuple):
            object.__setattr__(self, "unassigned", tuple(self.unassigned))

    @property
    def num_routes(self) -> int:
        """Number of couriers used."""
        return sum(1 for r in self.routes if r.stops)

    @property
    def distance_m(self) -> int:
        """Total distance over all routes."""
        return sum(r.distance_m for r in self.routes)

    @property
    def driving_s(self) -> int:
        """Total driving time over all routes."""
        return sum(r.driving_s for r in self.routes)

    def office_balance(self) -> dict[str, OfficeBalance]:
        """Return each post office's working-time balance (see :func:`office_balance`)."""
        return office_balance((r.depot_id, r.working_s) for r in self.routes if r.stops)

    def assigned_job_ids(self) -> list[str]:
        """Return ids of all routed jobs."""
        return [s.job_id for r in self.routes for s in r.stops]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "objective": self.objective,
            "num_routes": self.num_routes,
            "distance_m": self.distance_m,
            "driving_s": self.driving_s,
            "routes": [r.to_dict() for r in self.routes],
            "unassigned": [u.to_dict() for u in self.unassigned],
            "stats": dict(self.stats),
        }


@dataclass(frozen=True, slots=True)
class OfficeBalance:
    """How evenly a post office's rounds share the day's work.

    Parameters
    ----------
    depot_id
        The post office the rounds leave from.
    rounds
        Rounds counted (couriers with at least one stop).
    mean_working_s
        Mean working time of those rounds: return less departure, with service, waiting
        and the break.
    max_working_s
        The longest round's working time.
    """

    depot_id: str
    rounds: int
    mean_working_s: float
    max_working_s: int

    @property
    def ratio(self) -> float:
        """Longest round over the mean round (1.0 when every round is as long)."""
        return self.max_working_s / self.mean_working_s if self.mean_working_s > 0 else 1.0

    def vs_mean(self, working_s: int) -> float:
        """Return a round's working time against the office's mean, as a fraction (0.12: +12 %)."""
        return working_s / self.mean_working_s - 1 if self.mean_working_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, with the ratio rounded to three decimals."""
        return {
            "depot_id": self.depot_id,
            "rounds": self.rounds,
            "mean_working_s": round(self.mean_working_s),
            "max_working_s": self.max_working_s,
            "ratio": round(self.ratio, 3),
        }


def office_balance(rounds: Iterable[tuple[str, int]]) -> dict[str, OfficeBalance]:
    """Return each post office's working-time balance from its rounds.

    Couriers left at the office (no round) are not counted: the figures compare the rounds
    a dispatcher sees. The plan's :meth:`Plan.office_balance` and the service's stored plans
    both call this, so the page and the benchmarks report one number.

    Parameters
    ----------
    rounds
        ``(depot_id, working_s)`` of each round with at least one stop.

    Returns
    -------
    balance
        By post office id.
    """
    by_office: dict[str, list[int]] = {}
    for depot_id, working_s in rounds:
        by_office.setdefault(depot_id, []).append(int(working_s))
    return {
        depot_id: OfficeBalance(depot_id, len(w), sum(w) / len(w), max(w))
        for depot_id, w in sorted(by_office.items())
    }
