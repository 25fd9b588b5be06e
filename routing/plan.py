"""Solver output: plans, routes, stops and unassigned jobs with reasons; plain and JSON-ready.

Every job of the problem is either on exactly one route or in ``Plan.unassigned`` with a
:data:`ReasonCode`. Times are integer seconds since local midnight of the plan day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from routing.errors import InputError
from routing.model import Load

ReasonCode = Literal[
    "unreachable",
    "no_feasible_window",
    "over_capacity",
    "missing_skill",
    "shift_too_short",
    "no_eligible_courier",
    "pair_incomplete",
    "dropped_low_priority",
    "no_courier",
    "far_from_road",
    "time_limit",
]
REASON_CODES: frozenset[str] = frozenset(get_args(ReasonCode))

REASON_MESSAGES: dict[str, tuple[str, str]] = {
    "unreachable": (
        "No road to the address (road cut off?)",
        "Không có đường tới địa chỉ (đường bị chia cắt?)",
    ),
    "no_feasible_window": (
        "No courier can arrive within the requested time window",
        "Không bưu tá nào đến kịp trong khung giờ hẹn",
    ),
    "over_capacity": (
        "Larger or heavier (or more cash) than any courier can carry",
        "Vượt quá sức chở (số kiện, khối lượng hoặc tiền mặt) của mọi bưu tá",
    ),
    "missing_skill": (
        "No courier has the required skill",
        "Không bưu tá nào có nghiệp vụ yêu cầu",
    ),
    "shift_too_short": (
        "The round trip to the address does not fit in any courier's shift",
        "Chuyến đi về tới địa chỉ không vừa ca làm việc của bưu tá nào",
    ),
    "no_eligible_courier": (
        "No courier of the assigned post office can serve the job",
        "Không có bưu tá phù hợp tại bưu cục được chỉ định",
    ),
    "pair_incomplete": (
        "The other half of the pickup-delivery pair cannot be served",
        "Không thực hiện được phần còn lại của cặp thu gom - phát",
    ),
    "dropped_low_priority": (
        "Not enough courier time today; left for lower priority",
        "Không đủ thời gian bưu tá trong ngày; hoãn do mức ưu tiên thấp hơn",
    ),
    "far_from_road": (
        "The address is too far from any road to be reached",
        "Địa chỉ cách đường quá xa, không thể tới",
    ),
    "no_courier": (
        "No courier is available",
        "Không có bưu tá nào làm việc",
    ),
    "time_limit": (
        "The planner ran out of time before placing this job",
        "Hết thời gian tính toán trước khi xếp được việc này",
    ),
}


def reason_message(reason: str, *, lang: Literal["en", "vi"] = "en") -> str:
    """Return the human-readable message for a reason code.

    Parameters
    ----------
    reason
        A :data:`ReasonCode`.
    lang
        ``"en"`` for English, ``"vi"`` for Vietnamese.

    Returns
    -------
    str
        The message; the code itself if unknown.
    """
    en, vi = REASON_MESSAGES.get(reason, (reason, reason))
    return vi if lang == "vi" else en


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
    reason: ReasonCode
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASON_CODES:
            raise InputError(None, "reason", self.reason, "unknown reason code")

    def message(self, lang: Literal["en", "vi"] = "en") -> str:
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
