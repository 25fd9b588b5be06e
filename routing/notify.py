"""What citizens are told about a visit, and when: the messages and their time windows.

Pure functions of the plan and the stop events; the service stores what they return in its
outbox and sends it (``api/notify``). Four messages per job at most, in Vietnamese:

- ``day_ahead``, when the plan is published (the day before, or in the morning): "Bưu điện sẽ
  đến trả kết quả hồ sơ … vào khoảng 9:30–10:00 ngày 02/12";
- ``on_the_way``, when the courier is two stops or 30 minutes away, with the window from the
  live ETA: after a stop event for the stops after it, from the courier's GPS fixes for the
  first stops of a round (no event before them);
- ``done``, when the stop is completed;
- ``failed``, when it failed, with the reason and what happens next.

A window is the 30-minute slot of the clock (9:00–9:30, 9:30–10:00, …) holding the expected
start of service, moved to the next slot when the courier would reach the door in the last
five minutes of it: a courier a little early waits at the door, one a little late has broken
the promise. Each message has a ``key``, unique per day, job and kind (and window, for the
day-ahead message), so storing a message twice keeps one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from routing.close import DEFAULT_BY_REASON
from routing.contact import NotifyPreference
from routing.eta import PlannedStop
from routing.model import Job
from routing.vocabulary import DONE_STATUSES, FAIL_REASON_MESSAGES, CarryAction, FailReason

SLOT_S = 30 * 60
"""Length of the window a citizen is given, seconds."""
EARLY_MARGIN_S = 5 * 60
"""An ETA this close to the end of its slot gives the next slot instead."""
ON_THE_WAY_STOPS = 2
"""The on-the-way message goes when the courier is this many stops away, or nearer..."""
ON_THE_WAY_S = 30 * 60
"""...or when the courier is expected within this many seconds."""


class MessageKind(StrEnum):
    """The four messages a citizen may get about one visit."""

    DAY_AHEAD = "day_ahead"
    ON_THE_WAY = "on_the_way"
    DONE = "done"
    FAILED = "failed"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one citizen, ready to store and send.

    Parameters
    ----------
    key
        Unique per message: storing the same key twice keeps the first.
    job_id, kind
        What it is about.
    preference
        The channel the citizen chose (Zalo, SMS, e-mail).
    phone, email
        Where to send it (normalised phone ``84…``).
    text
        The message, in Vietnamese (SMS, e-mail, and the template's ``noi_dung``).
    params
        The values of the message's Zalo template (``ma_ho_so``, ``ten``, ``thoi_gian``,
        ``ngay``, ``noi_dung``).
    window
        ``(start_s, end_s)`` promised to the citizen, seconds since local midnight (None for
        done/failed).
    """

    key: str
    job_id: str
    kind: MessageKind
    preference: NotifyPreference
    phone: str | None
    email: str | None
    text: str
    params: dict[str, str] = field(default_factory=dict)
    window: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class RoundStop:
    """A stop of a published round as the notifications need it.

    ``start_s`` and ``departure_s`` are the plan's service start and departure (seconds since
    local midnight); ``waiting_s`` the plan's waiting before the stop; ``status`` the stop's
    current status.
    """

    job: Job
    start_s: int
    departure_s: int
    waiting_s: int = 0
    status: str = "planned"


def keepable_window(eta_s: int, *, latest_s: int | None = None) -> tuple[int, int]:
    """Return the 30-minute window ``(start_s, end_s)`` to promise for a visit expected at ``eta_s``.

    The slot of the clock holding ``eta_s``; the next slot when ``eta_s`` falls in the last
    five minutes of it (the courier waits a little at the door rather than come late), unless
    the job's window closes (``latest_s``) before that next slot opens.
    """
    start = (eta_s // SLOT_S) * SLOT_S
    if eta_s - start > SLOT_S - EARLY_MARGIN_S and (latest_s is None or latest_s >= start + SLOT_S):
        start += SLOT_S
    return start, start + SLOT_S


def format_hm(t_s: int) -> str:
    """Format seconds since midnight as a Vietnamese clock time without a leading zero: ``9:30``."""
    t_s = max(0, int(t_s))
    return f"{t_s // 3600}:{t_s % 3600 // 60:02d}"


def format_window(window: tuple[int, int]) -> str:
    """Format a window as ``9:30–10:00`` (en dash)."""
    return f"{format_hm(window[0])}–{format_hm(window[1])}"


def format_day(day: date) -> str:
    """Format a day as Vietnamese dates are written: ``02/12``."""
    return f"{day.day:02d}/{day.month:02d}"


#: What the post office does at the door, by category: (going to do, done, not done).
_ACTIONS: dict[str, tuple[str, str, str]] = {
    "dossier_pickup": ("đến nhận hồ sơ", "đã nhận hồ sơ", "chưa nhận được hồ sơ"),
    "parcel_pickup": ("đến nhận bưu gửi", "đã nhận bưu gửi", "chưa nhận được bưu gửi"),
    "result_return": (
        "đến trả kết quả hồ sơ",
        "đã trả kết quả hồ sơ",
        "chưa trả được kết quả hồ sơ",
    ),
    "licence_return": (
        "đến trả giấy phép lái xe",
        "đã trả giấy phép lái xe",
        "chưa trả được giấy phép lái xe",
    ),
    "pension_payout": (
        "đến chi trả lương hưu",
        "đã chi trả lương hưu",
        "chưa chi trả được lương hưu",
    ),
    "ems_delivery": ("đến phát bưu gửi EMS", "đã phát bưu gửi EMS", "chưa phát được bưu gửi EMS"),
}
_PICKUP = ("đến nhận hồ sơ, bưu gửi", "đã nhận hồ sơ, bưu gửi", "chưa nhận được hồ sơ, bưu gửi")
_DELIVERY = ("đến giao bưu gửi", "đã giao bưu gửi", "chưa giao được bưu gửi")

#: What happens after a failed visit, by fail reason.
NEXT_STEP: dict[str, str] = {
    FailReason.NOBODY_HOME: "Bưu điện sẽ đến lại vào ngày làm việc tiếp theo.",
    FailReason.WRONG_ADDRESS: "Vui lòng gọi bưu cục để báo lại địa chỉ; bưu điện sẽ hẹn ngày đến lại.",
    FailReason.REFUSED: "Hồ sơ được chuyển về bưu cục; vui lòng liên hệ bưu cục nếu cần nhận lại.",
    FailReason.ROAD_CLOSED: "Bưu điện sẽ đến lại khi đường thông.",
    FailReason.RESCHEDULED: "Bưu điện sẽ đến vào ngày giờ đã hẹn.",
    FailReason.ID_MISMATCH: (
        "Vui lòng mang căn cước công dân đến bưu cục để nhận, hoặc chờ bưu điện đến lại."
    ),
    FailReason.PICKUP_FAILED: "Bưu điện sẽ báo lại ngày giao mới.",
    FailReason.OUT_OF_TIME: "Bưu điện sẽ đến vào ngày làm việc tiếp theo.",
    FailReason.OTHER: "Bưu cục sẽ liên hệ lại với quý khách.",
}
#: What happens next when the office's rule for the reason (or the last attempt) is not the
#: default one :data:`NEXT_STEP` describes: by the action the day's close will take.
NEXT_STEP_BY_ACTION: dict[str, str] = {
    CarryAction.NEXT_DAY: "Bưu điện sẽ đến lại vào ngày làm việc tiếp theo.",
    CarryAction.HOLD: "Bưu cục sẽ liên hệ lại với quý khách để hẹn ngày đến lại.",
    CarryAction.RETURN: (
        "Hồ sơ, bưu gửi sẽ được chuyển về bưu cục; vui lòng liên hệ bưu cục để nhận hoặc hẹn lại."
    ),
}


def next_step(reason: str, action: str | None = None) -> str:
    """Return what the citizen is told happens after a visit failed for ``reason``.

    ``action`` is what the day's close will do with the job (:class:`CarryAction`: the
    office's rule for the reason, or the return after the last attempt); None takes the
    default rule. The reason's own words are kept while the action is the default one.
    """
    code = reason if reason in NEXT_STEP else FailReason.OTHER
    if action is None or action == DEFAULT_BY_REASON.get(code) or action not in NEXT_STEP_BY_ACTION:
        return NEXT_STEP[code]
    return NEXT_STEP_BY_ACTION[action]


def actions(job: Job) -> tuple[str, str, str]:
    """Return what the courier comes to do at ``job``: (going to, done, not done), in Vietnamese."""
    found = _ACTIONS.get(job.category)
    if found is not None:
        return found
    return _PICKUP if job.kind == "pickup" else _DELIVERY


def wants_messages(job: Job) -> bool:
    """Return whether the job's citizen asked for messages (and can be reached).

    The delivery half of a transfer is an office's desk, not a citizen's door: never.
    """
    if job.is_office_stop or job.notify == NotifyPreference.NONE:
        return False
    if job.notify == NotifyPreference.EMAIL:
        return job.email is not None
    return job.phone is not None


def _bring(job: Job) -> str:
    if job.is_payout:
        return " Vui lòng có mặt và mang theo căn cước công dân để nhận tiền."
    if job.needs_id_check:
        return " Vui lòng mang theo căn cước công dân khi nhận."
    return ""


def _message(
    job: Job,
    day: date,
    kind: MessageKind,
    text: str,
    *,
    window: tuple[int, int] | None = None,
    key_suffix: str = "",
) -> Message:
    return Message(
        key=f"{day.isoformat()}:{job.job_id}:{kind}{key_suffix}",
        job_id=job.job_id,
        kind=kind,
        preference=job.notify,
        phone=job.phone,
        email=job.email,
        text=text,
        params={
            "ma_ho_so": job.job_id[:30],
            "ten": job.recipient[:30],
            "thoi_gian": format_window(window) if window else "",
            "ngay": format_day(day),
            "noi_dung": text[:400],
        },
        window=window,
    )


def day_ahead(job: Job, day: date, start_s: int) -> Message:
    """Return the message announcing a visit planned to start at ``start_s`` on ``day``.

    Its key holds the window: publishing a new version that moves the visit to another
    window announces it again; one that keeps the window does not.
    """
    window = keepable_window(start_s, latest_s=job.last_end_s)
    going, _done, _not = actions(job)
    text = (
        f"Bưu điện sẽ {going} {job.job_id} vào khoảng {format_window(window)} "
        f"ngày {format_day(day)}.{_bring(job)}"
    )
    suffix = f":{window[0]}-{window[1]}"
    return _message(job, day, MessageKind.DAY_AHEAD, text, window=window, key_suffix=suffix)


def day_ahead_messages(day: date, stops: Iterable[RoundStop]) -> list[Message]:
    """Return the day-ahead messages of a published plan's stops (those whose citizen wants them)."""
    return [
        day_ahead(s.job, day, s.start_s)
        for s in stops
        if s.status not in DONE_STATUSES and wants_messages(s.job)
    ]


def on_the_way(job: Job, day: date, eta_s: int) -> Message:
    """Return the message that the courier is on the way, expected at ``eta_s``."""
    window = keepable_window(eta_s, latest_s=job.last_end_s)
    going, _done, _not = actions(job)
    text = (
        f"Bưu tá đang trên đường {going} {job.job_id}, dự kiến đến trong khoảng "
        f"{format_window(window)} hôm nay ({format_day(day)}).{_bring(job)}"
    )
    return _message(job, day, MessageKind.ON_THE_WAY, text, window=window)


def done(job: Job, day: date, at_s: int) -> Message:
    """Return the message that the visit was completed at ``at_s``."""
    _going, did, _not = actions(job)
    text = (
        f"Bưu điện {did} {job.job_id} lúc {format_hm(at_s)} ngày {format_day(day)}. "
        "Cảm ơn quý khách."
    )
    return _message(job, day, MessageKind.DONE, text)


def failed(
    job: Job, day: date, at_s: int, reason: str | None, *, action: str | None = None
) -> Message:
    """Return the message that the visit failed at ``at_s``, why, and what happens next.

    ``action`` is what the day's close will do with the job (see :func:`next_step`).
    """
    _going, _did, not_done = actions(job)
    code = reason if reason in NEXT_STEP else FailReason.OTHER
    why = FAIL_REASON_MESSAGES[code][1].lower()
    text = (
        f"Bưu điện {not_done} {job.job_id} lúc {format_hm(at_s)} ngày {format_day(day)}: "
        f"{why}. {next_step(code, action)}"
    )
    return _message(job, day, MessageKind.FAILED, text)


def returned(job: Job, day: date, office: str, attempts: int) -> Message:
    """Return the message that, after ``attempts`` tries, the job went back to its post office."""
    _going, _did, not_done = actions(job)
    text = (
        f"Bưu điện {not_done} {job.job_id} sau {attempts} lần đến (lần cuối ngày "
        f"{format_day(day)}). Hồ sơ, bưu gửi được chuyển về {office}; quý khách vui lòng liên hệ "
        "bưu cục để nhận hoặc hẹn lại."
    )
    return _message(job, day, MessageKind.RETURNED, text)


def live_etas(stops: Sequence[RoundStop], after: int, now_s: int) -> list[int]:
    """Return the expected service starts of ``stops[after + 1:]`` for a courier who left ``stops[after]`` at ``now_s``.

    The delay against the plan's departure is carried down the round, less the waiting the
    plan had before each stop; an early courier waits, so no stop starts before its plan.
    """
    delay = max(0, now_s - stops[after].departure_s)
    etas = []
    for s in stops[after + 1 :]:
        delay = max(0, delay - s.waiting_s)
        etas.append(s.start_s + delay)
    return etas


def after_event(
    day: date,
    stops: Sequence[RoundStop],
    index: int,
    kind: str,
    at_s: int,
    reason: str | None = None,
    *,
    action: str | None = None,
) -> list[Message]:
    """Return the messages a stop event causes.

    ``stops`` is the courier's round in order with the statuses after the event, ``index`` the
    stop of the event, ``kind`` the event (``arrived``, ``completed``, ``failed``) and ``at_s``
    its time (seconds since local midnight). A completed or failed stop tells its citizen;
    every event tells the citizens of the next stops not yet served that are at most
    :data:`ON_THE_WAY_STOPS` stops or :data:`ON_THE_WAY_S` seconds away that the courier is on
    the way, with the window from the live ETA. The keys keep each message to once a day.
    ``action`` is what the day's close will do with a failed job (:func:`next_step`).
    """
    out: list[Message] = []
    here = stops[index]
    if kind == "completed" and wants_messages(here.job):
        out.append(done(here.job, day, at_s))
    elif kind == "failed" and wants_messages(here.job):
        out.append(failed(here.job, day, at_s, reason, action=action))
    # leaving now (done or failed), or leaving after the planned service (arrived)
    leave_s = at_s if kind != "arrived" else at_s + here.job.service_s
    ahead = stops[index + 1 :]
    etas = live_etas(stops, index, leave_s)
    served = [s.status in DONE_STATUSES for s in ahead]
    for k in on_the_way_due(etas, served, at_s):
        if wants_messages(ahead[k].job):
            out.append(on_the_way(ahead[k].job, day, etas[k]))
    return out


def on_the_way_due(etas: Sequence[int], served: Sequence[bool], at_s: int) -> list[int]:
    """Return the positions of the stops ahead whose citizens are told the courier is on the way.

    ``etas`` are the expected service starts of the stops ahead in round order, ``served``
    whether each is done already, ``at_s`` the time now. The stops not served are taken in
    order while at most :data:`ON_THE_WAY_STOPS` stops or :data:`ON_THE_WAY_S` seconds away.
    """
    due = []
    ahead = 0
    for k, (eta, done) in enumerate(zip(etas, served, strict=True)):
        if done:
            continue
        ahead += 1
        if ahead > ON_THE_WAY_STOPS and eta - at_s > ON_THE_WAY_S:
            break
        due.append(k)
    return due


def fix_etas(remaining: Sequence[PlannedStop], eta_s: int) -> list[int]:
    """Return the expected service starts of ``remaining`` for a courier reaching ``remaining[0]`` at ``eta_s``.

    ``eta_s`` is the live arrival estimate of a GPS fix (:func:`routing.eta.project`). As in
    :func:`live_etas`, the delay against the plan's arrival is carried down the round less
    each stop's planned waiting, and no stop starts before its plan.
    """
    delay = max(0, eta_s - remaining[0].arrival_s) if remaining else 0
    etas = []
    for s in remaining:
        delay = max(0, delay - s.waiting_s)
        etas.append(s.arrival_s + s.waiting_s + delay)
    return etas


def due_from_fix(
    remaining: Sequence[PlannedStop], eta_s: int, at_s: int, *, round_start_s: int
) -> list[tuple[str, int]]:
    """Return the stops a GPS fix puts "on the way", before the round's first stop event.

    Stop events tell the stops after them (:func:`after_event`); the first stops of a round
    have no event before them, so the courier's fixes on the way from the post office tell
    them. ``remaining`` is the round from the next stop on (none served yet), ``eta_s`` the
    fix's arrival estimate at it, ``at_s`` the fix's time and ``round_start_s`` the round's
    planned start: a phone sending fixes before it (from home) tells nobody.

    Returns
    -------
    due
        ``(job_id, expected service start)`` in round order; whether each citizen wants a
        message is for :func:`on_the_way_messages`.
    """
    if at_s < round_start_s or not remaining:
        return []
    etas = fix_etas(remaining, eta_s)
    return [(remaining[k].job_id, etas[k]) for k in on_the_way_due(etas, [False] * len(etas), at_s)]


def on_the_way_messages(day: date, due: Iterable[tuple[Job, str, int]]) -> list[Message]:
    """Return the on-the-way messages of ``(job, stop status, expected start)`` due now.

    Stops already served and citizens who want no message are left out.
    """
    return [
        on_the_way(job, day, eta)
        for job, status, eta in due
        if status not in DONE_STATUSES and wants_messages(job)
    ]
