"""The words the whole product shares: stop statuses, fail reasons, unassigned reasons, job rules.

One list of each, used by the solver, the checker, the simulation, the reports, the API's
schemas and the pages' messages. Each value carries an English and a Vietnamese message.
The rules about a job (does it need an ID check? is it a cash payout?) are methods of
:class:`routing.model.Job`; the categories they read are named here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Lang = Literal["en", "vi"]


class StopStatus(StrEnum):
    """Where a planned stop stands in the running day."""

    PLANNED = "planned"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_done(self) -> bool:
        """Return whether the stop is finished (completed or failed): nothing moves it any more."""
        return self in (StopStatus.COMPLETED, StopStatus.FAILED)

    @property
    def is_started(self) -> bool:
        """Return whether the courier reached the stop (arrived, completed or failed)."""
        return self is not StopStatus.PLANNED


#: Statuses a stop can no longer leave: a re-plan keeps these stops where they are.
DONE_STATUSES: frozenset[str] = frozenset({StopStatus.COMPLETED, StopStatus.FAILED})
#: Statuses of a stop the courier has reached (served, failed or standing at the door).
STARTED_STATUSES: frozenset[str] = DONE_STATUSES | {StopStatus.ARRIVED}


class EventKind(StrEnum):
    """What a courier's phone reports about a stop: each moves the stop to the same status."""

    ARRIVED = "arrived"
    COMPLETED = "completed"
    FAILED = "failed"


class FailReason(StrEnum):
    """Why a visit failed at the door (or on the way)."""

    NOBODY_HOME = "nobody_home"
    WRONG_ADDRESS = "wrong_address"
    REFUSED = "refused"
    ROAD_CLOSED = "road_closed"
    RESCHEDULED = "rescheduled"
    ID_MISMATCH = "id_mismatch"
    PICKUP_FAILED = "pickup_failed"
    OUT_OF_TIME = "out_of_time"
    OTHER = "other"


FAIL_REASON_MESSAGES: dict[str, tuple[str, str]] = {
    FailReason.NOBODY_HOME: ("Nobody home", "Không có người nhận"),
    FailReason.WRONG_ADDRESS: ("Wrong address", "Sai địa chỉ"),
    FailReason.REFUSED: ("Refused by the recipient", "Người nhận từ chối"),
    FailReason.ROAD_CLOSED: ("Road cut off", "Đường bị chia cắt"),
    FailReason.RESCHEDULED: ("Rescheduled with the recipient", "Hẹn lại"),
    FailReason.ID_MISMATCH: ("ID papers do not match", "Giấy tờ không khớp"),
    FailReason.PICKUP_FAILED: (
        "Nothing to deliver: the pickup of the pair failed",
        "Không có hàng để giao: thu gom không thành công",
    ),
    FailReason.OUT_OF_TIME: ("Not reached before the end of the day", "Hết giờ, chưa đến được"),
    FailReason.OTHER: ("Other reason", "Lý do khác"),
}


class UnassignedReason(StrEnum):
    """Why a job is on no round: the solver's, the dispatcher's and the running day's reasons."""

    UNREACHABLE = "unreachable"
    NO_FEASIBLE_WINDOW = "no_feasible_window"
    OVER_CAPACITY = "over_capacity"
    MISSING_SKILL = "missing_skill"
    SHIFT_TOO_SHORT = "shift_too_short"
    NO_ELIGIBLE_COURIER = "no_eligible_courier"
    PAIR_INCOMPLETE = "pair_incomplete"
    DROPPED_LOW_PRIORITY = "dropped_low_priority"
    NO_COURIER = "no_courier"
    FAR_FROM_ROAD = "far_from_road"
    TIME_LIMIT = "time_limit"
    BY_DISPATCHER = "by_dispatcher"
    COURIER_UNAVAILABLE = "courier_unavailable"
    CANCELLED = "cancelled"


UNASSIGNED_MESSAGES: dict[str, tuple[str, str]] = {
    UnassignedReason.UNREACHABLE: (
        "No road to the address (road cut off?)",
        "Không có đường tới địa chỉ (đường bị chia cắt?)",
    ),
    UnassignedReason.NO_FEASIBLE_WINDOW: (
        "No courier can arrive within the requested time window",
        "Không bưu tá nào đến kịp trong khung giờ hẹn",
    ),
    UnassignedReason.OVER_CAPACITY: (
        "Larger or heavier (or more cash) than any courier can carry",
        "Vượt quá sức chở (số kiện, khối lượng hoặc tiền mặt) của mọi bưu tá",
    ),
    UnassignedReason.MISSING_SKILL: (
        "No courier has the required skill",
        "Không bưu tá nào có nghiệp vụ yêu cầu",
    ),
    UnassignedReason.SHIFT_TOO_SHORT: (
        "The round trip to the address does not fit in any courier's shift",
        "Chuyến đi về tới địa chỉ không vừa ca làm việc của bưu tá nào",
    ),
    UnassignedReason.NO_ELIGIBLE_COURIER: (
        "No courier of the assigned post office can serve the job",
        "Không có bưu tá phù hợp tại bưu cục được chỉ định",
    ),
    UnassignedReason.PAIR_INCOMPLETE: (
        "The other half of the pickup-delivery pair cannot be served",
        "Không thực hiện được phần còn lại của cặp thu gom - phát",
    ),
    UnassignedReason.DROPPED_LOW_PRIORITY: (
        "Not enough courier time today; left for lower priority",
        "Không đủ thời gian bưu tá trong ngày; hoãn do mức ưu tiên thấp hơn",
    ),
    UnassignedReason.FAR_FROM_ROAD: (
        "The address is too far from any road to be reached",
        "Địa chỉ cách đường quá xa, không thể tới",
    ),
    UnassignedReason.NO_COURIER: (
        "No courier is available",
        "Không có bưu tá nào làm việc",
    ),
    UnassignedReason.TIME_LIMIT: (
        "The planner ran out of time before placing this job",
        "Hết thời gian tính toán trước khi xếp được việc này",
    ),
    UnassignedReason.BY_DISPATCHER: (
        "Unassigned by the dispatcher",
        "Điều phối viên bỏ phân công",
    ),
    UnassignedReason.COURIER_UNAVAILABLE: (
        "Its courier stopped working and no other courier can take it today",
        "Bưu tá nghỉ giữa ngày, không bưu tá nào khác nhận được hôm nay",
    ),
    UnassignedReason.CANCELLED: (
        "Cancelled",
        "Đã huỷ",
    ),
}

#: Job categories whose handover needs the recipient's identity check (CCCD) and signature.
ID_CHECK_CATEGORIES: frozenset[str] = frozenset({"licence_return", "result_return"})
#: The skill a courier needs to check IDs, and the one to carry payout cash.
ID_CHECK_SKILL = "id_check"
CASH_SKILL = "cash_payout"
#: Job categories an authorised person may receive instead of the citizen (with an authorisation).
AUTHORISED_HANDOVER_CATEGORIES: frozenset[str] = frozenset(
    {"result_return", "licence_return", "pension_payout"}
)


class Recipient(StrEnum):
    """Who received a handover: the citizen, or a person the citizen authorised."""

    CITIZEN = "citizen"
    AUTHORISED = "authorised"


class CloseOutcome(StrEnum):
    """How a job of the published plan ends when the dispatcher closes the day."""

    COMPLETED = "completed"
    FAILED = "failed"
    NOT_ATTEMPTED = "not_attempted"


class CarryAction(StrEnum):
    """What happens to a job that was not completed when its day closes."""

    DONE = "done"
    NEXT_DAY = "next_day"
    HOLD = "hold"
    RETURN = "return_to_office"


class LateResult(StrEnum):
    """Why a result reported after its day was closed needs the dispatcher.

    ``on_published_day``: the job no longer needs the visit it was carried to, but that day's
    plan is already published (take it off the round). ``held_not_carried``: it now goes to the
    next working day, whose plan is already published, so it is held instead. ``was_returned``:
    the citizen was told the job went back to the post office, and it did not.
    """

    ON_PUBLISHED_DAY = "on_published_day"
    HELD_NOT_CARRIED = "held_not_carried"
    WAS_RETURNED = "was_returned"


CARRY_MESSAGES: dict[str, tuple[str, str]] = {
    CarryAction.DONE: ("Completed", "Đã hoàn thành"),
    CarryAction.NEXT_DAY: ("Carried to the next working day", "Chuyển sang ngày làm việc kế tiếp"),
    CarryAction.HOLD: ("Held for the dispatcher", "Giữ lại chờ điều phối viên"),
    CarryAction.RETURN: ("Returned to the post office", "Trả về bưu cục"),
}


def _message(table: dict[str, tuple[str, str]], code: str, lang: Lang) -> str:
    en, vi = table.get(code, (code, code))
    return vi if lang == "vi" else en


def fail_reason_message(reason: str, *, lang: Lang = "en") -> str:
    """Return the English or Vietnamese label of a fail reason (the code itself if unknown)."""
    return _message(FAIL_REASON_MESSAGES, reason, lang)


def reason_message(reason: str, *, lang: Lang = "en") -> str:
    """Return the English or Vietnamese message of an unassigned reason (the code if unknown)."""
    return _message(UNASSIGNED_MESSAGES, reason, lang)


def carry_message(action: str, *, lang: Lang = "en") -> str:
    """Return the English or Vietnamese label of a carry-over action (the code if unknown)."""
    return _message(CARRY_MESSAGES, action, lang)
