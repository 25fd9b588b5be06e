"""Pydantic schemas of the day close, the carried and held jobs, and offices' carry-over rules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

from routing.vocabulary import CarryAction, FailReason

Vnd = Annotated[int, Field(ge=0, le=10**12)]


class CloseIn(BaseModel):
    """What the dispatcher enters at close: the cash each courier brought back (VND)."""

    cash_returned: dict[str, Vnd] = Field(
        default_factory=dict,
        max_length=1000,
        description="Cash counted back at the post office, VND per courier id",
    )


class OutcomeRead(BaseModel):
    """How a job of a closed day ended, and where it went."""

    day: dt.date
    job_id: str
    depot_id: str | None
    courier_id: str | None
    category: str
    outcome: str
    attempts: int = Field(description="Attempts up to and including this day")
    fail_reason: str | None = Field(description="The last failure's reason")
    first_requested_at: dt.datetime | None = Field(description="The citizen's first request")
    action: str
    carried_to: dt.date | None
    released_at: dt.datetime | None
    notify: bool = Field(description="The citizen is told: the job went back to the post office")
    late_result: str | None = Field(
        default=None,
        description="Why the dispatcher must look at a result reported after the close: "
        "on_published_day, held_not_carried, was_returned",
    )
    revised_at: dt.datetime | None = Field(
        default=None, description="When a result reported after the close changed this outcome"
    )
    address: str
    recipient: str


class CashRead(BaseModel):
    """A courier's cash for a day (VND); ``difference_vnd`` > 0 means cash is missing."""

    day: dt.date
    courier_id: str
    depot_id: str
    payouts: int
    proposed_vnd: int = Field(description="The payouts planned on the round")
    issued_vnd: int | None
    issued_entered: bool
    paid_vnd: int = Field(description="From the proofs of completed payouts")
    returned_vnd: int | None
    in_hand_vnd: int | None
    difference_vnd: int | None
    missing_return: bool = Field(
        description="Closed with cash in hand and nothing counted back (flagged too)"
    )
    flagged: bool
    signed_off_at: dt.datetime | None
    sign_off_note: str


class CloseRead(BaseModel):
    """A closed day: counts, the jobs carried to the next working day, held and returned, cash."""

    day: dt.date
    plan_id: int
    closed_at: dt.datetime
    counts: dict[str, int]
    next_day: dt.date | None
    carried: list[OutcomeRead]
    held: list[OutcomeRead]
    returned: list[OutcomeRead]
    late: list[OutcomeRead] = Field(
        default_factory=list,
        description="Outcomes a result reported after the close changed, needing the dispatcher",
    )
    cash: list[CashRead]
    carried_skipped: list[str] = Field(
        default_factory=list,
        description="Carried jobs the next day already had (kept as they were)",
    )


class OutcomeList(BaseModel):
    """Jobs with their close outcome."""

    data: list[OutcomeRead]
    count: int


class ReleaseIn(BaseModel):
    """Release a held job to a day (default: the office's next working day)."""

    to_day: dt.date | None = None


class CarryRulesIO(BaseModel):
    """An office's carry-over rules."""

    by_reason: dict[FailReason, CarryAction] = Field(
        description="Action per fail reason: next_day, hold or return_to_office"
    )
    default: CarryAction = CarryAction.NEXT_DAY
    not_attempted: CarryAction = CarryAction.NEXT_DAY
    max_attempts: int = Field(default=3, ge=1, le=20)
    workdays: list[int] = Field(
        default=[0, 1, 2, 3, 4, 5], min_length=1, max_length=7, description="0 = Monday"
    )
    holidays: list[dt.date] = Field(default_factory=list, max_length=400)
