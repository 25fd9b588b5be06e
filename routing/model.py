"""The routing data model: depots, couriers, jobs and the problem they form.

All values are immutable and validated at construction. Times inside routing are integer
seconds since local midnight of the plan day (Asia/Ho_Chi_Minh); loads are integers (items,
grams, Vietnamese dong). Locations are ordered **depots first** (``Problem.depots`` order),
**then jobs** (``Problem.jobs`` order); every matrix handed to the solver or the checker is
indexed in that order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from routing.contact import NotifyPreference
from routing.errors import InputError
from routing.vocabulary import (
    AUTHORISED_HANDOVER_CATEGORIES,
    ID_CHECK_CATEGORIES,
    ID_CHECK_SKILL,
)

if TYPE_CHECKING:
    from datetime import date, datetime

UNREACHABLE: int = 1 << 40
"""Sentinel travel time (s) / distance (m) of a pair with no path (as ``geodata.matrix``)."""

SECONDS_PER_DAY: int = 24 * 3600

JobKind = Literal["pickup", "delivery"]
JOB_KINDS: frozenset[str] = frozenset({"pickup", "delivery"})


def _require(ok: bool, column: str, value: object, reason: str) -> None:
    if not ok:
        raise InputError(None, column, value, reason)


def _check_lonlat(lon: float, lat: float) -> None:
    _require(
        math.isfinite(lon) and -180.0 <= lon <= 180.0,
        "lon",
        lon,
        "longitude must be in [-180, 180]",
    )
    _require(
        math.isfinite(lat) and -90.0 <= lat <= 90.0, "lat", lat, "latitude must be in [-90, 90]"
    )


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A closed interval of time ``[start_s, end_s]`` in seconds since local midnight.

    Windows may extend past midnight (``end_s > 86400``) for overnight shifts; they may not be
    negative or reversed.

    Parameters
    ----------
    start_s
        Opening time, seconds since local midnight of the plan day.
    end_s
        Closing time (inclusive), seconds since local midnight.
    """

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        _require(self.start_s >= 0, "start_s", self.start_s, "time must be non-negative")
        _require(
            self.end_s >= self.start_s,
            "end_s",
            self.end_s,
            f"window end must not precede its start {self.start_s}",
        )

    @property
    def duration_s(self) -> int:
        """Length of the window in seconds."""
        return self.end_s - self.start_s

    def contains(self, t_s: int) -> bool:
        """Return whether ``t_s`` lies inside the window (bounds included)."""
        return self.start_s <= t_s <= self.end_s


@dataclass(frozen=True, slots=True)
class Load:
    """An amount carried: items, weight in grams and cash in VND.

    Parameters
    ----------
    items
        Number of items (letters, parcels, dossiers).
    weight_g
        Weight in grams.
    cash_vnd
        Cash in Vietnamese dong.
    """

    items: int = 0
    weight_g: int = 0
    cash_vnd: int = 0

    def __post_init__(self) -> None:
        for name in ("items", "weight_g", "cash_vnd"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and value >= 0, name, value, "must be a non-negative integer"
            )

    def __add__(self, other: Load) -> Load:
        return Load(
            self.items + other.items, self.weight_g + other.weight_g, self.cash_vnd + other.cash_vnd
        )

    def __sub__(self, other: Load) -> Load:
        """Subtract ``other``; raises :class:`InputError` if a component would go negative."""
        return Load(
            self.items - other.items, self.weight_g - other.weight_g, self.cash_vnd - other.cash_vnd
        )

    def serve(self, kind: str, demand: Load) -> Load:
        """Return the load after a stop: a pickup adds ``demand``, a delivery removes it (not below 0)."""
        if kind == "pickup":
            return self + demand
        return Load(
            *(max(0, a - b) for a, b in zip(self.as_tuple(), demand.as_tuple(), strict=True))
        )

    def as_tuple(self) -> tuple[int, int, int]:
        """Return ``(items, weight_g, cash_vnd)``."""
        return (self.items, self.weight_g, self.cash_vnd)

    def fits_in(self, capacity: Load) -> bool:
        """Return whether every component is at most the matching one of ``capacity``."""
        return all(a <= b for a, b in zip(self.as_tuple(), capacity.as_tuple(), strict=True))

    def is_zero(self) -> bool:
        """Return whether all components are zero."""
        return self.items == 0 and self.weight_g == 0 and self.cash_vnd == 0


LOAD_DIMENSIONS: tuple[str, ...] = ("items", "weight_g", "cash_vnd")


@dataclass(frozen=True, slots=True)
class Depot:
    """A post office (bưu cục): where rounds start and end.

    Parameters
    ----------
    depot_id
        External id, unique in the problem.
    name
        Display name.
    lon, lat
        WGS84 position in degrees.
    opening
        Opening hours; couriers leave no earlier and return no later.
    """

    depot_id: str
    name: str
    lon: float
    lat: float
    opening: TimeWindow = field(default_factory=lambda: TimeWindow(0, SECONDS_PER_DAY))

    def __post_init__(self) -> None:
        _require(bool(self.depot_id), "depot_id", self.depot_id, "must not be empty")
        _check_lonlat(self.lon, self.lat)


@dataclass(frozen=True, slots=True, kw_only=True)
class Courier:
    """A courier (bưu tá) on a motorbike, with a shift, a lunch break and capacities.

    The courier collects the day's deliveries and payout cash at the home depot at the start
    of the shift (the start load) and brings pickups back. ``capacity`` caps what is carried at
    any moment, per dimension; ``capacity.cash_vnd`` is the cash ceiling for security.

    Parameters
    ----------
    courier_id
        External id, unique in the problem.
    depot_id
        Home post office; the round starts there.
    name
        Display name.
    profile
        Vehicle profile of the travel-time matrix (only one profile is used for now).
    shift
        Working hours: leave the depot no earlier than ``shift.start_s``, return no later than
        ``shift.end_s``.
    break_window
        Interval that must contain the whole lunch break, or ``None`` for no break.
    break_duration_s
        Length of the break in seconds (0 for no break).
    capacity
        Maximum carried at any time, per dimension.
    skills
        Skills the courier has (e.g. ``"cash"``, ``"id_check"``).
    end_depot_id
        Post office where the round ends; defaults to ``depot_id``.
    """

    courier_id: str
    depot_id: str
    name: str = ""
    profile: str = "motorbike"
    shift: TimeWindow
    break_window: TimeWindow | None = None
    break_duration_s: int = 0
    capacity: Load
    skills: frozenset[str] = frozenset()
    end_depot_id: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.courier_id), "courier_id", self.courier_id, "must not be empty")
        _require(bool(self.depot_id), "depot_id", self.depot_id, "must not be empty")
        _require(
            self.break_duration_s >= 0,
            "break_duration_s",
            self.break_duration_s,
            "must be non-negative",
        )
        if self.break_duration_s > 0:
            _require(
                self.break_window is not None,
                "break_window",
                self.break_window,
                "a break duration needs a break window",
            )
        if self.break_window is not None:
            _require(
                self.break_window.duration_s >= self.break_duration_s,
                "break_duration_s",
                self.break_duration_s,
                "break longer than its window",
            )
        if not isinstance(self.skills, frozenset):
            object.__setattr__(self, "skills", frozenset(self.skills))

    @property
    def end_depot(self) -> str:
        """Return the id of the depot where the round ends."""
        return self.end_depot_id if self.end_depot_id is not None else self.depot_id

    @property
    def has_break(self) -> bool:
        """Return whether the courier takes a break of positive length."""
        return self.break_window is not None and self.break_duration_s > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One stop to serve: a pickup or a delivery, possibly half of a pickup-delivery pair.

    Without ``pair_id``, a ``delivery`` is loaded at the depot at the start of the round and
    dropped at the stop (its ``cash_vnd`` is a payout: loaded at the depot, paid out here); a
    ``pickup`` is picked up at the stop and carried back to the depot. A pair is one pickup and
    one delivery sharing ``pair_id``: same courier, pickup first, load carried in between.

    Parameters
    ----------
    job_id
        External id, unique in the problem.
    kind
        ``"pickup"`` or ``"delivery"``.
    lon, lat
        WGS84 position in degrees.
    windows
        Allowed intervals for the *start* of service, sorted and non-overlapping (at least one).
    service_s
        Time spent at the stop, seconds.
    demand
        Amount picked up or delivered.
    skills
        Skills the courier must have.
    priority
        1 (normal) .. 5 (urgent); a higher priority is costlier to leave unassigned.
    requested_at
        When the citizen asked for the service (for request-to-completion KPIs).
    pair_id
        Shared by the two halves of a pickup-delivery pair.
    depot_id
        Post office the job is pre-assigned to, if any.
    zone_id, address, recipient, note
        Descriptive fields carried through to the plan.
    phone
        The citizen's phone, normalised to international digits (``84905123456``,
        :func:`routing.contact.normalise_phone`), or None.
    email
        The citizen's e-mail address, or None.
    notify
        How the citizen wants to hear about the visit (:class:`routing.contact.NotifyPreference`);
        Zalo and SMS need ``phone``, e-mail needs ``email``.
    category
        What the job is, for couriers and reports: ``dossier_pickup``, ``result_return``,
        ``licence_return``, ``pension_payout``, ``ems_delivery``, ``parcel_pickup``,
        ``dossier_transfer`` (free text; these are the demo's).
    """

    job_id: str
    kind: JobKind
    lon: float
    lat: float
    windows: tuple[TimeWindow, ...]
    service_s: int
    demand: Load = field(default_factory=Load)
    skills: frozenset[str] = frozenset()
    priority: int = 1
    requested_at: datetime | None = None
    pair_id: str | None = None
    depot_id: str | None = None
    zone_id: str | None = None
    category: str = ""
    address: str = ""
    recipient: str = ""
    note: str = ""
    phone: str | None = None
    email: str | None = None
    notify: NotifyPreference = NotifyPreference.NONE

    def __post_init__(self) -> None:
        _require(bool(self.job_id), "job_id", self.job_id, "must not be empty")
        self._check_contact()
        _require(self.kind in JOB_KINDS, "kind", self.kind, "must be 'pickup' or 'delivery'")
        _check_lonlat(self.lon, self.lat)
        if not isinstance(self.windows, tuple):
            object.__setattr__(self, "windows", tuple(self.windows))
        _require(len(self.windows) >= 1, "windows", self.windows, "at least one time window")
        for before, after in zip(self.windows, self.windows[1:], strict=False):
            _require(
                before.end_s < after.start_s,
                "windows",
                self.windows,
                "windows must be sorted and must not overlap",
            )
        _require(self.service_s >= 0, "service_s", self.service_s, "must be non-negative")
        _require(1 <= self.priority <= 5, "priority", self.priority, "must be between 1 and 5")
        if not isinstance(self.skills, frozenset):
            object.__setattr__(self, "skills", frozenset(self.skills))

    def _check_contact(self) -> None:
        if not isinstance(self.notify, NotifyPreference):
            _require(
                self.notify in set(NotifyPreference), "notify", self.notify, "unknown preference"
            )
            object.__setattr__(self, "notify", NotifyPreference(self.notify))
        _require(
            self.phone is None or (self.phone.isdigit() and self.phone.startswith("84")),
            "phone",
            self.phone,
            "a stored phone is in its normalised form (84...)",
        )
        needs = {NotifyPreference.ZALO: "phone", NotifyPreference.SMS: "phone"}
        if self.notify == NotifyPreference.EMAIL:
            _require(
                self.email is not None, "email", None, "an e-mail notification needs an address"
            )
        elif self.notify in needs:
            _require(
                self.phone is not None, "phone", None, f"a {self.notify} notification needs a phone"
            )

    @property
    def first_start_s(self) -> int:
        """Earliest allowed service start."""
        return self.windows[0].start_s

    @property
    def last_end_s(self) -> int:
        """Latest allowed service start."""
        return self.windows[-1].end_s

    def earliest_start_from(self, t_s: int) -> int | None:
        """Return the earliest allowed service start at or after ``t_s``, or ``None``."""
        for window in self.windows:
            if t_s <= window.end_s:
                return max(t_s, window.start_s)
        return None

    def in_window(self, t_s: int) -> bool:
        """Return whether ``t_s`` lies in one of the job's windows."""
        return any(w.contains(t_s) for w in self.windows)

    # --- rules of the handover (one place for the courier's page, the API and the reports) ---

    @property
    def needs_id_check(self) -> bool:
        """Whether the handover needs the recipient's identity check (CCCD) and signature.

        A job asking for the ``id_check`` skill does, and so does every licence or
        certificate return, whatever skills the file gave it.
        """
        return ID_CHECK_SKILL in self.skills or (
            self.kind == "delivery" and self.category in ID_CHECK_CATEGORIES
        )

    @property
    def payout_vnd(self) -> int:
        """Cash paid out at the door (pension, allowance): an unpaired delivery's cash, else 0."""
        if self.kind == "delivery" and self.pair_id is None:
            return self.demand.cash_vnd
        return 0

    @property
    def is_payout(self) -> bool:
        """Whether completing the job means paying cash at the door."""
        return self.payout_vnd > 0

    @property
    def allows_authorised_handover(self) -> bool:
        """Whether someone the citizen authorised may receive it: a result return or a payout."""
        return self.kind == "delivery" and (
            self.category in AUTHORISED_HANDOVER_CATEGORIES or self.is_payout
        )

    @property
    def is_office_stop(self) -> bool:
        """Whether the stop is an office's desk (the delivery half of a transfer, e.g. one-stop)."""
        return self.pair_id is not None and self.kind == "delivery"

    @property
    def loaded_at_depot(self) -> bool:
        """Whether the courier takes this job's load from the post office at the start."""
        return self.kind == "delivery" and self.pair_id is None


@dataclass(frozen=True, slots=True)
class Problem:
    """A day to plan: depots, couriers and jobs.

    Validated: ids unique per kind, couriers (and pre-assigned jobs) reference existing
    depots, and every ``pair_id`` has exactly one pickup and one delivery.

    Parameters
    ----------
    depots
        Post offices; their order fixes the first location indices.
    couriers
        Available couriers (vehicles), in solver vehicle order.
    jobs
        Jobs; location index of ``jobs[i]`` is ``len(depots) + i``.
    day
        The plan day (local date), if known.
    name
        Free-form name (instance name for benchmarks).
    """

    depots: tuple[Depot, ...]
    couriers: tuple[Courier, ...]
    jobs: tuple[Job, ...]
    day: date | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for attr in ("depots", "couriers", "jobs"):
            if not isinstance(getattr(self, attr), tuple):
                object.__setattr__(self, attr, tuple(getattr(self, attr)))
        _require(len(self.depots) >= 1, "depots", len(self.depots), "at least one depot")
        for attr, ids in (
            ("depot_id", [d.depot_id for d in self.depots]),
            ("courier_id", [c.courier_id for c in self.couriers]),
            ("job_id", [j.job_id for j in self.jobs]),
        ):
            dup = [k for k, n in Counter(ids).items() if n > 1]
            _require(not dup, attr, dup[:5], "ids must be unique")
        depot_ids = {d.depot_id for d in self.depots}
        for courier in self.couriers:
            _require(
                courier.depot_id in depot_ids,
                "depot_id",
                courier.depot_id,
                f"courier {courier.courier_id!r} references an unknown depot",
            )
            _require(
                courier.end_depot in depot_ids,
                "end_depot_id",
                courier.end_depot,
                f"courier {courier.courier_id!r} references an unknown end depot",
            )
        for job in self.jobs:
            _require(
                job.depot_id is None or job.depot_id in depot_ids,
                "depot_id",
                job.depot_id,
                f"job {job.job_id!r} references an unknown depot",
            )
        pairs: dict[str, list[Job]] = {}
        for job in self.jobs:
            if job.pair_id is not None:
                pairs.setdefault(job.pair_id, []).append(job)
        for pair_id, members in pairs.items():
            kinds = sorted(j.kind for j in members)
            _require(
                kinds == ["delivery", "pickup"],
                "pair_id",
                pair_id,
                f"a pair needs exactly one pickup and one delivery, found {kinds}",
            )
            pickup, delivery = sorted(members, key=lambda j: j.kind != "pickup")
            _require(
                pickup.demand == delivery.demand,
                "demand",
                delivery.demand,
                f"pair {pair_id!r}: delivery demand must equal pickup demand {pickup.demand}",
            )

    # --- indexing -------------------------------------------------------------------------

    @property
    def num_locations(self) -> int:
        """Number of locations: depots then jobs."""
        return len(self.depots) + len(self.jobs)

    def location_index(self) -> dict[str, int]:
        """Map every depot id and job id to its location index (depots first, then jobs).

        Depot ids and job ids live in separate namespaces; if they collide, the job wins in
        this map, so use :meth:`depot_index` / :meth:`job_location` when in doubt.
        """
        index = {d.depot_id: i for i, d in enumerate(self.depots)}
        offset = len(self.depots)
        index.update({j.job_id: offset + i for i, j in enumerate(self.jobs)})
        return index

    def depot_index(self, depot_id: str) -> int:
        """Return the location index of a depot.

        Raises
        ------
        KeyError
            If no depot has this id.
        """
        for i, depot in enumerate(self.depots):
            if depot.depot_id == depot_id:
                return i
        raise KeyError(depot_id)

    def job_location(self, job_pos: int) -> int:
        """Return the location index of ``jobs[job_pos]``."""
        return len(self.depots) + job_pos

    def job_index(self, job_id: str) -> int:
        """Return the position of a job in ``jobs`` (not its location index).

        Raises
        ------
        KeyError
            If no job has this id.
        """
        for i, job in enumerate(self.jobs):
            if job.job_id == job_id:
                return i
        raise KeyError(job_id)

    def job_by_id(self) -> dict[str, Job]:
        """Return a mapping job id -> job."""
        return {j.job_id: j for j in self.jobs}

    def courier_by_id(self) -> dict[str, Courier]:
        """Return a mapping courier id -> courier."""
        return {c.courier_id: c for c in self.couriers}

    def depot_by_id(self) -> dict[str, Depot]:
        """Return a mapping depot id -> depot."""
        return {d.depot_id: d for d in self.depots}

    def pair_partner(self) -> dict[str, str]:
        """Map each paired job id to the id of its partner."""
        by_pair: dict[str, list[str]] = {}
        for job in self.jobs:
            if job.pair_id is not None:
                by_pair.setdefault(job.pair_id, []).append(job.job_id)
        partner: dict[str, str] = {}
        for a, b in by_pair.values():
            partner[a] = b
            partner[b] = a
        return partner

    def start_load(self, job_ids: list[str]) -> Load:
        """Return what a courier loads at the depot to serve ``job_ids``: unpaired deliveries."""
        jobs = self.job_by_id()
        total = Load()
        for job_id in job_ids:
            job = jobs[job_id]
            if job.loaded_at_depot:
                total = total + job.demand
        return total
